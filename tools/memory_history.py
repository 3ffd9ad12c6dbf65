"""memory_history: how a memory came to say what it says."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from memorch.results import HistoryResult
from memorch.tools._common import IdAgentId, IdProject, IdRunId, IdUserId, MemoryId, ServerState, given


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="memory_history",
        description="Every change to one memory, oldest first, deleted ones too: ADD, UPDATE, DELETE, "
        "RESTORE (PURGE: no text left), each with its `reason` and `updated_at`.",
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    async def memory_history(
        memory_id: MemoryId,
        user_id: IdUserId = None,
        agent_id: IdAgentId = None,
        run_id: IdRunId = None,
        project: IdProject = None,
    ) -> HistoryResult:
        events = await state.memory().history(memory_id, **given(user_id, agent_id, run_id, project))
        return {"memory_id": events[0]["memory_id"], "events": events}
