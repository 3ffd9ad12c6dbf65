"""get_memory: one memory by id."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from ._common import ServerState, tool_errors
from .models import MemoryItem


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="get_memory",
        description="Read one memory by its id (ids come from search_memories or list_memories).",
        annotations=ToolAnnotations(title="Get memory", readOnlyHint=True, openWorldHint=False),
    )
    async def get_memory(memory_id: str, user_id: str | None = None) -> MemoryItem:
        with tool_errors():
            result = await state.memory().get(memory_id, user_id=state.scope(user_id)["user_id"])
        return MemoryItem.model_validate(result)
