"""delete_all_memories: forget everything in one scope."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.errors import ValidationError
from memorch.results import DeleteAllResult
from memorch.tools._common import AgentId, OnlyProject, Purge, RunId, ServerState, UserId, delete_all_note


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="delete_all_memories",
        description="Forget every memory of the user (or agent/run), only if the user explicitly asks; "
        "restore_memory brings each back unless purged." + delete_all_note(state.config),
        annotations=ToolAnnotations(
            readOnlyHint=False,
            destructiveHint=True,
            idempotentHint=True,
            openWorldHint=False,
        ),
    )
    async def delete_all_memories(
        # strict: "yes", "true" or 1 must not delete a whole scope by coercion. Optional, so a call
        # without it is told to ask the user (a schema error said "fix confirm", read as "add it").
        confirm: Annotated[
            bool,
            Field(
                strict=True,
                description="true, only after the user asked to forget everything",
            ),
        ] = False,
        purge: Purge = False,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: OnlyProject = None,
    ) -> DeleteAllResult:
        if confirm is not True:
            raise ValidationError(
                "nothing was deleted: confirm must be true",
                error_code="CONFIRMATION_REQUIRED",
                suggestion="ask the user, then call delete_all_memories with confirm=true",
            )
        return await state.memory().delete_all(purge=purge, **state.scope(user_id, agent_id, run_id, project))
