"""delete_memory: forget one memory."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from memorch.results import ChangeResult
from memorch.tools._common import IdAgentId, IdProject, IdRunId, IdUserId, MemoryId, Purge, ServerState, given


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="delete_memory",
        description="Forget one memory by id; restore_memory brings it back unless purged.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False),
    )
    async def delete_memory(
        memory_id: MemoryId,
        purge: Purge = False,
        user_id: IdUserId = None,
        agent_id: IdAgentId = None,
        run_id: IdRunId = None,
        project: IdProject = None,
    ) -> ChangeResult:
        return await state.memory().delete(memory_id, purge=purge, **given(user_id, agent_id, run_id, project))
