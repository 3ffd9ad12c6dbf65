"""delete_memory: forget one memory."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from ._common import ServerState, tool_errors
from .models import ChangeResult


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="delete_memory",
        description="Forget one memory by id (find it with search_memories). Its history stays "
        "readable with memory_history.",
        annotations=ToolAnnotations(
            title="Delete memory", readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
        ),
    )
    async def delete_memory(memory_id: str, user_id: str | None = None) -> ChangeResult:
        with tool_errors():
            result = await state.memory().delete(memory_id, user_id=state.scope(user_id)["user_id"])
        return ChangeResult.model_validate(result)
