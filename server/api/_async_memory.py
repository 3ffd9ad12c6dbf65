"""``AsyncMemory``: the one implementation of memorch's operations.

The async layer checks input, then hands each operation to a worker thread once (``Workers``):
writes to the one writer thread, where ``Store`` (the owner of writes) plans and commits them
ledger first; reads to the reader pool; model calls to their own pool, so an LLM taking seconds
holds no lock and no writer (inference re-checks its candidates under the lock before applying).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Unpack

import memorch.domain._expiry as expiry_rules
import memorch.domain._validation as validation
import memorch.engine._operations as operations
import memorch.retrieval._timeline as timeline
from memorch.api._admin import AdminMixin
from memorch.config import MemoryConfig
from memorch.domain._messages import Message, parse_messages
from memorch.domain._records import not_found
from memorch.domain._validation import ScopeArgs
from memorch.engine._engine import Engine, noting_redactions
from memorch.errors import ValidationError
from memorch.inference._add import defer, degrade, infer_and_apply
from memorch.inference._pending import BackgroundInference
from memorch.results import (
    AddResult,
    ChangeResult,
    DeleteAllResult,
    HistoryItem,
    MemoryItem,
    MemoryList,
    memory_item,
)
from memorch.retrieval._cut import Cut
from memorch.retrieval._empty import scope_words, why_empty
from memorch.retrieval._search import search_memories
from memorch.retrieval._self import as_first_person, naming_the_user
from memorch.storage.base import Scope
from memorch.storage.filters import compile_filters

log = logging.getLogger("memorch")
MAX_TOKENS = 1_000_000


class AsyncMemory(AdminMixin):
    """Long-term memory: add, search, update, delete, and the history of every change.

    Whose memories a method works on is given by keywords, the same for every method
    (``**scope_args``, typed by ``ScopeArgs``): ``user_id``, ``agent_id``, ``run_id`` and
    ``project``, e.g. ``await memory.search("coffee", user_id="alice")``. A misspelt one is a
    ``TypeError``, as for any keyword.
    """

    def __init__(self, config: MemoryConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = MemoryConfig(**overrides)
        elif overrides:
            config = config.with_overrides(**overrides)
        self.config = config
        self.engine = Engine(config)  # internal: the stores, workers and write path (memorch.engine)
        self.background = BackgroundInference(self.engine)

    @classmethod
    def from_config(cls, config: dict[str, Any] | MemoryConfig) -> AsyncMemory:
        """Build from a ``MemoryConfig`` or a dict (our flat keys or mem0's nested shape)."""
        return cls(config if isinstance(config, MemoryConfig) else MemoryConfig.from_mapping(config))

    # -- add --------------------------------------------------------------------------------

    async def add(
        self,
        messages: Any,
        *,
        metadata: dict[str, Any] | None = None,
        infer: bool | None = None,
        memory_type: str | None = None,
        dry_run: bool = False,
        layer: str | None = None,
        expires_at: str | None = None,
        **scope_args: Unpack[ScopeArgs],
    ) -> AddResult:
        """Remember ``messages``. With ``infer`` (default when an LLM is configured) an LLM
        extracts facts and reconciles them with what is known; without, text is stored verbatim.
        Each event says why (``reason``). ``dry_run``: the decisions, with nothing written.
        With background inference on (``MEMORCH_BACKGROUND_INFERENCE``), an inferring add returns
        once the messages are stored (``pending``) and the model's facts replace them later.
        ``project`` (default: the configured one) and ``layer``: docs/projects.md.
        ``expires_at`` (an ISO date or time, or a duration such as ``"7d"``; default: the scope's
        ``MEMORCH_DEFAULT_EXPIRY``): what this add stores, facts inferred from it included, is
        not returned after then, and maintenance purges it (docs/security.md).
        """
        scope = validation.scope(scope_args, required=True, default_project=self.config.project, layer=layer)
        now = datetime.now(UTC)
        expiry = expiry_rules.expires_at(expires_at, now) or expiry_rules.default_expiry(
            self.config.default_expiry, scope, now
        )
        meta = expiry_rules.with_expiry(validation.metadata(metadata), expiry)
        parsed = parse_messages(messages, self.config.max_text_bytes)
        if memory_type not in (None, "procedural_memory"):
            raise ValidationError(
                "memory_type must be 'procedural_memory' or omitted",
                error_code="INVALID_MEMORY_TYPE",
                details={"field": "memory_type"},
                suggestion="omit memory_type for facts, or pass memory_type='procedural_memory' for a how-to",
            )
        # A real boolean: "false" or "no" is truthy, and would ask the model.
        infer = self.config.llm_enabled if infer is None else validation.flag(infer, "infer")
        dry_run = validation.flag(dry_run, "dry_run")
        if not (infer and self.config.llm_enabled):
            # Redaction runs in the same worker hop as the embedding (add_verbatim).
            said = users_turns(parsed)
            result = await self.engine.add_verbatim(
                said, scope, meta, dry_run=dry_run, redact=True, expiry_asked=expires_at is not None
            )
            if infer:  # asked for, and no model to ask: say so, not a bare "no inference"
                result = _said_without_a_model(result)
            return _with_expiry(_as_dry_run(result) if dry_run else result, expiry)
        # Before anything is stored, embedded or sent; on a worker, as detection is CPU work
        # (~130 ms for a 100 kB text, plus the detector's import on first use).
        parsed, meta, redacted = await self.engine.read(self.engine.redact, parsed, meta)
        meta = noting_redactions(meta, redacted)
        procedural = memory_type is not None
        if self.config.background_enabled and not (dry_run or procedural):
            # Models without the key they need cannot answer, and no retry mends that: degraded now,
            # the add says why, as the waiting path below does at its first request (`memorch
            # reprocess` extracts the facts once a key is set). A few dict lookups: no thread hop.
            unusable = self.engine.components.llm.missing_credentials()
            if unusable is not None:
                result = await degrade(self.engine, parsed, scope, meta, unusable)
            else:
                result = await defer(self.engine, parsed, scope, meta, self.background.last_error)
                self.background.kick()
        else:
            result = await infer_and_apply(self.engine, parsed, scope, meta, procedural=procedural, dry_run=dry_run)
        if dry_run:
            result = _as_dry_run(result)
        if redacted:
            result["redacted"] = redacted
        return _with_expiry(result, expiry)

    # -- read -------------------------------------------------------------------------------

    async def get(
        self,
        memory_id: str,
        **scope_args: Unpack[ScopeArgs],
    ) -> MemoryItem:
        """One memory by id. With no scope given the id alone decides; a given scope narrows
        (``MemoryNotFoundError`` when the memory is unknown or outside it)."""
        memory_id = validation.memory_id(memory_id)
        scope = validation.scope(scope_args, required=False)
        return memory_item(await self.engine.read(operations.in_scope, self.engine.store, memory_id, scope))

    async def get_all(
        self,
        *,
        filters: dict[str, Any] | None = None,
        limit: int = 100,
        as_of: str | None = None,
        max_tokens: int | None = None,
        cursor: str | None = None,
        **scope_args: Unpack[ScopeArgs],
    ) -> MemoryList:
        """The scope's memories, newest first, optionally filtered by metadata. ``as_of``: as they
        stood then (from the history; each item says if it is still ``current``); ``max_tokens``:
        only as many as fit that many tokens of text (``omitted`` counts the rest). When more
        remain, ``next_cursor`` is returned: pass it as ``cursor`` for the next page."""
        scope = validation.scope(scope_args, required=True, default_project=self.config.project)
        limit, budget, after = validation.limit(limit), _budget(max_tokens), validation.cursor(cursor)
        if as_of is not None:
            if filters:
                raise _as_of_with_filters()
            if after is not None:
                raise ValidationError(
                    "cursor cannot be combined with as_of (a past view is read whole, up to limit)",
                    error_code="INVALID_ARGUMENT",
                    suggestion="drop cursor, or drop as_of to page through today's memories",
                )
            result = await self.engine.read(
                timeline.list_at, self.engine.store, scope, timeline.parse_as_of(as_of), limit
            )
            return await self._said_if_empty(timeline.within_budget(result, budget), scope, False, as_of)
        where = compile_filters(filters)
        records = await self.engine.read(self.engine.components.ledger.list, scope, where, limit + 1, after)
        page = timeline.within_budget({"results": [memory_item(r) for r in records[:limit]]}, budget)
        kept = page["results"]
        if kept and (len(records) > limit or page.get("omitted")):
            page["next_cursor"] = validation.page_cursor(kept[-1]["created_at"], kept[-1]["id"])
        if after is None:
            return await self._said_if_empty(page, scope, bool(filters))
        if not kept and not page.get("omitted"):
            page["empty"] = f"no memory of {scope_words(scope)} comes after this cursor: the list is complete"
        return page

    async def search(
        self,
        query: str,
        *,
        limit: int = 10,
        filters: dict[str, Any] | None = None,
        threshold: float | None = None,
        explain: bool = False,
        as_of: str | None = None,
        max_tokens: int | None = None,
        asked_at: str | None = None,
        **scope_args: Unpack[ScopeArgs],
    ) -> MemoryList:
        """The scope's memories that best answer ``query``: vector similarity, BM25 full text and
        graph links; ``score`` is absolute relevance in [0, 1]; ``explain`` adds per-signal detail.
        ``as_of`` searches the memories as they stood then; ``max_tokens`` keeps the best results
        that fit that many tokens of text. A time the query names ("last week", "two days ago")
        counts from ``asked_at`` (an ISO time; default now), and the memories created then rank
        higher."""
        scope = validation.scope(scope_args, required=True, default_project=self.config.project)
        query = validation.text(query, self.config.max_text_bytes, "query")
        if (name := naming_the_user(query, scope)) is not None:  # "Alice" in alice's memories
            query = await self.engine.read(as_first_person, query, name, scope, self.engine.components.ledger)
        limit = validation.limit(limit)
        explain = validation.flag(explain, "explain")
        cut = Cut.of(validation.threshold(threshold), self.config.search_threshold)
        budget = _budget(max_tokens)
        asked = validation.moment(asked_at, "asked_at")
        if as_of is not None:
            if filters:
                raise _as_of_with_filters()
            when = timeline.parse_as_of(as_of)
            result = await self.engine.read(timeline.search_at, self.engine.store, query, scope, when, limit, cut)
            return await self._said_if_empty(timeline.within_budget(result, budget), scope, False, as_of)
        where = compile_filters(filters)
        result = await self.engine.read(search_memories, self.engine, query, scope, limit, where, cut, explain, asked)
        return await self._said_if_empty(timeline.within_budget(result, budget), scope, bool(filters))

    async def _said_if_empty(
        self, found: MemoryList, scope: Scope, filtered: bool, as_of: str | None = None
    ) -> MemoryList:
        """``found``, with ``empty`` saying why when it holds nothing and no weaker match was cut
        (nor every match left out for ``max_tokens``: ``omitted`` says that)."""
        if found["results"] or "below_threshold" in found or found.get("omitted"):
            return found
        reason = await self.engine.read(why_empty, self.engine.components.ledger, scope, filtered, as_of)
        return {**found, "empty": reason}

    async def history(
        self,
        memory_id: str,
        **scope_args: Unpack[ScopeArgs],
    ) -> list[HistoryItem]:
        """Every change to one memory, oldest first (kept after the memory is deleted)."""
        memory_id = validation.memory_id(memory_id)
        scope = validation.scope(scope_args, required=False)
        events = await self.engine.read(self.engine.components.ledger.history, memory_id, scope)
        if not events:
            raise not_found(memory_id, ever=True)
        return [HistoryItem(**e.public()) for e in events]  # type: ignore[typeddict-item]

    # -- change -----------------------------------------------------------------------------

    async def update(
        self,
        memory_id: str,
        data: str,
        *,
        metadata: dict[str, Any] | None = None,
        expires_at: str | None = None,
        **scope_args: Unpack[ScopeArgs],
    ) -> ChangeResult:
        """Replace a memory's text (and, if given, its metadata); history keeps the old text.
        ``expires_at``: a new expiry (as for ``add``), or ``"never"`` to remove it; omitted: kept."""
        scope = validation.scope(scope_args, required=False)
        text = validation.text(data, self.config.max_text_bytes, "text")
        expiry = expiry_rules.expires_at(expires_at, datetime.now(UTC), allow_never=True)
        new_meta = None if metadata is None else validation.metadata(metadata)
        [message], redacted_meta, redacted = await self.engine.read(
            self.engine.redact, [Message("user", text)], new_meta or {}
        )
        new_meta = None if new_meta is None else redacted_meta
        result = await self.engine.write(
            operations.update,
            self.engine.store,
            validation.memory_id(memory_id),
            scope,
            message.content,
            new_meta,
            expiry,
        )
        if redacted:
            result["redacted"] = redacted
        return result

    async def delete(
        self,
        memory_id: str,
        *,
        purge: bool = False,
        **scope_args: Unpack[ScopeArgs],
    ) -> ChangeResult:
        """Delete one memory; its history stays readable through ``history``. Deleting a memory
        that is already deleted succeeds with event NONE (so a retried call is harmless).

        ``purge=True`` forgets it for good (event PURGE, ``purged: True``), also one deleted
        before: its text leaves the ledger with its history (one text-free PURGE event stays),
        its relations and embedding-cache entry go, and before this returns its vector rows and
        every LanceDB version that held them are removed, the graph drops its relations and
        SQLite's free pages and WAL are cleared. ``restore`` then raises ``MEMORY_PURGED``.
        See docs/security.md, "Forgetting for good"."""
        memory_id = validation.memory_id(memory_id)
        purge = validation.flag(purge, "purge")
        scope = validation.scope(scope_args, required=False)
        if not purge:
            return await self.engine.write(operations.delete, self.engine.store, memory_id, scope)
        async with self.engine.graph_sync.lock:  # no graph sync beside a purge's (see ``Store.purge_indexes``)
            return await self.engine.write(operations.delete, self.engine.store, memory_id, scope, True)

    async def restore(
        self,
        memory_id: str,
        event_id: str | None = None,
        **scope_args: Unpack[ScopeArgs],
    ) -> ChangeResult:
        """Undo a change: the memory's text as it was before history event ``event_id`` (default:
        before its last change), recorded as a RESTORE event; deleted memories come back too."""
        memory_id = validation.memory_id(memory_id)
        if event_id is not None:
            event_id = validation.memory_id(event_id, "event_id")
        scope = validation.scope(scope_args, required=False)
        return await self.engine.write(operations.restore, self.engine.store, memory_id, scope, event_id)

    async def delete_all(
        self,
        *,
        purge: bool = False,
        **scope_args: Unpack[ScopeArgs],
    ) -> DeleteAllResult:
        """Delete every memory of a scope (with ``project``: that project's layer alone, the
        global layer being every project's; without: every layer). Refuses an empty scope (see
        ``reset``). ``purge=True``: each one is purged as ``delete`` does, and so is the history
        of those deleted before."""
        purge = validation.flag(purge, "purge")
        scope = validation.scope(scope_args, required=True)
        if purge:
            async with self.engine.graph_sync.lock:
                return await self.engine.write(operations.purge_all, self.engine.store, scope)
        return await self.engine.write(operations.delete_all, self.engine.store, scope)


def _said_without_a_model(result: AddResult) -> AddResult:
    for item in result["results"]:
        if item["event"] == "ADD":
            said = item["reason"].removesuffix(" (no inference)")
            item["reason"] = f"{said}: infer was asked for, but no LLM is configured (set MEMORCH_LLM_MODEL)"
    return result


def _as_dry_run(result: AddResult) -> AddResult:
    """A dry run's answer: every event's reason says nothing was written (with a model, an ADD's
    id read as a memory's, and the next call met MEMORY_NOT_FOUND: a newcomer's trial)."""
    for item in result["results"]:
        item["reason"] = f"{item.get('reason') or 'planned'} (dry run: nothing was written)"
    return {**result, "dry_run": True}


def _with_expiry(result: AddResult, expiry: str | None) -> AddResult:
    """The add's expiry, said only when something was stored with it (a repeat keeps its own)."""
    if expiry is not None and any(item["event"] in ("ADD", "UPDATE") for item in result["results"]):
        result["expires_at"] = expiry
    return result


def users_turns(messages: list[Message]) -> list[Message]:
    """What a verbatim add keeps of a conversation: the user's turns (an assistant's "Nice!" is
    no memory, and without a model nothing can tell its facts from its chatter); a conversation
    without a user turn keeps every non-system message, as an add of one text does."""
    users = [m for m in messages if m.role == "user"]
    return users or messages


def _budget(max_tokens: Any) -> int | None:
    return None if max_tokens is None else validation.bounded_int(max_tokens, "max_tokens", 1, MAX_TOKENS)


def _as_of_with_filters() -> ValidationError:
    return ValidationError(
        "filters cannot be combined with as_of (past versions carry no metadata history)",
        error_code="INVALID_ARGUMENT",
        suggestion="drop filters, or drop as_of to filter today's memories",
    )
