"""delete_all_memories: forget everything in one scope."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from ._common import ServerState, tool_errors
from .models import DeleteAllResult


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="delete_all_memories",
        description="Forget every memory of the user (or of the given agent/run). Irreversible: "
        "only call it when the user explicitly asks, and pass confirm=true.",
        annotations=ToolAnnotations(
            title="Delete all memories",
            readOnlyHint=False,
            destructiveHint=True,
            idempotentHint=True,
            openWorldHint=False,
        ),
    )
    async def delete_all_memories(
        confirm: Annotated[bool, Field(description="Must be true: the user asked to forget everything")],
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> DeleteAllResult:
        if confirm is not True:
            raise ToolError(
                "[CONFIRMATION_REQUIRED] nothing was deleted. Suggestion: ask the user, "
                "then call delete_all_memories with confirm=true"
            )
        with tool_errors():
            result = await state.memory().delete_all(**state.scope(user_id, agent_id, run_id))
        return DeleteAllResult.model_validate(result)
