"""get_memory: one memory by id."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from memorch.results import MemoryItem
from memorch.tools._common import IdAgentId, IdProject, IdRunId, IdUserId, MemoryId, ServerState, given


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="get_memory",
        description="Read one memory by id.",
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    async def get_memory(
        memory_id: MemoryId,
        user_id: IdUserId = None,
        agent_id: IdAgentId = None,
        run_id: IdRunId = None,
        project: IdProject = None,
    ) -> MemoryItem:
        return await state.memory().get(memory_id, **given(user_id, agent_id, run_id, project))
