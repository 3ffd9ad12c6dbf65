"""Maintenance of expiry and history retention: expired memories purged, old history text removed.

Reads hide an expired memory from its expiry on (the ledger's queries, ``storage/expiry.py``);
``sweep`` then removes it the way a user's purge does (``Store.purge``: ledger row, history
down to one text-free PURGE event, relations, embedding-cache entries, vector rows and every
LanceDB version that held them, the graph's relations, SQLite's free pages and WAL). With
``MEMORCH_HISTORY_RETENTION`` it also removes the text of history events older than that
(``Ledger.strip_history``) and rewrites the index files that could still hold it.

It runs on the writer thread (``Engine.write``), holding the graph debouncer's lock as a purge
does: now and then by itself (``Sweeper``: at the first operation of a process, then every
``SWEEP_EVERY_S``), and on request (``AsyncMemory.maintain``, ``reindex``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from memorch.errors import MemoryError
from memorch.results import MaintainResult
from memorch.storage.expiry import EXPIRY_REASON, stamp
from memorch.storage.sql import chunks

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from memorch.engine._store import Store

log = logging.getLogger("memorch")
# How often a process sweeps by itself. Reads hide expired memories at once, so this only bounds
# how long their bytes stay on disk; each sweep that finds something rewrites index files.
SWEEP_EVERY_S = 3600.0
PURGE_BATCH = 500  # expired memories per ledger transaction


def has_work(store: Store, now: datetime) -> bool:
    """Whether ``sweep`` has anything to do: a memory expired, a deleted one whose expiry has
    passed, a purge left unfinished, or a history retention set (the usual answer, no: an
    indexed read, a read of the outbox and a scan of the history's deletions, no lock taken)."""
    if store.parts.read_only:
        return False
    ledger = store.parts.ledger
    if store.config.retention is not None or ledger.expired_ids(stamp(now)) or store.purge_is_owed():
        return True
    return bool(ledger.expired_deleted_ids(stamp(now)))


def sweep(store: Store, now: datetime | None = None) -> MaintainResult:
    """Purge every memory expired at ``now`` (default: now), and every deleted one whose expiry
    has passed, finish every purge a stop left unfinished, and, with a history retention, remove
    the text of history events older than ``now`` minus it; then scrub the ledger's files.
    On the writer thread, with the graph debouncer's lock held (``Engine.maintain``)."""
    from memorch.models._embeddings import text_hash

    done = MaintainResult(expired=0, expired_ids=[], history_events_cleared=0)
    moment = now or datetime.now(UTC)
    if not has_work(store, moment):
        return done
    retention = store.config.retention
    ledger = store.parts.ledger
    with store.writing():
        # A deleted memory's expiry ends its history as it would have ended the memory.
        ids = sorted(ledger.expired_ids(stamp(moment)) | ledger.expired_deleted_ids(stamp(moment)))
        purged: set[str] = set()
        renewed: set[str] = set()
        for batch in chunks(ids, PURGE_BATCH):
            # Locked as any purge is (``Store.reconciling``), so another replica's inference does
            # not bring a memory back with its text; read again under the locks, so one given a
            # later expiry meanwhile (an update) stays.
            with ledger.memory_locks(batch):
                live = ledger.get_many(batch)
                renewed |= {r.id for r in live if not r.expired(stamp(moment))}
                records = [r for r in live if r.id not in renewed]
                due = [i for i in batch if i not in renewed]
                purged.update(store.purge(records, due, reason=EXPIRY_REASON))
        ids = [i for i in ids if i not in renewed]
        if retention is not None:
            stripped = ledger.strip_history(stamp(moment - retention), text_hash)
            store.rewrite_indexes(stripped.memory_ids, stripped.relations)
            done["history_events_cleared"] = stripped.events
        if purged:  # its scrub is retention's too
            store.finish_purges(sorted(purged))
        elif done["history_events_cleared"]:
            ledger.scrub()
        # Then the purges a stop left unfinished (none is running: this holds the write lock).
        if finished := store.finish_owed_purges():
            log.info("finished %d purges a stop left unfinished", finished)
    done["expired"], done["expired_ids"] = len(ids), ids
    return done


class Sweeper:
    """Runs ``sweep`` by itself: once soon after a process starts working, then every
    ``SWEEP_EVERY_S``, as a task on the event loop (never on a caller's path)."""

    def __init__(self) -> None:
        self._last = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def maybe_start(self, store: Store, maintain: Callable[[], Awaitable[MaintainResult]]) -> None:
        """Start ``maintain`` when a sweep is due (called on the event loop after an operation);
        never after ``close`` (a call finishing while its memory closes)."""
        if self._closed or time.monotonic() - self._last < SWEEP_EVERY_S:
            return
        if not store.parts.opened or store.parts.read_only:
            return  # nothing opened yet (a validation error), or nothing can be removed
        self._last = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(store, maintain))

    async def _run(self, store: Store, maintain: Callable[[], Awaitable[MaintainResult]]) -> None:
        try:
            # The check on a thread of its own, not the writer's: a sweep with nothing to do
            # (the usual case) never queues before the callers' writes.
            if not await asyncio.to_thread(has_work, store, datetime.now(UTC)):
                return
            found = await maintain()
        except MemoryError:
            # Nothing is lost: expired memories stay hidden and the next sweep tries again.
            log.warning("expiry and retention maintenance failed; it runs again later", exc_info=True)
            return
        if found["expired"] or found["history_events_cleared"]:
            log.info(
                "maintenance purged %d expired memories and the text of %d old history events",
                found["expired"],
                found["history_events_cleared"],
            )

    async def close(self) -> None:
        """Let a running sweep finish (its purge is atomic per step, but the files are scrubbed
        at its end)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)
