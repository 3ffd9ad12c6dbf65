"""``AsyncMemory``: the one implementation of memorch's operations.

Every write goes ledger first (one SQLite transaction: memory rows, history events, owed index
work), then the derived indexes; a crash in between is repaired by replaying the outbox. Blocking
work (SQLite, LanceDB, the embedding model, LiteLLM) runs on worker threads so the event loop of
an MCP server stays responsive. Writes of one instance are serialized by an asyncio lock so that
duplicate checks and the writes they decide on cannot interleave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from memorch.storage.base import Change, MemoryRecord, Scope
from memorch.storage.filters import compile_filters

from . import validation
from .admin import AdminMixin
from .components import Components
from .config import MemoryConfig
from .errors import StorageError, ValidationError
from .graph_sync import GraphSync
from .messages import Message, normalized_hash, parse_messages
from .records import deletion, new_record, not_found, replaced, utc_now
from .results import (
    AddEvent,
    AddResult,
    ChangeResult,
    DeleteAllResult,
    HistoryItem,
    MemoryItem,
    MemoryList,
    SimilarMemory,
    event,
    memory_item,
)

log = logging.getLogger("memorch")
T = TypeVar("T")


class AsyncMemory(AdminMixin):
    """Long-term memory: add, search, update, delete, and the history of every change."""

    def __init__(self, config: MemoryConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = MemoryConfig(**overrides)
        elif overrides:
            config = config.model_copy(update=overrides)
        self.config = config
        self.components = Components(config)
        self._write_lock = asyncio.Lock()
        self.graph_sync = GraphSync(self.components, config.graph_flush_delay)

    @classmethod
    def from_config(cls, config: dict[str, Any] | MemoryConfig) -> AsyncMemory:
        """Build from a ``MemoryConfig`` or a dict (our flat keys or mem0's nested shape)."""
        return cls(config if isinstance(config, MemoryConfig) else MemoryConfig.from_mapping(config))

    # -- plumbing ---------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def _ready(self) -> None:
        """Open the indexes and finish any index work a crash left behind."""
        if not self.components.replayed:
            await self._run(self.components.replay_pending)

    def _scope(self, user_id: Any, agent_id: Any, run_id: Any, *, required: bool) -> Scope:
        scope = Scope(
            validation.scope_id(user_id, "user_id"),
            validation.scope_id(agent_id, "agent_id"),
            validation.scope_id(run_id, "run_id"),
        )
        if required and scope.is_empty():
            raise ValidationError(
                "at least one of user_id, agent_id or run_id is required",
                error_code="SCOPE_REQUIRED",
                suggestion="pass user_id (servers and the CLI default it to MEMORCH_USER_ID)",
            )
        return scope

    async def _commit(self, changes: list[Change]) -> None:
        """Ledger first (durable), then the vector index. Index failures are replayed later."""
        if not changes:
            return
        await self._run(self.components.write, changes)
        try:
            await self._run(self.components.sync_vectors, [c.record.id for c in changes])
        except StorageError:
            # The change is safe in the ledger and queued in its outbox; the next operation
            # retries the index work, so the caller's write still succeeded.
            log.warning("vector index update deferred; it will be replayed", exc_info=True)
            self.components.replayed = False
        if self.config.graph_enabled:
            self.graph_sync.schedule()

    async def _record(self, memory_id: Any, scope: Scope) -> MemoryRecord:
        memory_id = validation.memory_id(memory_id)
        record = await self._run(self.components.ledger.get, memory_id)
        if record is None or not scope.contains(record):
            raise not_found(memory_id)
        return record

    # -- add --------------------------------------------------------------------------------

    async def add(
        self,
        messages: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        infer: bool | None = None,
        memory_type: str | None = None,
    ) -> AddResult:
        """Remember ``messages``. With ``infer`` (default when an LLM is configured) an LLM
        extracts facts and reconciles them with what is known; without, text is stored verbatim.
        """
        scope = self._scope(user_id, agent_id, run_id, required=True)
        meta = validation.metadata(metadata)
        parsed = parse_messages(messages, self.config.max_text_bytes)
        if memory_type not in (None, "procedural_memory"):
            raise ValidationError(
                "memory_type must be 'procedural_memory' or omitted", error_code="INVALID_MEMORY_TYPE"
            )
        infer = self.config.llm_enabled if infer is None else bool(infer)
        if infer and self.config.llm_enabled:
            from .inference import infer_and_apply

            return await infer_and_apply(self, parsed, scope, meta, procedural=memory_type is not None)
        return await self.add_verbatim(parsed, scope, meta)

    async def add_verbatim(self, messages: list[Message], scope: Scope, metadata: dict[str, Any]) -> AddResult:
        """Store each non-system message as it is. Only a true repeat (the same text up to case,
        white space and punctuation) is skipped as NONE; a merely similar memory is reported."""
        stored = [m for m in messages if m.role != "system"]
        if not stored:
            raise ValidationError(
                "there is nothing to remember: only system messages were given", error_code="EMPTY_TEXT"
            )
        async with self._write_lock:
            return await self.store_verbatim_locked(stored, scope, metadata)

    async def store_verbatim_locked(
        self, messages: list[Message], scope: Scope, metadata: dict[str, Any], **_legacy: Any
    ) -> AddResult:
        """The verbatim write; the caller holds the write lock."""
        await self._ready()
        vectors = await self._run(self.components.embedder.embed, [m.content for m in messages])
        results, changes = await self._run(self._plan_verbatim, messages, vectors, scope, metadata)
        await self._commit(changes)
        return {"results": results}

    def _plan_verbatim(
        self, messages: list[Message], vectors: Any, scope: Scope, metadata: dict[str, Any]
    ) -> tuple[list[AddEvent], list[Change]]:
        results: list[AddEvent] = []
        changes: list[Change] = []
        now = utc_now()
        for message, vector in zip(messages, vectors, strict=True):
            repeat = self.find_repeat(message.content, scope, changes)
            if repeat is not None:
                results.append({**event("NONE", repeat), "reason": "the same text is already stored"})
                continue
            record = new_record(message.content, vector, scope, metadata, now)
            item = event("ADD", record)
            similar = self.most_similar(vector, scope, changes)
            if similar is not None:
                # An embedding cannot tell "Monday" from "Tuesday" or "allergic" from "not
                # allergic", so a near-duplicate is stored and only pointed out.
                item["similar"] = similar
            changes.append(Change("ADD", record, actor_id=message.name, role=message.role))
            results.append(item)
        return results, changes

    def find_repeat(self, text: str, scope: Scope, pending: list[Change]) -> MemoryRecord | None:
        """A memory of the scope (stored, or planned in this call) with the same normalized text."""
        text_hash = normalized_hash(text)
        for change in pending:
            if change.kind != "DELETE" and change.record.hash == text_hash:
                return change.record
        return self.components.ledger.find_by_hash(scope, text_hash)

    def find_duplicate(
        self, text: str, vector: Any, scope: Scope, pending: list[Change], near: bool = False
    ) -> MemoryRecord | None:
        """Kept for the inference path until it calls ``find_repeat``; only exact repeats."""
        return self.find_repeat(text, scope, pending)

    def most_similar(self, vector: Any, scope: Scope, pending: list[Change]) -> SimilarMemory | None:
        """The scope's closest memory when at least ``dedup_threshold`` similar, else None."""
        best: tuple[float, MemoryRecord] | None = None
        for change in pending:
            if change.kind != "DELETE" and change.record.embedding is not None:
                score = float(change.record.embedding @ vector)
                if best is None or score > best[0]:
                    best = (score, change.record)
        hits = self.components.vectors.search(vector, scope, 1)
        if hits and (best is None or hits[0].score > best[0]):
            record = self.components.ledger.get(hits[0].id)
            if record is not None:
                best = (hits[0].score, record)
        if best is None or best[0] < self.config.dedup_threshold:
            return None
        return SimilarMemory(id=best[1].id, memory=best[1].memory, similarity=round(best[0], 4))

    # -- read -------------------------------------------------------------------------------

    async def get(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> MemoryItem:
        """One memory by id. With no scope given the id alone decides; a given scope narrows
        (``MemoryNotFoundError`` when the memory is unknown or outside it)."""
        scope = self._scope(user_id, agent_id, run_id, required=False)
        return memory_item(await self._record(memory_id, scope))

    async def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 100,
    ) -> MemoryList:
        """The scope's memories, newest first, optionally filtered by metadata."""
        scope = self._scope(user_id, agent_id, run_id, required=True)
        where = compile_filters(filters)
        records = await self._run(self.components.ledger.list, scope, where, validation.limit(limit))
        return {"results": [memory_item(r) for r in records]}

    async def search(
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
    ) -> MemoryList:
        """The scope's memories that best answer ``query``: vector similarity, BM25 full text and
        graph links fused by relative score; scores in [0, 1]; ``explain`` adds per-signal ranks."""
        from .retrieval import hybrid_search

        scope = self._scope(user_id, agent_id, run_id, required=True)
        query = validation.text(query, self.config.max_text_bytes, "query")
        limit, min_score = validation.limit(limit), validation.threshold(threshold)
        if min_score is None:
            min_score = self.config.search_threshold
        where = compile_filters(filters)
        await self._ready()
        vector = (await self._run(self.components.embedder.embed, [query]))[0]
        ranked = await self._run(hybrid_search, self.components, self.config, query, vector, scope, limit, where)
        records = {r.id: r for r in await self._run(self.components.ledger.get_many, [h.id for h in ranked])}
        results: list[MemoryItem] = []
        for hit in ranked:
            record = records.get(hit.id)
            # The scope check is a second guard: the index already filtered by scope.
            if record is not None and scope.contains(record) and hit.score >= min_score:
                item = memory_item(record)
                item["score"] = round(hit.score, 6)
                if explain:
                    item["explain"] = hit.signals
                results.append(item)
        if not self.config.graph_enabled:
            return {"results": results}
        from .graph_memory import search_relations

        relations = await self._run(search_relations, self.components, scope, query, [r["id"] for r in results])
        return {"results": results, "relations": relations}

    async def history(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> list[HistoryItem]:
        """Every change to one memory, oldest first (kept after the memory is deleted)."""
        memory_id = validation.memory_id(memory_id)
        scope = self._scope(user_id, agent_id, run_id, required=False)
        events = await self._run(self.components.ledger.history, memory_id, scope)
        if not events:
            raise not_found(memory_id)
        return [HistoryItem(**e.public()) for e in events]  # type: ignore[typeddict-item]

    # -- change -----------------------------------------------------------------------------

    async def update(
        self,
        memory_id: str,
        data: str,
        *,
        metadata: dict[str, Any] | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> ChangeResult:
        """Replace a memory's text (and, if given, its metadata); history keeps the old text."""
        scope = self._scope(user_id, agent_id, run_id, required=False)
        text = validation.text(data, self.config.max_text_bytes, "text")
        new_meta = None if metadata is None else validation.metadata(metadata)
        async with self._write_lock:
            record = await self._record(memory_id, scope)
            if text == record.memory and (new_meta is None or new_meta == record.metadata):
                return {"id": record.id, "memory": record.memory, "event": "NONE", "message": "already says this"}
            await self._ready()
            vector = (await self._run(self.components.embedder.embed, [text]))[0]
            updated = replaced(record, text, vector, new_meta)
            # Relations were extracted from the old text; a hand edit clears them rather than
            # leave the graph asserting what the memory no longer says.
            cleared = () if self.config.graph_enabled else None
            await self._commit([Change("UPDATE", updated, old_memory=record.memory, relations=cleared)])
        return {"id": updated.id, "memory": text, "event": "UPDATE", "previous_memory": record.memory}

    async def delete(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> ChangeResult:
        """Delete one memory; its history stays readable through ``history``. Deleting a memory
        that is already deleted succeeds with event NONE (so a retried call is harmless)."""
        memory_id = validation.memory_id(memory_id)
        scope = self._scope(user_id, agent_id, run_id, required=False)
        async with self._write_lock:
            record = await self._run(self.components.ledger.get, memory_id)
            if record is None or not scope.contains(record):
                return await self._already_deleted(memory_id, scope)
            await self._commit([deletion(record)])
        return {"id": record.id, "memory": record.memory, "event": "DELETE", "message": "Memory deleted successfully!"}

    async def _already_deleted(self, memory_id: str, scope: Scope) -> ChangeResult:
        events = await self._run(self.components.ledger.history, memory_id, scope)
        if not events or not events[-1].is_deleted:
            raise not_found(memory_id)
        last_text = events[-1].old_memory or ""
        return {"id": memory_id, "memory": last_text, "event": "NONE", "message": "Memory was already deleted"}

    async def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> DeleteAllResult:
        """Delete every memory of a scope. Refuses an empty scope (see ``reset``)."""
        scope = self._scope(user_id, agent_id, run_id, required=True)
        async with self._write_lock:
            ids = await self._run(self.components.ledger.ids, scope)
            for start in range(0, len(ids), 500):
                records = await self._run(self.components.ledger.get_many, ids[start : start + 500])
                await self._commit([deletion(r) for r in records])
        return {"deleted": len(ids), "message": f"Deleted {len(ids)} memories"}
