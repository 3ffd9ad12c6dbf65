"""``Engine``: what every operation runs on, owned in one place.

The engine holds the configuration, the lazily opened parts (``Components``), the ``Store`` (the
one owner of writes), the worker threads (``Workers``) and the two debouncers that keep the
derived indexes in step with the ledger. ``write`` is the one way an operation reaches the writer
thread; ``add_verbatim`` is the write path of text stored as said (redaction, embedding and the
nearest-memory hint in one reader hop, then the plan and commit on the writer).

Layers above take the engine, never the facade: inference, background work and maintenance call
``engine.write`` and ``engine.add_verbatim``, so nothing below ``memorch.api`` knows
``AsyncMemory`` exists.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from memorch.config import MemoryConfig
from memorch.domain._messages import Message
from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.engine import _operations as operations
from memorch.engine._blas import one_blas_thread
from memorch.engine._components import Components, closed_error
from memorch.engine._debounce import Debounced
from memorch.engine._expiry import Sweeper, sweep
from memorch.engine._store import Store
from memorch.engine._workers import Workers
from memorch.errors import ValidationError
from memorch.results import AddResult, MaintainResult, Redaction
from memorch.storage.base import Scope

T = TypeVar("T")
log = logging.getLogger("memorch.engine")
# How long closing waits for reads already running (a search is milliseconds; a remote embedder's
# query is bounded by its own timeout, usually less).
READS_AT_CLOSE_S = 30.0


class Engine:
    """The configuration, the stores and models, the writer and its helpers of one memory."""

    def __init__(self, config: MemoryConfig) -> None:
        one_blas_thread()
        self.config = config
        self.components = Components(config)
        self.store = Store(config, self.components)
        self.workers = Workers()
        self.graph_sync = Debounced(self.store.drain_graph, config.graph_flush_delay, "graph")
        self.index_sync = Debounced(self.store.index_owed, config.index_flush_delay, "vector index")
        self.sweeper = Sweeper()  # expiry and history retention, now and then (``_expiry``)
        self.closed = False

    def check_open(self) -> None:
        """A closed memory refuses every call (its stores would reopen half-way, or its sync
        facade wait for ever on a stopped loop)."""
        if self.closed:
            raise closed_error()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the writer thread; index and graph work it owes is scheduled on this loop."""
        self.check_open()
        loop = asyncio.get_running_loop()
        self.store.on_graph_work = functools.partial(loop.call_soon_threadsafe, self.graph_sync.schedule)
        self.store.on_index_work = functools.partial(loop.call_soon_threadsafe, self.index_sync.schedule)
        try:
            return await self.workers.write(fn, *args)
        finally:
            self.sweeper.maybe_start(self.store, self.maintain)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the reader pool, beside other reads and the writer."""
        self.check_open()
        try:
            return await self.workers.read(fn, *args)
        finally:
            self.sweeper.maybe_start(self.store, self.maintain)

    async def maintain(self, now: datetime | None = None) -> MaintainResult:
        """Purge expired memories and, with ``MEMORCH_HISTORY_RETENTION``, old history text
        (``_expiry.sweep``); ``now``: the time to judge by (default: now)."""
        self.check_open()
        async with self.graph_sync.lock:  # no graph sync beside a purge's (see ``Store.purge_indexes``)
            return await self.workers.write(sweep, self.store, now)

    def redact(
        self, messages: list[Message], metadata: dict[str, Any]
    ) -> tuple[list[Message], dict[str, Any], list[Redaction]]:
        """Each message's content and every metadata string with credentials replaced
        (``MEMORCH_REDACT``), and what went."""
        if not self.config.redact_enabled:
            return messages, metadata, []
        from memorch.domain._redaction import redact, redact_metadata, summarize

        done = [redact(m.content) for m in messages]
        cleaned_metadata, in_metadata = redact_metadata(metadata)
        findings = [f for r in done for f in r.findings] + in_metadata
        if not findings:
            return messages, metadata, []
        cleaned = [replace(m, content=r.text) for m, r in zip(messages, done, strict=True)]
        return cleaned, cleaned_metadata, summarize(findings)

    async def add_verbatim(
        self,
        messages: list[Message],
        scope: Scope,
        metadata: dict[str, Any],
        marks: list[dict[str, Any]] | None = None,
        *,
        dry_run: bool = False,
        redact: bool = False,
        expiry_asked: bool = True,
    ) -> AddResult:
        """Store each non-system message as it is (see ``operations.add_verbatim``); ``redact``:
        take credentials out first (``MEMORCH_REDACT``); ``expiry_asked``: False when the
        metadata's expiry is the scope's default, not the caller's."""
        stored = [m for m in messages if m.role != "system"]
        if not stored:
            raise ValidationError(
                "there is nothing to remember: only system messages were given",
                error_code="EMPTY_TEXT",
                suggestion='add the user\'s words as {"role": "user", "content": "..."}',
            )
        # Redaction, embedding and the nearest-memory lookup run beside other writes, in one
        # worker hop; only the plan and the commit queue on the writer thread.
        stored, metadata, redacted, prep = await self.read(self._prepare_verbatim, stored, scope, metadata, redact)
        metadata = noting_redactions(metadata, redacted)
        result = await self.write(
            operations.add_verbatim, self.store, stored, scope, metadata, prep, marks, dry_run, expiry_asked
        )
        if redacted:
            result["redacted"] = redacted
        return result

    def _prepare_verbatim(
        self, messages: list[Message], scope: Scope, metadata: dict[str, Any], redact: bool
    ) -> tuple[list[Message], dict[str, Any], list[Redaction], operations.VerbatimPrep]:
        messages, metadata, redacted = self.redact(messages, metadata) if redact else (messages, metadata, [])
        return messages, metadata, redacted, operations.prepare_verbatim(self.store, messages, scope)

    async def close(self) -> None:
        """Write owed index work (kept for the next start if that fails), stop the workers, close
        the stores. (Closed from then on: a sweep already running finishes first.)"""
        await self.sweeper.close()
        self.closed = True
        # Reads already running finish on open stores; new ones, even those that do not pass
        # through ``read``, are refused from here on.
        if not await asyncio.to_thread(self.workers.wait_for_reads, READS_AT_CLOSE_S):
            log.warning("closing with reads still running after %s s", READS_AT_CLOSE_S)
        # The workers first: a write still queued commits, and its owed index and graph work is
        # flushed below with the rest (after the debouncers close, nothing schedules a drain).
        self.workers.close()
        await self.index_sync.close(flush=self.components.opened)
        await self.graph_sync.close(flush=self.config.graph_enabled and self.components.opened)
        await asyncio.to_thread(self.components.close)


def noting_redactions(metadata: dict[str, Any], redacted: list[Redaction]) -> dict[str, Any]:
    """``metadata`` with what redaction took out recorded in its reserved ``_memorch`` object."""
    if not redacted:
        return metadata
    return {**metadata, RESERVED_METADATA_KEY: {**metadata.get(RESERVED_METADATA_KEY, {}), "redacted": redacted}}
