"""The LanceDB index: vectors + native full-text over memory text, keyed by memory id.

A derived index: everything in it can be rebuilt from the SQLite ledger. Scope is always a
pre-filter (``vector_plan``). Every engine call runs inside ``engine_errors``: a failure is a
typed error without internals, and the detail goes to the log.

Two processes on one data directory (two assistant windows) each hold the table open. The
connection sets a read-consistency interval, so a process checks for versions another process
wrote at most every ``FRESHNESS_S``, and a memory added in one window is found by the other's
search within that interval (``bench/freshness.py`` measures the delay and the cost).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from memorch.errors import ValidationError
from memorch.storage.base import MemoryRecord, Scope, VectorHit
from memorch.storage.engine import (
    LANCE_ERRORS,
    REPAIR,
    engine_errors,
    lance_read_errors,
    lance_search_errors,
    lance_write_errors,
)
from memorch.storage.sql import chunks
from memorch.storage.vector_connection import CachedConnection, release_free_memory
from memorch.storage.vector_plan import FILTER_COLUMNS, NOTHING, SearchPlanner, id_list, with_layer_column
from memorch.storage.vector_purge import ID_CHUNK, VectorPurge
from memorch.storage.vector_rows import arrow_rows, table_schema
from memorch.storage.vector_versions import (
    NO_PRUNE,
    VERSION_HOLD_S,
    Bursts,
    VersionPruner,
    held_if_free,
    pass_lock,
    watch_idle,
)

TABLE = "memories"
# Past this many rows written since the last optimize (or 2% of the table, up to 5,000), fold
# new rows into the indexes. LanceDB searches unindexed rows by brute force until then, which
# is correct but slower; each optimize adds a delta segment to the vector index.
OPTIMIZE_EVERY = 100
OPTIMIZE_FRACTION = 50  # 1/50 = 2% of the table
OPTIMIZE_MAX_INTERVAL = 5_000
# Every vector-index delta is searched on its own: at 100k rows, 16 deltas made a query 2.5x
# slower than one index (10.9 vs 4.3 ms, bench/scale.py). LanceDB's optimize cannot merge them,
# so past this many the index is rebuilt in the background (at 100k, ~50 s of one core, about
# once per 8-10k new rows given the interval above).
MAX_VECTOR_DELTAS = 4
# Below this many rows brute force is exact and fast (~7 ms at 100k is not: ~200 ms); past it
# an IVF-HNSW-SQ index is built in the background (3.5 ms at 100k, measured in DESIGN §9).
ANN_MIN_ROWS = 50_000
# How stale a process's view of the table may get: a read checks for a newer version (another
# process's write) when this long has passed since the last check. One check costs a directory
# read; at most one per interval leaves search p50 unchanged (bench/freshness.py), and 0.25 s
# keeps "found by the other window within 1 s" with room for a slow disk.
FRESHNESS_S = 0.25
log = logging.getLogger("memorch.vectors")


class LanceVectorIndex(VectorPurge):
    """``VectorIndex`` on a local (or object-storage) LanceDB directory."""

    def __init__(
        self,
        uri: str | Path,
        dimension: int,
        freshness_s: float | None = FRESHNESS_S,
        version_hold_s: float = VERSION_HOLD_S,
        writers_lock: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        """``freshness_s``: see ``FRESHNESS_S``; None never looks for other processes' writes (a
        single-process reader only: it keeps its version, which another process's maintenance
        removes after ``version_hold_s``, see ``VERSION_HOLD_S``). ``writers_lock``: the lock
        every writer of this directory holds, in every process (``Components.index_lock``);
        given, maintenance also deletes files no version references (see ``VersionPruner``)."""
        self.dimension = dimension
        self._lock = threading.Lock()
        self._maintaining = threading.Lock()
        self._writes_since_optimize = 0
        self._optimize_interval = OPTIMIZE_EVERY
        self._deferring = 0
        self._schedule_lock = threading.Lock()
        self._rerun = False
        self._prune_next = False  # a forced pass prunes (``VersionPruner.due``)
        self._bursts = Bursts()
        self._closed = threading.Event()
        threading.Thread(target=watch_idle, args=(weakref.ref(self),), name="memorch-lance-idle", daemon=True).start()
        # With the writers' lock: one maintenance pass at a time across the processes on this
        # directory (a pass that finds another running skips).
        self._pass_lock = None if writers_lock is None else pass_lock(uri)
        # Before the table is opened: its mark that this process has the directory open.
        self._pruner = VersionPruner(uri, version_hold_s, writers_lock)
        self._pruner_hold_s = version_hold_s
        self._planner = SearchPlanner(lambda: self._table.version, lambda where: self._table.count_rows(where))
        self._schema = table_schema(dimension)
        interval = None if freshness_s is None else timedelta(seconds=freshness_s)
        with engine_errors(
            "opening the LanceDB index",
            LANCE_ERRORS,
            error_code="VECTOR_STORE_OPEN_FAILED",
            suggestion="check that MEMORCH_DATA_DIR is readable and writable; then " + REPAIR,
        ):
            self._connection = CachedConnection(str(uri), interval)
            self._table = self._open_or_create()

    def _drop_replaced_from_caches(self) -> None:
        """Past ``CachedConnection.holds_mostly_replaced``, a new connection with empty caches:
        the next reads load what the current version needs. Reads in flight finish on the old
        one; writes wait on ``_lock``."""
        if not self._connection.holds_mostly_replaced(self._table.stats()["total_bytes"]):
            return
        with self._lock:
            self._connection.open()
            self._table = self._connection.db.open_table(TABLE)
        release_free_memory()

    def _open_or_create(self) -> Any:
        if TABLE in self._connection.db.list_tables().tables:
            table = self._connection.db.open_table(TABLE)
            stored = table.schema.field("vector").type.list_size
            if stored != self.dimension:
                raise ValidationError(
                    f"the vector index holds {stored}-d vectors but the embedder makes {self.dimension}-d ones",
                    error_code="EMBEDDING_DIMENSION_MISMATCH",
                    details={"stored": stored, "embedder": self.dimension},
                    suggestion="run `memorch reindex --re-embed` after changing MEMORCH_EMBEDDER",
                )
            return with_layer_column(table, lambda: self._connection.db.open_table(TABLE))
        table = self._connection.db.create_table(TABLE, schema=self._schema, exist_ok=True)
        self._create_indexes(table)
        return table

    @staticmethod
    def _create_indexes(table: Any) -> None:
        # Native FTS over the memory text (kept current by optimize; rows not yet indexed are
        # still searched) and B-tree indexes on scope columns so the scope pre-filter stays
        # cheap as data grows.
        from lancedb.index import FTS, BTree

        table.create_index("memory", config=FTS(), replace=True)
        for key in ("id", *FILTER_COLUMNS):
            table.create_index(key, config=BTree(), replace=True)

    def upsert(self, records: Sequence[MemoryRecord]) -> None:
        self.replace(records)

    def replace(self, records: Sequence[MemoryRecord], gone: Sequence[str] = (), *, look_up: bool = True) -> None:
        """Make the index hold exactly ``records`` for their ids and no row for the ids in
        ``gone``: one delete, then one append (merge_insert joins against the whole table: 25 ms
        at 600 rows and growing). A crash in between leaves the ids in the ledger's outbox, so
        they are replayed. ``look_up``: delete only the ids found (a delete matching nothing still
        writes a version); False when the caller knows some are there, which saves the lookup
        (5-7 ms of a flush in ``bench/soak.py``'s mix)."""
        ids = [r.id for r in records] + list(gone)
        if not ids:
            return
        with self._lock:
            with self._from_latest("write"):
                doomed = self._present(ids) if look_up else ids
                for chunk in chunks(doomed, ID_CHUNK):
                    self._table.delete(f"id IN ({id_list(chunk)})")
                if records:
                    self._table.add(arrow_rows(records, self._schema))
            self._after_write(len(ids))

    @contextmanager
    def _from_latest(self, action: str) -> Iterator[None]:
        """A write that starts from the table's latest version, not this process's view (up to
        FRESHNESS_S old): a delete from a stale one would miss a row another process appended
        since, which would outlive its memory. Callers hold the cross-process write lock
        (``Store.writing``, or the memory's outbox claim with replicas): nothing commits between."""
        with lance_write_errors(action):
            self._table.checkout_latest()
            yield

    def append(self, records: Sequence[MemoryRecord]) -> None:
        """Add rows whose ids the table does not hold (a rebuild into a new table)."""
        if records:
            with self._lock, lance_write_errors("append"):
                self._table.add(arrow_rows(records, self._schema))

    def _present(self, ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for chunk in chunks(ids, ID_CHUNK):
            rows = self._table.search().where(f"id IN ({id_list(chunk)})").select(["id"]).limit(len(chunk))
            found += rows.to_arrow().column("id").to_pylist()
        return found

    def delete(self, ids: Sequence[str]) -> None:
        self.replace((), ids, look_up=False)

    @contextmanager
    def deferred_maintenance(self) -> Iterator[None]:
        """Hold the ANN index build/rebuild until a bulk write ends, then run it once in the
        background. Rebuilding while an import still appends costs the import the CPU (a 100k
        import ran at 1,045/s with rebuilds in between, 3,018/s without). The routine fold of
        new rows into the scalar and FTS indexes goes on meanwhile: without it each batch's
        replace-by-id lookup would scan every unindexed row, and a 1M import slowed to 870/s.

        The bulk write ends with its last rows folded in, in the caller's thread (and, when no
        ANN build is due, the whole pass: compaction and prune too, ~0.3 s after a 490-turn
        import): searches from then on read indexes only and share the cores with no pass.
        Otherwise the first searches after an import competed with that fold and scanned the
        rows it had not reached (LongMemEval: 84 / 248 ms p50 / p95 for the first search after a
        490-turn import), with BM25 scores that depended on whether it had finished (LanceDB
        scores unindexed rows against the index's statistics: lance-format/lance#9058)."""
        with self._lock:
            self._deferring += 1
        try:
            yield
        finally:
            with self._lock:
                self._deferring -= 1
                last = not self._deferring
            if last and not self._vector_index_due():
                self.maintain_now()
            else:
                if last:
                    self._fold_new_rows()
                self._schedule(force=True)

    def _fold_new_rows(self) -> None:
        """One optimize now (after a pass already running), without the ANN build or pruning:
        the forced background pass that follows does those."""
        with self._maintaining, self._lock:
            try:
                self._table.optimize(cleanup_older_than=NO_PRUNE)
            except LANCE_ERRORS:
                # As in the background pass: only speed is at stake, unindexed rows are searched.
                log.warning("LanceDB optimize after a bulk write failed; will retry", exc_info=True)

    def _after_write(self, n: int) -> None:
        self._bursts.wrote()
        self._writes_since_optimize += n
        self._schedule()

    def _schedule(self, force: bool = False) -> None:
        """Start a maintenance pass in a background thread when enough writes have piled up (or
        ``force``). The lock is taken before the thread starts, so close() cannot slip in
        between; a forced request that finds a pass running makes that pass run once more."""
        with self._schedule_lock:
            if force:
                self._rerun = self._prune_next = True
            elif self._writes_since_optimize < self._optimize_interval:
                return
            if self._maintaining.acquire(blocking=False):
                self._writes_since_optimize, self._rerun = 0, False
                threading.Thread(target=self._maintain_held, name="memorch-lance-optimize", daemon=True).start()

    def _maintain_held(self) -> None:
        """Off the request path (the caller holds ``_maintaining``): compact small fragments,
        fold new rows into the FTS and scalar indexes, and build the ANN index once the table
        is large enough. Readers keep reading the previous version meanwhile."""
        try:
            while True:
                self._maintain_once()
                with self._schedule_lock:
                    if not self._rerun:
                        self._maintaining.release()
                        return
                    self._rerun = False
        except BaseException:  # noqa: BLE001, RUF100 - never leave the lock held, then re-raise
            self._maintaining.release()
            raise

    def _maintain_once(self) -> None:
        if self._pass_lock is None:
            self._maintain_pass()
            return
        with held_if_free(self._pass_lock) as mine:
            if mine:
                self._maintain_pass()

    def _maintain_pass(self) -> None:
        with self._schedule_lock:  # a force requested from now on is the rerun's to honour
            forced, self._prune_next = self._prune_next, False
            burst = self._bursts.mark()
        try:
            rows = int(self._table.count_rows())
            self._optimize_interval = max(OPTIMIZE_EVERY, min(rows // OPTIMIZE_FRACTION, OPTIMIZE_MAX_INTERVAL))
            outside_bulk = not self._deferring
            if outside_bulk and self._vector_index_due(rows):
                self._build_vector_index()
            started = time.monotonic()
            # Writes wait (~0.2 s at 5,000 memories): a compaction a delete commits beside loses
            # its commit ("preempted by concurrent Delete"), every pass once the large fragment is
            # past 10 % deleted rows, and fragments pile up (186 in the soak's mix). A bulk write
            # only appends, which never preempts a compaction.
            with self._lock if outside_bulk else nullcontext():
                self._table.optimize(cleanup_older_than=NO_PRUNE)
            if self._pruner.due(forced):
                self._pruner.prune(self._table, self._lock, self._table.version, time.monotonic() - started)
                self._bursts.covered(burst)
            self._drop_replaced_from_caches()
        except LANCE_ERRORS:
            # Only performance is at stake (unoptimized data is still searched, exactly); the
            # next write schedules another attempt.
            log.warning("LanceDB maintenance failed; will retry", exc_info=True)

    def _vector_index_due(self, rows: int | None = None) -> bool:
        """Whether the ANN index should be built (or rebuilt: too many deltas) now."""
        rows = int(self._table.count_rows()) if rows is None else rows
        return rows >= ANN_MIN_ROWS and not 0 < self._vector_index_segments() <= MAX_VECTOR_DELTAS

    def _vector_index_segments(self) -> int:
        """0 without a vector index, else its base index plus deltas."""
        for index in self._table.list_indices():
            if getattr(index, "columns", []) == ["vector"]:
                return int(self._table.index_stats(index.name).num_indices)
        return 0

    def _build_vector_index(self) -> None:
        from lancedb.index import HnswSq

        # replace=True swaps in the new index atomically; readers use the old one until then.
        self._table.create_index("vector", config=HnswSq(distance_type="cosine"), replace=True)

    def close(self) -> None:
        """Wait for background maintenance to finish: its commit is atomic, but a process that
        removes the directory after closing (tests, benchmarks) must not race it."""
        self._closed.set()
        with self._maintaining:
            self._pruner.close()

    def maintain_now(self) -> None:
        """Run maintenance in the caller's thread (benchmarks, `memorch reindex`)."""
        self._writes_since_optimize = 0
        self._maintaining.acquire()
        self._prune_next = True  # after the acquire: a background pass ending now cannot take it
        self._maintain_held()

    def search(
        self, vector: np.ndarray, scope: Scope, limit: int, only_ids: Sequence[str] | None = None
    ) -> list[VectorHit]:
        with lance_search_errors("vector"):
            query = self._table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
            query = query.distance_type("cosine").select(["id", "_distance"])
            rows = self._run_query(query, scope, only_ids, limit, "vector")
        return [VectorHit(i, float(min(1.0, max(0.0, 1.0 - d)))) for i, d in rows]

    def text_search(
        self, query: str, scope: Scope, limit: int, only_ids: Sequence[str] | None = None
    ) -> list[VectorHit]:
        """BM25 over memory text (LanceDB native FTS). ``score`` is the raw BM25 score.

        The query is a plain match query, never parsed: quotes, ``AND``, ``field:`` and any
        script are just text.
        """
        from lancedb.query import MatchQuery

        if not query.strip():
            return []
        with lance_search_errors("full-text"):
            search = self._table.search(MatchQuery(query, "memory"), query_type="fts").select(["id", "_score"])
            rows = self._run_query(search, scope, only_ids, limit, "full-text")
        return [VectorHit(i, float(s)) for i, s in rows]

    def _run_query(
        self, query: Any, scope: Scope, only_ids: Sequence[str] | None, limit: int, kind: str
    ) -> list[tuple[str, float]]:
        """Apply the scope (and id) pre-filter and the limit; return (id, raw score) pairs. The
        caller wraps the engine errors (the plan's row counts included)."""
        with self._pruner.reads.reading():
            where, flat = self._plan(scope, only_ids)
            if where == NOTHING:
                return []
            query = query.limit(limit)
            if flat and kind == "vector":
                query = query.bypass_vector_index()
            if where:
                query = query.where(where, prefilter=True)
            table = query.to_arrow()
        score = "_distance" if "_distance" in table.column_names else "_score"
        return list(zip(table.column("id").to_pylist(), table.column(score).to_pylist(), strict=True))

    def _plan(self, scope: Scope, only_ids: Sequence[str] | None) -> tuple[str | None, bool]:
        return self._planner.plan(scope, only_ids)

    def count(self) -> int:
        with lance_read_errors("count"), self._pruner.reads.reading():
            return int(self._table.count_rows())

    def all_ids(self) -> set[str]:
        if not self.count():
            return set()
        with lance_read_errors("ids"), self._pruner.reads.reading():
            return set(self._table.to_arrow().column("id").to_pylist())

    def wipe(self) -> None:
        with self._lock, lance_write_errors("wipe"):
            self._connection.db.drop_table(TABLE)
            self._planner.forget()
            self._table = self._open_or_create()
