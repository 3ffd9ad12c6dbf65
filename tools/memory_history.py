"""memory_history: how a memory came to say what it says."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from ._common import ServerState, tool_errors
from .models import HistoryItem, HistoryResult


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="memory_history",
        description="Every change to one memory (ADD, UPDATE, DELETE), oldest first, including "
        "memories that were deleted.",
        annotations=ToolAnnotations(title="Memory history", readOnlyHint=True, openWorldHint=False),
    )
    async def memory_history(memory_id: str, user_id: str | None = None) -> HistoryResult:
        with tool_errors():
            events = await state.memory().history(memory_id, user_id=state.scope(user_id)["user_id"])
        return HistoryResult(memory_id=events[0]["memory_id"], events=[HistoryItem.model_validate(e) for e in events])
