"""Whole-store operations of ``AsyncMemory`` (reset, stats, graph view, import, export, doctor,
reprocess, reindex, close). A mixin over ``AsyncMemory``'s ``engine`` and ``background``, so the
facade's own module stays about memories themselves.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self, Unpack

import memorch.domain._validation as validation
from memorch.config import MemoryConfig
from memorch.domain._validation import ScopeIds
from memorch.engine._engine import Engine
from memorch.errors import ConfigurationError, StorageError, ValidationError
from memorch.inference._pending import BackgroundInference
from memorch.results import (
    DoctorCheck,
    ExportResult,
    GraphRelation,
    GraphView,
    ImportResult,
    InferenceBacklog,
    MaintainResult,
    ReindexResult,
    ReprocessResult,
    ResetResult,
    StatsResult,
    UserCount,
)
from memorch.storage.expiry import stamp
from memorch.storage.graph import MAX_HOPS


class AdminMixin:
    config: MemoryConfig
    engine: Engine
    background: BackgroundInference

    async def reset(self, *, confirm: bool = False) -> ResetResult:
        """Drop every memory, history event and index. Needs ``confirm=True``."""
        if confirm is not True:
            raise ValidationError(
                "reset deletes every memory of every user and all history",
                error_code="CONFIRMATION_REQUIRED",
                suggestion="call reset(confirm=True) if you mean it",
            )
        async with self.engine.graph_sync.lock:
            await self.engine.write(self.engine.store.reset)
        return {"message": "All memories were deleted"}

    async def stats(self) -> StatsResult:
        """Counts, pending work, and the health of each model's circuit breaker. Index work a
        crash left owed is finished first, so the counts describe a settled store. A search index
        or graph that fails is one of ``problems``, beside the ledger's counts (a damaged index
        made the whole answer an error: a newcomer's trial)."""
        problems: list[dict[str, Any]] = []
        try:
            await self.engine.read(self.engine.store.searchable)
        except StorageError as exc:
            if exc.error_code == "LEDGER_BEHIND_INDEX":  # the ledger lost memories: its counts would mislead
                raise
            problems.append(exc.to_dict())
        graph = {"entities": 0, "relations": 0}
        if self.config.graph_enabled:
            try:
                await self.engine.graph_sync.flush()
                graph = await self.engine.read(self.engine.components.graph.counts)
            except StorageError as exc:
                problems.append(exc.to_dict())
        counts = await self.engine.read(self.engine.components.ledger.counts)
        return StatsResult(
            memories=counts["memories"],
            history_events=counts["history_events"],
            pending_index=counts["pending_index"],
            pending_inference=counts["pending_inference"],
            entities=graph["entities"],
            relations=graph["relations"],
            llm_model=self.config.llm_model or None,
            circuits=self.engine.components.resilience.states(),
            problems=problems,
        )

    async def users(self) -> list[UserCount]:
        """The user_ids that hold memories and how many each, most first: which ``user_id`` to
        read with when a scope looks empty (a client configured with ``MEMORCH_USER_ID=me``
        wrote what the shell's default user does not see). For the operator of the data
        directory: over MCP a caller learns no other user's id."""
        rows = await self.engine.read(self.engine.components.ledger.scopes)
        return [UserCount(user_id=row["user_id"], memories=row["memories"]) for row in rows]

    async def graph(
        self,
        entity: str,
        *,
        hops: int = 2,
        **scope_ids: Unpack[ScopeIds],
    ) -> GraphView:
        """What the graph knows around one entity (``memorch graph ENTITY``)."""
        if not self.config.graph_enabled:
            raise ConfigurationError("the graph is off", error_code="GRAPH_OFF", suggestion="set MEMORCH_GRAPH=on")
        scope = validation.scope(scope_ids, required=True, allowed=validation.SCOPE_IDS)
        name = validation.text(entity, 1000, "entity")
        hops = validation.bounded_int(hops, "hops", 1, MAX_HOPS)
        # The store's checks on open first: opening the graph before them would create an empty
        # file where a deleted one is to be rebuilt, and it would never be.
        await self.engine.read(self.engine.store.ready)
        await self.engine.graph_sync.flush()
        relations = await self.engine.read(self.engine.components.graph.neighbourhood, scope, name, hops)
        # An expired memory's relations are forgotten with it, before maintenance purges them.
        hidden = await self.engine.read(self.engine.components.ledger.expired_ids, stamp())
        return {"entity": name, "relations": [GraphRelation(**r) for r in relations if r["memory_id"] not in hidden]}

    async def flush_graph(self) -> int:
        """Bring the graph up to date now (it otherwise follows writes after a short delay)."""
        self.engine.check_open()
        return await self.engine.graph_sync.flush()

    async def import_memories(
        self,
        items: Any,
        *,
        progress: Callable[[int, int], None] | None = None,
        **scope_ids: Unpack[ScopeIds],
    ) -> ImportResult:
        """Store many memories verbatim in batches: ``[{"memory", "metadata"?, "user_id"?...}]``,
        or the path of a file ``export_memories`` wrote (memorch's JSONL). Every item is validated
        before anything is written."""
        from memorch.maintenance._bulk import import_memories

        if isinstance(items, str | os.PathLike):
            from memorch.maintenance._export import read_export

            items = await asyncio.to_thread(read_export, Path(items))
        if isinstance(items, dict) or not isinstance(items, Iterable):
            raise ValidationError(
                f"items must be a list of memories, not {type(items).__name__}",
                error_code="INVALID_ITEMS",
                suggestion='pass [{"memory": "..."}, ...], or the path of a file memorch export wrote',
            )
        default = validation.scope(scope_ids, required=False, allowed=validation.SCOPE_IDS)
        return await self.engine.write(import_memories, self.engine.store, list(items), default, progress)

    async def export_memories(
        self,
        path: str | Path,
        **scope_ids: Unpack[ScopeIds],
    ) -> ExportResult:
        """Write memories with their ids, metadata, relations and history to ``path`` as JSONL
        (every memory of every scope unless a scope is given); ``import_memories`` reads it back."""
        from memorch.maintenance._export import export_memories

        scope = validation.scope(scope_ids, required=False, allowed=validation.SCOPE_IDS)
        return await self.engine.read(export_memories, self.engine.store, Path(path), scope)

    async def doctor(self) -> list[DoctorCheck]:
        """Run one real operation against each part (see ``memorch doctor``)."""
        from memorch.maintenance._reindex import doctor

        checks = await self.engine.read(doctor, self.engine.components)
        return [DoctorCheck(name=c.name, ok=c.ok, detail=c.detail, seconds=c.seconds, error=c.error) for c in checks]

    async def reprocess(self, *, limit: int = 1000) -> ReprocessResult:
        """Run inference over messages waiting for it (a model failed, or background inference
        has not reached them yet), each exactly once."""
        from memorch.inference._pending import reprocess_pending

        self.engine.check_open()
        return await reprocess_pending(self.engine, limit)

    async def flush_inference(self) -> InferenceBacklog:
        """Wake background inference and wait until it has done what it can now; returns how
        many messages still wait (e.g. the model is failing) and the last model error."""
        self.engine.check_open()
        if self.config.background_enabled:
            self.background.kick(again=True)
            await self.background.idle()
        pending = (await self.engine.read(self.engine.components.ledger.counts))["pending_inference"]
        return {"pending_inference": pending, "last_error": self.background.last_error}

    def resume_background(self) -> None:
        """Start background inference on what a previous run left pending (call on the event
        loop; the server does on its first request)."""
        if self.config.background_enabled:
            self.background.kick()

    async def maintain(self) -> MaintainResult:
        """Purge the memories whose expiry has passed, as ``delete(purge=True)`` does, and with
        ``MEMORCH_HISTORY_RETENTION`` remove the text of older history events; a process also
        does this by itself, soon after it starts and then hourly (docs/security.md)."""
        return await self.engine.maintain()

    async def reindex(
        self, *, re_embed: bool = False, progress: Callable[[int, int], None] | None = None, force: bool = False
    ) -> ReindexResult:
        """Rebuild the indexes from the ledger (``re_embed`` recomputes every embedding); ``force``
        rebuilds even from a ledger holding fewer memories than the index (see ``index_health``).
        Expired memories are purged first (``maintain``), unless ``force``."""
        from memorch.maintenance._reindex import rebuild

        re_embed, force = validation.flag(re_embed, "re_embed"), validation.flag(force, "force")
        return await rebuild(self.engine, re_embed=re_embed, progress=progress, force=force)

    async def close(self) -> None:
        """Finish queued graph work (kept for the next start if that fails), then close.
        Background inference stops; what it had not done stays pending for the next start."""
        await self.background.close()
        await self.engine.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
