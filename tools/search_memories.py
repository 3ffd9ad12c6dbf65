"""search_memories: find what is known that bears on a question."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from ._common import ServerState, tool_errors
from .models import MemoryList

DESCRIPTION = """Search the user's memories by meaning. Call this before answering anything that
may depend on what the user told you earlier (preferences, facts, plans).

Results are best first with a score in [0, 1] (meaning, keywords and entity links fused).
`filters` narrows by metadata, e.g.
{"category": "food"}, {"priority": {"gte": 2}}, {"tag": {"in": ["a", "b"]}}, {"OR": [...]}."""


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="search_memories",
        description=DESCRIPTION,
        annotations=ToolAnnotations(title="Search memories", readOnlyHint=True, openWorldHint=False),
    )
    async def search_memories(
        query: Annotated[str, Field(description="What to look for, in natural language")],
        limit: Annotated[int, Field(ge=1, le=1000, description="How many results at most")] = 10,
        filters: Annotated[dict[str, Any] | None, Field(description="Metadata filter")] = None,
        threshold: Annotated[float | None, Field(ge=0, le=1, description="Drop results scoring below this")] = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        explain: Annotated[bool, Field(description="Add each signal's rank and score to every result")] = False,
    ) -> MemoryList:
        with tool_errors():
            result = await state.memory().search(
                query,
                **state.scope(user_id, agent_id, run_id),
                limit=limit,
                filters=filters,
                threshold=threshold,
                explain=explain,
            )
        return MemoryList.model_validate(result)
