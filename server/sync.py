"""``Memory``: the synchronous facade. It runs one ``AsyncMemory`` on a private event-loop
thread and forwards each call there, so the logic exists once (in the async core)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .config import MemoryConfig
from .orchestrator import AsyncMemory

T = TypeVar("T")
FORWARDED = (
    "add",
    "get",
    "get_all",
    "search",
    "update",
    "delete",
    "delete_all",
    "history",
    "reset",
    "stats",
    "reindex",
    "reprocess",
    "doctor",
    "graph",
    "import_memories",
    "export_memories",
)


class Memory:
    """Blocking API with the same methods and arguments as ``AsyncMemory``."""

    def __init__(self, config: MemoryConfig | None = None, **overrides: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="memorch-loop", daemon=True)
        self._thread.start()
        self.async_memory = AsyncMemory(config, **overrides)
        self.config = self.async_memory.config

    @classmethod
    def from_config(cls, config: dict[str, Any] | MemoryConfig) -> Memory:
        return cls(config if isinstance(config, MemoryConfig) else MemoryConfig.from_mapping(config))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self.async_memory.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _forward(name: str) -> Callable[..., Any]:
    target = getattr(AsyncMemory, name)

    @functools.wraps(target)
    def method(self: Memory, *args: Any, **kwargs: Any) -> Any:
        return self._run(getattr(self.async_memory, name)(*args, **kwargs))

    return method


for _name in FORWARDED:
    setattr(Memory, _name, _forward(_name))
