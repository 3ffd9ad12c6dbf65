"""Whole-store operations of ``AsyncMemory``: reset, stats, graph view, doctor, reprocess,
reindex. A mixin so the orchestrator module stays about memories themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memorch.storage.graph import MAX_HOPS

from . import validation
from .errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from memorch.storage.base import Scope

    from .components import Components
    from .config import MemoryConfig
    from .graph_sync import GraphSync


class AdminMixin:
    config: MemoryConfig
    components: Components
    graph_sync: GraphSync
    _write_lock: asyncio.Lock

    if TYPE_CHECKING:

        async def _run(self, fn: Callable[..., Any], *args: Any) -> Any: ...
        def _scope(self, user_id: Any, agent_id: Any, run_id: Any, *, required: bool) -> Scope: ...
        async def _ready(self) -> None: ...

    async def reset(self, *, confirm: bool = False) -> dict[str, Any]:
        """Drop every memory, history event and index. Needs ``confirm=True``."""
        if confirm is not True:
            raise ValidationError(
                "reset deletes every memory of every user and all history",
                error_code="CONFIRMATION_REQUIRED",
                suggestion="call reset(confirm=True) if you mean it",
            )
        async with self._write_lock, self.graph_sync.lock:
            await self._run(self.components.ledger.wipe)
            await self._run(self.components.vectors.wipe)
            if self.config.graph_enabled:
                await self._run(self.components.graph.wipe)
        return {"message": "All memories were deleted"}

    async def stats(self) -> dict[str, Any]:
        """Counts, pending work, and the health of each model's circuit breaker. Index work a
        crash left owed is finished first, so the counts describe a settled store."""
        await self._ready()
        graph = {"entities": 0, "relations": 0}
        if self.config.graph_enabled:
            await self.graph_sync.flush()
            graph = await self._run(self.components.graph.counts)
        counts = await self._run(self.components.ledger.counts)
        return {
            **counts,
            **graph,
            "llm_model": self.config.llm_model or None,
            "circuits": self.components.resilience.states(),
        }

    async def graph(
        self,
        entity: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        hops: int = 2,
    ) -> dict[str, Any]:
        """What the graph knows around one entity (``memorch graph ENTITY``)."""
        if not self.config.graph_enabled:
            raise ConfigurationError("the graph is off", error_code="GRAPH_OFF", suggestion="set MEMORCH_GRAPH=on")
        scope = self._scope(user_id, agent_id, run_id, required=True)
        name = validation.text(entity, 1000, "entity")
        hops = validation.bounded_int(hops, "hops", 1, MAX_HOPS)
        await self.graph_sync.flush()
        relations = await self._run(self.components.graph.neighbourhood, scope, name, hops)
        return {"entity": name, "relations": relations}

    async def flush_graph(self) -> int:
        """Bring the graph up to date now (it otherwise follows writes after a short delay)."""
        return await self.graph_sync.flush()

    async def import_memories(
        self,
        items: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Store many memories verbatim in batches: ``[{"memory", "metadata"?, "user_id"?...}]``.
        Every item is validated before anything is written."""
        from .bulk import import_memories

        default = self._scope(user_id, agent_id, run_id, required=False)
        return await import_memories(self, list(items), default, progress)  # type: ignore[arg-type]

    async def export_memories(
        self,
        path: str | Path,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, int]:
        """Write memories with their ids, metadata, relations and history to ``path`` as JSONL
        (every memory of every scope unless a scope is given); ``import_memories`` reads it back."""
        from .transfer import export_memories

        scope = self._scope(user_id, agent_id, run_id, required=False)
        return await export_memories(self, Path(path), scope)  # type: ignore[arg-type]

    async def doctor(self) -> list[dict[str, Any]]:
        """Run one real operation against each part (see ``memorch doctor``)."""
        from .maintenance import doctor

        return [check.__dict__ for check in await self._run(doctor, self.components)]

    async def reprocess(self, *, limit: int = 1000) -> dict[str, Any]:
        """Run inference over memories stored verbatim while no model could answer (each once)."""
        from .inference import reprocess_pending

        return await reprocess_pending(self, limit)  # type: ignore[arg-type]

    async def reindex(
        self, *, re_embed: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """Rebuild the indexes from the ledger (``re_embed`` recomputes every embedding)."""
        from .maintenance import reindex

        async with self._write_lock, self.graph_sync.lock:
            return await self._run(reindex, self.components, re_embed, progress)

    async def close(self) -> None:
        """Finish queued graph work (kept for the next start if that fails), then close."""
        if self.config.graph_enabled and self.components._ledger is not None:
            await self.graph_sync.close()
        await self._run(self.components.close)
