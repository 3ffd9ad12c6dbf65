"""restore_memory: undo a change to a memory (its history keeps every version)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from memorch.results import ChangeResult
from memorch.tools._common import IdAgentId, IdProject, IdRunId, IdUserId, MemoryId, ServerState, optional


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="restore_memory",
        description="Undo a change: bring a memory back to its text before one of its history events "
        "(default: before its last change). Works for deleted memories too. Call memory_history first to "
        "see the versions and their event ids. The restore is itself recorded in the history.",
        annotations=ToolAnnotations(
            title="Restore memory", readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
        ),
    )
    async def restore_memory(
        memory_id: MemoryId,
        event_id: Annotated[
            str | None,
            *optional(
                {"type": "string"},
                "The history event (an id from memory_history) whose previous version to bring back. "
                "Omit to undo the last change.",
            ),
        ] = None,
        user_id: IdUserId = None,
        agent_id: IdAgentId = None,
        run_id: IdRunId = None,
        project: IdProject = None,
    ) -> ChangeResult:
        return await state.memory().restore(
            memory_id, event_id, user_id=user_id, agent_id=agent_id, run_id=run_id, project=project
        )
