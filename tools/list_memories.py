"""list_memories: everything remembered for a scope, newest first."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.results import MemoryList
from memorch.tools._common import AgentId, AsOf, Filters, MaxTokens, Project, RunId, ServerState, UserId, layers_note


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="list_memories",
        description="List the user's memories, newest first, optionally filtered by metadata "
        "(same filter syntax as search_memories). Use search_memories to find by meaning." + layers_note(state.config),
        annotations=ToolAnnotations(title="List memories", readOnlyHint=True, openWorldHint=False),
    )
    async def list_memories(
        limit: Annotated[int, Field(ge=1, le=1000, description="How many memories at most (1-1000)")] = 100,
        filters: Filters = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        project: Project = None,
        as_of: AsOf = None,
        max_tokens: MaxTokens = None,
    ) -> MemoryList:
        return await state.memory().get_all(
            **state.scope(user_id, agent_id, run_id, project),
            filters=filters,
            limit=limit,
            as_of=as_of,
            max_tokens=max_tokens,
        )
