"""``Memory``: the synchronous facade. It runs one ``AsyncMemory`` on a private event-loop
thread and forwards each call there, so the logic exists once (in the async core).

Every method is written out, one line each, so type checkers and IDEs see the same signatures
and result types as ``AsyncMemory``'s (mem0-shaped dicts, typed in ``memorch.results``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from .config import MemoryConfig
from .errors import ValidationError
from .orchestrator import AsyncMemory
from .results import AddResult, ChangeResult, DeleteAllResult, HistoryItem, MemoryItem, MemoryList

T = TypeVar("T")
Progress = Callable[[int, int], None] | None


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

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of ``self.async_memory`` (or one that awaits it) on this Memory's loop
        and wait for its result: for async helpers that have no sync twin."""
        if threading.current_thread() is self._thread:
            # Waiting here for the loop this very thread runs would never return.
            coro.close()
            raise ValidationError(
                "a Memory method was called from memorch's own event-loop thread",
                error_code="WRONG_THREAD",
                suggestion="inside async code (callbacks included), use AsyncMemory and await it",
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # -- memories ---------------------------------------------------------------------------

    def add(
        self,
        messages: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        infer: bool | None = None,
        memory_type: str | None = None,
        dry_run: bool = False,
        project: str | None = None,
        layer: str | None = None,
    ) -> AddResult:
        return self.run_sync(
            self.async_memory.add(
                messages,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                metadata=metadata,
                infer=infer,
                memory_type=memory_type,
                dry_run=dry_run,
                project=project,
                layer=layer,
            )
        )

    def get(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        project: str | None = None,
    ) -> MemoryItem:
        return self.run_sync(
            self.async_memory.get(memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, project=project)
        )

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 100,
        as_of: str | None = None,
        max_tokens: int | None = None,
        project: str | None = None,
    ) -> MemoryList:
        return self.run_sync(
            self.async_memory.get_all(
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                filters=filters,
                limit=limit,
                as_of=as_of,
                max_tokens=max_tokens,
                project=project,
            )
        )

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        limit: int = 10,
        filters: dict[str, Any] | None = None,
        threshold: float | None = None,
        explain: bool = False,
        as_of: str | None = None,
        max_tokens: int | None = None,
        project: str | None = None,
    ) -> MemoryList:
        return self.run_sync(
            self.async_memory.search(
                query,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                limit=limit,
                filters=filters,
                threshold=threshold,
                explain=explain,
                as_of=as_of,
                max_tokens=max_tokens,
                project=project,
            )
        )

    def history(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        project: str | None = None,
    ) -> list[HistoryItem]:
        return self.run_sync(
            self.async_memory.history(memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, project=project)
        )

    def update(
        self,
        memory_id: str,
        data: str,
        *,
        metadata: dict[str, Any] | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        project: str | None = None,
    ) -> ChangeResult:
        return self.run_sync(
            self.async_memory.update(
                memory_id, data, metadata=metadata, user_id=user_id, agent_id=agent_id, run_id=run_id, project=project
            )
        )

    def delete(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        project: str | None = None,
    ) -> ChangeResult:
        return self.run_sync(
            self.async_memory.delete(memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, project=project)
        )

    def restore(
        self,
        memory_id: str,
        event_id: str | None = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        project: str | None = None,
    ) -> ChangeResult:
        return self.run_sync(
            self.async_memory.restore(
                memory_id, event_id, user_id=user_id, agent_id=agent_id, run_id=run_id, project=project
            )
        )

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        project: str | None = None,
    ) -> DeleteAllResult:
        return self.run_sync(
            self.async_memory.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id, project=project)
        )

    # -- the whole store --------------------------------------------------------------------

    def reset(self, *, confirm: bool = False) -> dict[str, Any]:
        return self.run_sync(self.async_memory.reset(confirm=confirm))

    def stats(self) -> dict[str, Any]:
        return self.run_sync(self.async_memory.stats())

    def graph(
        self,
        entity: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        hops: int = 2,
    ) -> dict[str, Any]:
        return self.run_sync(
            self.async_memory.graph(entity, user_id=user_id, agent_id=agent_id, run_id=run_id, hops=hops)
        )

    def flush_graph(self) -> int:
        return self.run_sync(self.async_memory.flush_graph())

    def import_memories(
        self,
        items: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        progress: Progress = None,
    ) -> dict[str, int]:
        return self.run_sync(
            self.async_memory.import_memories(
                items, user_id=user_id, agent_id=agent_id, run_id=run_id, progress=progress
            )
        )

    def export_memories(
        self, path: str | Path, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> dict[str, int]:
        return self.run_sync(self.async_memory.export_memories(path, user_id=user_id, agent_id=agent_id, run_id=run_id))

    def doctor(self) -> list[dict[str, Any]]:
        return self.run_sync(self.async_memory.doctor())

    def reprocess(self, *, limit: int = 1000) -> dict[str, Any]:
        return self.run_sync(self.async_memory.reprocess(limit=limit))

    def flush_inference(self) -> dict[str, Any]:
        return self.run_sync(self.async_memory.flush_inference())

    def reindex(self, *, re_embed: bool = False, progress: Progress = None, force: bool = False) -> dict[str, Any]:
        return self.run_sync(self.async_memory.reindex(re_embed=re_embed, progress=progress, force=force))

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._loop.is_running():
            self.run_sync(self.async_memory.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
