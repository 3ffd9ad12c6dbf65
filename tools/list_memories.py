"""list_memories: everything remembered for a scope, newest first."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.results import HitList
from memorch.tools._common import (
    AgentId,
    AsOf,
    Filters,
    MaxTokens,
    Project,
    RunId,
    ServerState,
    UserId,
    hits,
    layers_note,
    optional,
)


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="list_memories",
        description="List the user's memories, newest first; "
        "`next_cursor` pages on. search_memories finds by meaning." + layers_note(state.config),
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    async def list_memories(
        limit: Annotated[int, Field(ge=1, le=1000, description="Most results to return")] = 100,
        filters: Filters = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: Project = None,
        as_of: AsOf = None,
        max_tokens: MaxTokens = None,
        verbose: Annotated[bool, Field(description="Every field of each memory")] = False,
        cursor: Annotated[
            str | None, *optional({"type": "string"}, "The next_cursor of the page before; omit for the first.")
        ] = None,
    ) -> HitList:
        found = await state.memory().get_all(
            **state.scope(user_id, agent_id, run_id, project),
            filters=filters,
            limit=limit,
            as_of=as_of,
            max_tokens=max_tokens,
            cursor=cursor,
        )
        return hits(found, full=verbose, project=project or state.config.project)
