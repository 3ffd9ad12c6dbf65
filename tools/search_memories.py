"""search_memories: find what is known that bears on a question."""

# No `from __future__ import annotations`: the threshold description is built per server (it
# names the configured default), and the SDK evaluates annotations in module scope.
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.results import HitList
from memorch.retrieval._cut import Cut
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

DESCRIPTION = (
    "Search the user's memories before answering what may depend on what they said. Best first "
    "(`score`: each hit's own relevance, 0-1; a weak one can score under the next). Weaker matches "
    "are left out: `below_threshold` says how many; `threshold: 0` returns them."
)


def register(server: MCPServer, state: ServerState) -> None:
    default = Cut.of(None, state.config.search_threshold)

    @server.tool(
        name="search_memories",
        description=DESCRIPTION + layers_note(state.config),
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    )
    async def search_memories(
        query: Annotated[str, Field(description="A question or a few topic words", min_length=1)],
        limit: Annotated[int, Field(ge=1, le=1000, description="Most results to return")] = 10,
        filters: Filters = None,
        threshold: Annotated[
            float | None,
            *optional(
                {"type": "number", "minimum": 0, "maximum": 1},
                f"Minimum score, 0-1; by default the best must reach {default.answer:g}, "
                f"the rest {default.each:g}; 0 returns every match.",
            ),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: Project = None,
        explain: Annotated[bool, Field(description="All fields and each signal's score")] = False,
        as_of: AsOf = None,
        max_tokens: MaxTokens = None,
    ) -> HitList:
        found = await state.memory().search(
            query,
            **state.scope(user_id, agent_id, run_id, project),
            limit=limit,
            filters=filters,
            threshold=threshold,
            explain=explain,
            as_of=as_of,
            max_tokens=max_tokens,
        )
        return hits(found, full=explain, project=project or state.config.project)
