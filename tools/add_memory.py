"""add_memory: remember text or a conversation."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.errors import ValidationError
from memorch.results import AddResult
from memorch.tools._common import AgentId, ExpiresAt, Metadata, Project, RunId, ServerState, UserId, optional

DESCRIPTION = """Remember what the user said: `text` (a fact) or `messages`. With an LLM, facts are
extracted and reconciled (ADD/UPDATE/DELETE/NONE, each with a `reason`); without, the user's words
are stored as given. An ADD's `similar` names a near-duplicate to update or delete. `pending: true`:
facts follow in the background."""
PROJECT_NOTE = """

Memories go to this server's project layer unless `layer` is "global"."""

_MESSAGES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["user", "assistant", "system", "tool"]},
            # Text, or OpenAI-style text parts; anyOf, not a list of types, which single-type schema
            # dialects (Gemini's function declarations) may reject: the MCP Inspector's --strict warns.
            "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
            "name": {"type": "string"},
        },
        "required": ["content"],
    },
}


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="add_memory",
        description=DESCRIPTION + (PROJECT_NOTE if state.config.project else ""),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
        ),
    )
    async def add_memory(
        text: Annotated[
            str | None, *optional({"type": "string"}, "The fact to remember. Give this or `messages`.")
        ] = None,
        messages: Annotated[
            list[dict[str, Any]] | None,
            *optional(_MESSAGES, '[{"role": "user", "content": "..."}]. Give this or `text`.'),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: Project = None,
        metadata: Metadata = None,
        infer: Annotated[
            bool | None,
            Field(strict=True),  # "yes" or "false" must not be read as a switch
            *optional(
                {"type": "boolean"},
                "false: store as given, without the LLM.",
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            Field(strict=True),
            *optional(
                {"type": "boolean"},
                "Only report the decisions; write nothing.",
            ),
        ] = False,
        expires_at: ExpiresAt = None,
        layer: Annotated[
            str | None,
            *optional(
                {"type": "string", "enum": ["project", "global"]},
                "\"global\": for every project (the user's own preferences). Omit for the server's project.",
            ),
        ] = None,
    ) -> AddResult:
        if (text is None) == (messages is None):
            raise ValidationError(
                "pass exactly one of `text` or `messages`",
                error_code="INVALID_ARGUMENT",
                suggestion="put a single fact in `text`, or a conversation in `messages`",
            )
        return await state.memory().add(
            text if text is not None else messages,
            **state.scope(user_id, agent_id, run_id, project),
            metadata=metadata,
            infer=infer,
            dry_run=dry_run,
            layer=layer,
            expires_at=expires_at,
        )
