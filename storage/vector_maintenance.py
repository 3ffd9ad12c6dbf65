"""When and how the LanceDB index is maintained (``LanceVectorIndex``'s scheduler, a mixin): a
fold compacts small fragments and folds new rows into the full-text and scalar indexes; a pass
also builds or rebuilds the ANN index once the table is large enough and (see ``VersionPruner``)
removes replaced versions.

When rows are folded decides full-text scores: LanceDB scores rows not folded yet against the
folded ones' statistics (lance-format/lance#9058), so the same searches over the same memories
ranked differently depending on when a background pass had run (two back-to-back LOCOMO runs:
8 of 231 questions' top 10 differed). So outside a bulk write the writer itself folds, in its
thread, exactly when the ``_optimize_interval``-th row since the last fold is written (a write
that crosses it is split there), and a background pass never folds rows a writer left unfolded,
except the pass once the index has been idle (no write and no search) for ``IDLE_PASS_S``
(``watch_idle``), an explicit one (``maintain_now``) and the end of a bulk write (which folds
everything it wrote, in the caller's thread); those leave the writer's count alone. The same
writes in the same order then give the same results, however their flushes were grouped in
time (docs/search.md "Indexes" says what stays outside). Where several replicas write
one dataset (``folds_in_writer`` False) background passes fold, under a lease."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from memorch.storage.engine import LANCE_ERRORS
from memorch.storage.vector_connection import INDEX_CACHE_BYTES
from memorch.storage.vector_versions import NO_PRUNE, Bursts, VersionPruner, held_if_free

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
# When a burst of writes ends the full-text and scope indexes are loaded whole into the
# connection's cache (``_prewarm``), while what they take there (about ``PREWARM_CACHE_FACTOR`` times their size on
# disk: 1.4-4.3x measured at 100,000 rows) fits in this share of it, the full-text index first;
# the rest loads as searches read it. LanceDB's full-text index of 35,000 LongMemEval turns is
# 6.3 MB on disk and loads in ~90 ms on two cores.
PREWARM_BUDGET_BYTES = INDEX_CACHE_BYTES // 4
PREWARM_CACHE_FACTOR = 4
PREWARM_ORDER = ("memory_idx", "user_id_idx", "agent_id_idx", "run_id_idx", "project_idx")
log = logging.getLogger("memorch.vectors")
# ``index_stats`` (read here for its count of index segments) printed a Rust WARN line on stderr
# that its statistics include the centroids, "which can use significant memory", until this is
# set; we never read them (a newcomer's 50,000-line import showed the line).
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")


class VectorMaintenance:
    """What the maintenance passes use of ``LanceVectorIndex``, and the passes themselves."""

    # Outside a bulk write the writer folds (module doc); where several replicas write one
    # dataset, their writes interleave anyway, and a lease picks the one replica whose
    # background passes fold (``SharedLanceVectorIndex``).
    folds_in_writer = True
    # False for an index that is only being built (``_prewarm``).
    prewarms = True

    _table: Any
    _lock: threading.Lock
    _pass_lock: Any
    _pruner: VersionPruner
    _closed: threading.Event

    def _drop_replaced_from_caches(self) -> None: ...

    def _init_maintenance(self) -> None:
        self._maintaining = threading.Lock()
        self._writes_since_optimize = 0
        self._optimize_interval = OPTIMIZE_EVERY
        self._deferring = 0
        self._schedule_lock = threading.Lock()
        self._rerun = False
        self._prune_next = False  # a forced pass prunes (``VersionPruner.due``)
        self._bursts = Bursts()

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
                with self._lock:
                    self._restart_count()
            else:
                if last:
                    self._fold_new_rows()
                self._schedule(force=True)

    def _fold_new_rows(self) -> None:
        """One optimize now (after a pass already running), without the ANN build or pruning:
        the forced background pass that follows does those."""
        with self._maintaining, self._lock:
            self._fold("after a bulk write")

    def _fold(self, when: str) -> bool:
        """Compact and fold every row written so far into the indexes, unless another process's
        pass is running (it folds them); the caller holds ``_lock``. The count starts again
        either way: after a LanceDB failure, the next attempt comes at the next interval (only
        speed and the moment of the fold are at stake: unfolded rows are searched)."""
        try:
            with self._fold_guard() as mine:
                if mine:
                    self._table.optimize(cleanup_older_than=NO_PRUNE)
        except LANCE_ERRORS:
            log.warning("LanceDB optimize %s failed; will retry", when, exc_info=True)
            mine = False
        self._restart_count()
        return mine

    @contextmanager
    def _fold_guard(self) -> Iterator[bool]:
        """True unless another process on the directory runs a pass (``pass_lock``). Other
        processes' writers fold under the writers' lock the caller holds; this process's own
        pass optimizes only under ``_lock``, which the caller holds too."""
        if self._pass_lock is None or self._maintaining.locked():
            yield True
            return
        with held_if_free(self._pass_lock) as mine:
            yield mine

    def _restart_count(self) -> None:
        """A fold point: count written rows from zero, towards an interval set by the table's
        size (the caller holds ``_lock``; if LanceDB cannot count, the interval stays)."""
        self._writes_since_optimize = 0
        try:
            self._set_interval()
        except LANCE_ERRORS:
            log.warning("LanceDB count after a fold failed; the fold interval stays", exc_info=True)

    def _set_interval(self) -> None:
        rows = int(self._table.count_rows())
        self._optimize_interval = max(OPTIMIZE_EVERY, min(rows // OPTIMIZE_FRACTION, OPTIMIZE_MAX_INTERVAL))

    def _writer_folds(self) -> bool:
        """Whether the writer folds now: not during a bulk write (whose end folds everything),
        nor where several replicas write (``SharedLanceVectorIndex``: a lease decides)."""
        return self.folds_in_writer and not self._deferring

    def _room(self) -> int:
        """How many rows a writer may append before its next fold is due."""
        if not self._writer_folds():
            return sys.maxsize
        return max(1, self._optimize_interval - self._writes_since_optimize)

    def _after_write(self, n: int) -> None:
        """Count ``n`` rows written (the caller holds ``_lock``); at the interval, fold them in
        this thread, prune when due, and let a background pass build the ANN index if due (or,
        in a bulk write or with replicas, start a background pass that folds)."""
        self._bursts.wrote()
        self._writes_since_optimize += n
        if self._writes_since_optimize < self._optimize_interval:
            return
        if not self._writer_folds():
            self._schedule()
        elif self._fold("after writes"):
            self._prune_after_fold()
            self._schedule(due=True)

    def _prune_after_fold(self) -> None:
        """Every ``PRUNE_EVERY_PASSES``-th fold, in the writer's thread right after it, remove
        replaced versions (``VersionPruner.prune_in_writer``). Nothing is written in between, so
        the prune's own ``optimize`` folds no new row; in a background pass between two folds it
        would (module doc), and under continuous writes such a pass would never find none."""
        if not self._pruner.due(forced=False):
            return
        try:
            # The second optimize merges the fold's fragments with the rest (see ``_maintain_pass``).
            self._table.optimize(cleanup_older_than=NO_PRUNE)
            self._pruner.prune_in_writer(self._table)
        except LANCE_ERRORS:
            log.warning("LanceDB prune after a fold failed; will retry", exc_info=True)

    def _schedule(self, force: bool = False, due: bool = False) -> None:
        """Start a maintenance pass in a background thread when enough writes have piled up
        during a bulk write, after a writer's fold (``due``), or when ``force``d. The lock is
        taken before the thread starts, so close() cannot slip in between; a forced request that
        finds a pass running makes that pass run once more."""
        if self._closed.is_set():  # a write or the idle watch after close(): no pass to start
            return
        with self._schedule_lock:
            if force:
                self._rerun = self._prune_next = True
            elif not due and self._writes_since_optimize < self._optimize_interval:
                return
            if self._maintaining.acquire(blocking=False):
                if not (self.folds_in_writer and (force or due)):  # a background fold: count anew
                    self._writes_since_optimize = 0
                self._rerun = False
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
            outside_bulk = not self._deferring
            if outside_bulk and self._vector_index_due():
                self._build_vector_index()
            if outside_bulk and not forced and self.folds_in_writer:
                # After a writer's fold, which folded and pruned in its thread (module doc). No
                # prewarm: writes go on, and their next fold replaces the indexes.
                self._drop_replaced_from_caches()
                return
            started = time.monotonic()
            # Writes wait (~0.2 s at 5,000 memories): a compaction a delete commits beside loses
            # its commit ("preempted by concurrent Delete"), every pass once the large fragment is
            # past 10 % deleted rows, and fragments pile up (186 in the soak's mix). A bulk write
            # only appends, which never preempts a compaction.
            prune = self._pruner.due(forced)
            with self._lock if outside_bulk else nullcontext():
                self._table.optimize(cleanup_older_than=NO_PRUNE)
                if not (outside_bulk and self.folds_in_writer):  # else the writer's count is left alone
                    self._set_interval()
                if prune:
                    # LanceDB compacts new (unindexed) fragments apart from indexed ones: the
                    # first optimize merges the new ones and indexes them, this one merges them
                    # with the rest. Without it the prune's own optimize compacted first, after
                    # the version it keeps was chosen, and under load sometimes left the previous
                    # copy of the table on disk beside the new one (tests/test_versions.py).
                    self._table.optimize(cleanup_older_than=NO_PRUNE)
            if prune:
                self._pruner.prune(self._table, self._lock, self._table.version, time.monotonic() - started)
                self._bursts.covered(burst)
            self._drop_replaced_from_caches()
            self._prewarm()
        except LANCE_ERRORS:
            # Only performance is at stake (unoptimized data is still searched, exactly); the
            # next write schedules another attempt.
            log.warning("LanceDB maintenance failed; will retry", exc_info=True)

    def _prewarm(self) -> None:
        """Load the full-text index and the scope columns' B-trees whole, within
        ``PREWARM_BUDGET_BYTES``, after the passes that end a burst of writes: a bulk write's
        (an import's), an explicit one, and the one once the index has been idle
        (``watch_idle``). Otherwise each search after them loaded the pages its own words and
        scope needed: the first BM25 query of each question after a LongMemEval import took
        10-25 ms, 6-10 ms with these loaded. Not after a writer's fold while writes go on (the
        next fold replaces them: work for nothing), not during a bulk write, not for an index
        that is only built (``prewarms`` False: a rebuild's staging copy), and not where several
        replicas share the dataset (a pass there runs under the lease, and the indexes would come from object
        storage). The vector index is left to the reads: a scope held in memory does not read
        it, and past ``ANN_MIN_ROWS`` it is large. A failure costs only speed: logged, and the
        next pass tries again."""
        if not (self.prewarms and self.folds_in_writer) or self._deferring:
            return
        try:
            sizes = {index.name: getattr(index, "size_bytes", None) for index in self._table.list_indices()}
            budget = PREWARM_BUDGET_BYTES
            for name in PREWARM_ORDER:
                size = sizes.get(name)
                if size is None or size * PREWARM_CACHE_FACTOR > budget:
                    continue
                budget -= size * PREWARM_CACHE_FACTOR
                self._table.prewarm_index(name)
        except LANCE_ERRORS:
            log.warning(
                "loading the LanceDB indexes into the cache failed; searches load them as they read", exc_info=True
            )

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

    def maintain_now(self) -> None:
        """Run maintenance in the caller's thread (benchmarks, `memorch reindex`)."""
        self._maintaining.acquire()
        self._prune_next = True  # after the acquire: a background pass ending now cannot take it
        self._maintain_held()
