"""What every tool module shares: the server's state, scope defaults and error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp.server.mcpserver.exceptions import ToolError

from memorch.errors import MemoryError

if TYPE_CHECKING:
    from memorch.config import MemoryConfig
    from memorch.orchestrator import AsyncMemory


@dataclass
class ServerState:
    """One orchestrator per server process, created on the first tool call."""

    config: MemoryConfig
    _memory: AsyncMemory | None = field(default=None, init=False)

    def memory(self) -> AsyncMemory:
        if self._memory is None:
            from memorch.orchestrator import AsyncMemory

            self._memory = AsyncMemory(self.config)
        return self._memory

    def scope(
        self, user_id: str | None, agent_id: str | None = None, run_id: str | None = None
    ) -> dict[str, str | None]:
        """The caller's scope; ``user_id`` defaults to MEMORCH_USER_ID."""
        return {"user_id": user_id or self.config.user_id, "agent_id": agent_id, "run_id": run_id}


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn memorch errors into MCP tool errors that carry the code and the next step."""
    try:
        yield
    except MemoryError as exc:
        raise ToolError(str(exc)) from exc
