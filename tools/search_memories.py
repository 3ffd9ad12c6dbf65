"""search_memories: find what is known that bears on a question."""

# No `from __future__ import annotations`: the threshold description is built per server (it
# names the configured default), and the SDK evaluates annotations in module scope.
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.results import MemoryList
from memorch.tools._common import (
    AgentId,
    AsOf,
    Filters,
    MaxTokens,
    Project,
    RunId,
    ServerState,
    UserId,
    layers_note,
    optional,
)

DESCRIPTION = """Search the user's memories by meaning. Call this before answering anything that
may depend on what the user told you earlier (preferences, facts, plans).

Results are best first, each with a `score`: its relevance in [0, 1], comparable across searches
(meaning, keywords and entity links together). Results below the threshold are left out, so an
empty list means nothing relevant is stored."""


def register(server: MCPServer, state: ServerState) -> None:
    default_threshold = state.config.search_threshold

    @server.tool(
        name="search_memories",
        description=DESCRIPTION + layers_note(state.config),
        annotations=ToolAnnotations(title="Search memories", readOnlyHint=True, openWorldHint=False),
    )
    async def search_memories(
        query: Annotated[str, Field(description="What to look for, in natural language", min_length=1)],
        limit: Annotated[int, Field(ge=1, le=1000, description="How many results at most (1-1000)")] = 10,
        filters: Filters = None,
        threshold: Annotated[
            float | None,
            *optional(
                {"type": "number", "minimum": 0, "maximum": 1},
                f"Leave out results scoring below this (0-1). Omit for the server's default ({default_threshold}); "
                "0 returns the best matches however weak.",
            ),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: Project = None,
        explain: Annotated[
            bool, Field(description="Add each signal's rank and score to every result (for debugging ranking)")
        ] = False,
        as_of: AsOf = None,
        max_tokens: MaxTokens = None,
    ) -> MemoryList:
        return await state.memory().search(
            query,
            **state.scope(user_id, agent_id, run_id, project),
            limit=limit,
            filters=filters,
            threshold=threshold,
            explain=explain,
            as_of=as_of,
            max_tokens=max_tokens,
        )
