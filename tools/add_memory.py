"""add_memory: remember text or a conversation."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from ._common import ServerState, tool_errors
from .models import AddResult

DESCRIPTION = """Remember something about the user for later conversations.

Pass `text` (one fact or a passage) or `messages` (a conversation as [{"role", "content"}]).
With an LLM configured, durable facts are extracted and reconciled with what is already known
(events ADD / UPDATE / DELETE / NONE); otherwise the text is stored as given. A NONE event
means the memory was already known. Use search_memories first to avoid asking twice."""


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="add_memory",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            title="Add memory", readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
        ),
    )
    async def add_memory(
        text: Annotated[str | None, Field(description="The fact or passage to remember")] = None,
        messages: Annotated[
            list[dict[str, Any]] | None, Field(description='Conversation turns: [{"role": "user", "content": "..."}]')
        ] = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="JSON object stored with the memory")] = None,
        infer: Annotated[
            bool | None, Field(description="Extract facts with the LLM (default: on when one is configured)")
        ] = None,
    ) -> AddResult:
        if (text is None) == (messages is None):
            raise ToolError(
                "[VALIDATION_ERROR] pass exactly one of `text` or `messages`. Suggestion: put a single fact in `text`"
            )
        with tool_errors():
            result = await state.memory().add(
                text if text is not None else messages,
                **state.scope(user_id, agent_id, run_id),
                metadata=metadata,
                infer=infer,
            )
        return AddResult.model_validate(result)
