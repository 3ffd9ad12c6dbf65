"""update_memory: correct what a memory says."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from ._common import ServerState, tool_errors
from .models import ChangeResult


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="update_memory",
        description="Replace the text of a memory (and its metadata, if given) when the user "
        "corrects or refines it. The old text stays in memory_history. Find the id with "
        "search_memories.",
        annotations=ToolAnnotations(
            title="Update memory", readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
        ),
    )
    async def update_memory(
        memory_id: str,
        text: Annotated[str, Field(description="The new text of the memory")],
        metadata: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> ChangeResult:
        with tool_errors():
            result = await state.memory().update(
                memory_id, text, metadata=metadata, user_id=state.scope(user_id)["user_id"]
            )
        return ChangeResult.model_validate(result)
