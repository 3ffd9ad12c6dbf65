"""add_memory: remember text or a conversation."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from memorch.errors import ValidationError
from memorch.results import AddResult
from memorch.tools._common import AgentId, Metadata, Project, RunId, ServerState, UserId, optional

DESCRIPTION = """Remember something about the user for later conversations.

Pass `text` (one fact or a passage) or `messages` (a conversation as [{"role", "content"}]).
With an LLM configured, durable facts are extracted and reconciled with what is already known
(events ADD / UPDATE / DELETE / NONE, each with the memory it touched); otherwise the text is
stored as given. Every event carries a short `reason`; NONE names the memory that already says
it. An ADD may carry `similar`: a stored memory that reads almost the same, which you may want to
update or delete with update_memory / delete_memory if the new one replaces it.

`pending: true` in the result means the server acknowledged at once and the model extracts the
facts in the background: the text is already searchable, and memory_history on a returned id
shows what it became. `dry_run: true` returns the decisions without writing anything.

When this server works for a project (an IDE's repository), memories go to that project's layer
unless `layer` is "global": use "global" for what holds in every project (the user's own
preferences, name, habits) and omit it for facts about this codebase."""

_MESSAGES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["user", "assistant", "system", "tool"]},
            "content": {"type": "string"},
            "name": {"type": "string"},
        },
        "required": ["content"],
    },
}


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="add_memory",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            title="Add memory", readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
        ),
    )
    async def add_memory(
        text: Annotated[
            str | None, *optional({"type": "string"}, "The fact or passage to remember. Give this or `messages`.")
        ] = None,
        messages: Annotated[
            list[dict[str, Any]] | None,
            *optional(
                _MESSAGES, 'A conversation to remember from: [{"role": "user", "content": "..."}]. Give this or `text`.'
            ),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: Project = None,
        metadata: Metadata = None,
        infer: Annotated[
            bool | None,
            *optional(
                {"type": "boolean"},
                "Extract facts with the LLM (default: on when one is configured). false stores the text as given.",
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            *optional(
                {"type": "boolean"},
                "Only report what would be added, updated or deleted (and why); nothing is written.",
            ),
        ] = False,
        layer: Annotated[
            str | None,
            *optional(
                {"type": "string", "enum": ["project", "global"]},
                '"global": keep it for every project (the user\'s preferences, not this codebase). Omit for the '
                "default: this server's project layer when it has a project, else global.",
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
        )
