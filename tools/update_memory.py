"""update_memory: correct what a memory says."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from memorch.results import ChangeResult
from memorch.tools._common import (
    IdAgentId,
    IdProject,
    IdRunId,
    IdUserId,
    MemoryId,
    ReplacingMetadata,
    ServerState,
    given,
    optional,
)


def register(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="update_memory",
        description="Replace a memory's text when the user corrects it; the old text stays in memory_history.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False),
    )
    async def update_memory(
        memory_id: MemoryId,
        text: Annotated[str, Field(description="The new full text", min_length=1)],
        metadata: ReplacingMetadata = None,
        expires_at: Annotated[
            str | None, *optional({"type": "string"}, 'New expiry, as for add_memory; "never" removes it.')
        ] = None,
        user_id: IdUserId = None,
        agent_id: IdAgentId = None,
        run_id: IdRunId = None,
        project: IdProject = None,
    ) -> ChangeResult:
        return await state.memory().update(
            memory_id,
            text,
            metadata=metadata,
            expires_at=expires_at,
            **given(user_id, agent_id, run_id, project),
        )
