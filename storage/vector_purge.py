"""Removing vector rows for good (``LanceVectorIndex.purge``, a mixin): a delete only marks rows
deleted and every earlier version keeps them, so a purge rewrites the fragment that held them,
rebuilds the full-text index and removes every older version and unreferenced file."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

from memorch.storage.base import MemoryRecord
from memorch.storage.sql import chunks
from memorch.storage.vector_plan import SearchPlanner, id_list
from memorch.storage.vector_rows import arrow_rows
from memorch.storage.vector_versions import NO_PRUNE, VersionPruner, held_if_free

# How long a purge waits for another process's maintenance pass to end, and how long after its
# last write it removes the older versions (their timestamps are microseconds; the latest
# version is never removed).
PURGE_PASS_WAIT_S = 30.0
PURGE_CLOCK_S = 0.01
# Ids per ``id IN (...)`` filter: LanceDB parses the filter as SQL text, and lists of a few
# hundred UUID literals keep each filter small.
ID_CHUNK = 500
log = logging.getLogger("memorch.vectors")


class VectorPurge:
    """What ``purge`` uses of ``LanceVectorIndex``."""

    _table: Any
    _lock: threading.Lock
    _maintaining: threading.Lock
    _pass_lock: Any
    _pruner: VersionPruner
    _pruner_hold_s: float
    _planner: SearchPlanner
    _schema: Any

    def _from_latest(self, action: str) -> AbstractContextManager[None]: ...

    def purge(self, ids: Sequence[str], keep: Sequence[MemoryRecord] = ()) -> None:
        """Remove the rows of ``ids`` for good, at once (a purge; the caller holds every
        writer's lock, ``Store.writing``); ``keep``: records among them written again as they are
        now (history retention: a memory that stays, whose older rows held a text that goes).
        A delete only marks rows deleted, and every earlier version keeps them, so: delete
        (and append ``keep``); make the table's fragment that still holds them smaller
        than LanceDB's compaction target a candidate to merge (one surviving row is deleted and
        appended again), so the compaction rewrites it without them; rebuild the full-text index
        from the rows left (its terms came from the purged text too); then remove every version
        but the latest and every file no version references, once this process's reads that
        began before have ended. No maintenance pass runs meanwhile, in this process or another
        (``pass_lock``). A reader in another process that has an older version open finds its
        files gone: that query fails (a search error) and the next, at most ``FRESHNESS_S``
        later, reads the latest version."""
        if not ids:
            return
        with self._maintaining, self._other_passes_held(), self._lock, self._from_latest("purge"):
            for chunk in chunks(list(ids), ID_CHUNK):
                self._table.delete(f"id IN ({id_list(chunk)})")
            if keep:
                self._table.add(arrow_rows(keep, self._schema))
            survivor = self._table.search().select(list(self._table.schema.names)).limit(1).to_arrow()
            if survivor.num_rows:
                self._table.delete(f"id IN ({id_list(survivor.column('id').to_pylist())})")
                self._table.add(survivor)
            self._table.optimize(cleanup_older_than=NO_PRUNE)
            from lancedb.index import FTS

            self._table.create_index("memory", config=FTS(), replace=True)
            self._pruner.reads.wait_for_earlier(timeout=self._pruner_hold_s)
            time.sleep(PURGE_CLOCK_S)  # the latest version is newer than the cutoff, whatever the clock's step
            with warnings.catch_warnings():  # "removes every version except the latest": meant
                warnings.simplefilter("ignore", UserWarning)
                self._table.optimize(cleanup_older_than=timedelta(0), delete_unverified=self._pass_lock is not None)
            self._planner.forget()

    @contextmanager
    def _other_passes_held(self) -> Iterator[None]:
        """Another process's maintenance pass is not running, and none starts (they skip while
        this is held): its compaction could otherwise write files from a version that still
        holds the purged rows. Waits up to ``PURGE_PASS_WAIT_S`` for one running."""
        if self._pass_lock is None:
            yield
            return
        with held_if_free(self._pass_lock, PURGE_PASS_WAIT_S) as held:
            if not held:
                log.warning("a maintenance pass of another process is still running; purging beside it")
            yield
