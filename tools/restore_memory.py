"""restore_memory: undo a change to a memory (its history keeps every version)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from memorch.results import ChangeResult
from memorch.tools._common import IdAgentId, IdProject, IdRunId, IdUserId, MemoryId, ServerState, given, optional


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="restore_memory",
        description="Undo a change to a memory (default: its last), deleted ones too; recorded as RESTORE.",
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
        ),
    )
    async def restore_memory(
        memory_id: MemoryId,
        event_id: Annotated[
            str | None,
            *optional(
                {"type": "string"},
                "Event id (from memory_history) to undo; omit for the last.",
            ),
        ] = None,
        user_id: IdUserId = None,
        agent_id: IdAgentId = None,
        run_id: IdRunId = None,
        project: IdProject = None,
    ) -> ChangeResult:
        return await state.memory().restore(memory_id, event_id, **given(user_id, agent_id, run_id, project))
