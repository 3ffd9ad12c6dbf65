"""list_memories: everything remembered for a scope, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from ._common import ServerState, tool_errors
from .models import MemoryList


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="list_memories",
        description="List the user's memories, newest first, optionally filtered by metadata "
        "(same filter syntax as search_memories). Use search_memories to find by meaning.",
        annotations=ToolAnnotations(title="List memories", readOnlyHint=True, openWorldHint=False),
    )
    async def list_memories(
        limit: Annotated[int, Field(ge=1, le=1000)] = 100,
        filters: dict[str, Any] | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> MemoryList:
        with tool_errors():
            result = await state.memory().get_all(
                **state.scope(user_id, agent_id, run_id), filters=filters, limit=limit
            )
        return MemoryList.model_validate(result)
