"""The LanceDB index: vectors + native full-text over memory text, keyed by memory id.

A derived index: everything in it can be rebuilt from the SQLite ledger. Scope is always a
pre-filter (``vector_plan``). Every engine call runs inside ``engine_errors``: a failure is a
typed error without internals, and the detail goes to the log.

Two processes on one data directory (two assistant windows) each hold the table open. The
connection sets a read-consistency interval, so a process checks for versions another process
wrote at most every ``FRESHNESS_S``, and a memory added in one window is found by the other's
search within that interval (``bench/freshness.py`` measures the delay and the cost).

When and how the index is maintained (folds, compaction, the ANN build, pruning) is
``vector_maintenance``; removing rows for good is ``vector_purge``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from memorch.errors import ValidationError
from memorch.storage.base import TIE_MARGIN, MemoryRecord, Scope, VectorHit
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
from memorch.storage.vector_maintenance import VectorMaintenance
from memorch.storage.vector_plan import FILTER_COLUMNS, NOTHING, SearchPlanner, id_list, with_layer_column
from memorch.storage.vector_purge import ID_CHUNK, VectorPurge
from memorch.storage.vector_rows import arrow_rows, table_schema
from memorch.storage.vector_versions import (
    VERSION_HOLD_S,
    VersionPruner,
    pass_lock,
    watch_idle,
)

TABLE = "memories"
# How stale a process's view of the table may get: a read checks for a newer version (another
# process's write) when this long has passed since the last check. One check costs a directory
# read; at most one per interval leaves search p50 unchanged (bench/freshness.py), and 0.25 s
# keeps "found by the other window within 1 s" with room for a slow disk.
FRESHNESS_S = 0.25


def first_without_arbitrary_ties(
    rows: list[tuple[str, float]], limit: int, asked: int, lower_first: bool
) -> list[tuple[str, float]]:
    """The best ``limit`` of a query's ``rows`` (it asked for ``asked``), equal scores by id. A
    tie the limit would split, or that may go on past the rows returned (``asked`` came back),
    is left out whole (so fewer than ``limit`` may come back), unless it is all there is: which of
    its rows made the cut would depend on where LanceDB keeps them, or on their ids (random, so
    two stores of the same memories would differ)."""
    rows = sorted(rows, key=(lambda r: (r[1], r[0])) if lower_first else (lambda r: (-r[1], r[0])))
    if rows and len(rows) >= asked:
        rows = [r for r in rows if r[1] != rows[-1][1]] or rows
    if len(rows) > limit and rows[limit - 1][1] == rows[limit][1]:
        tie = next(i for i, r in enumerate(rows) if r[1] == rows[limit][1])
        rows = rows[:tie] or rows
    return rows[:limit]


class LanceVectorIndex(VectorMaintenance, VectorPurge):
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
        self._init_maintenance()
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

    def replace(
        self,
        records: Sequence[MemoryRecord],
        gone: Sequence[str] = (),
        *,
        look_up: bool = True,
        order: Sequence[str] | None = None,
    ) -> None:
        """Make the index hold exactly ``records`` for their ids and no row for the ids in
        ``gone``: one delete, then one append (merge_insert joins against the whole table: 25 ms
        at 600 rows and growing). A crash in between leaves the ids in the ledger's outbox, so
        they are replayed. ``look_up``: delete only the ids found (a delete matching nothing still
        writes a version); False when the caller knows some are there, which saves the lookup
        (5-7 ms of a flush in ``bench/soak.py``'s mix). ``order``: every id of both, in the order
        of their changes (the ledger's), where a fold due among them splits the write."""
        by_id = {r.id: r for r in records}
        ids = list(dict.fromkeys([*by_id, *gone] if order is None else order))
        if set(ids) != {*by_id, *gone}:
            raise ValueError("replace: `order` must name exactly the ids of `records` and `gone`")
        if not ids:
            return
        with self._lock:
            with self._from_latest("write"):
                doomed = set(self._present(ids) if look_up else ids)
            # Usually one delete and one append. Where a fold is due (``vector_maintenance``) the
            # write is split there, in the changes' order, each part's old rows deleted just
            # before its new ones are appended: a fold sees the changes before it and no later
            # one, however the writes were grouped.
            start = 0
            while start < len(ids):
                part = ids[start : start + self._room()]
                rows = [by_id[i] for i in part if i in by_id]
                with self._from_latest("write"):
                    self._delete_rows([i for i in part if i in doomed])
                    if rows:
                        self._table.add(arrow_rows(rows, self._schema))
                start += len(part)
                self._after_write(len(part))

    def _delete_rows(self, ids: Sequence[str]) -> None:
        for chunk in chunks(ids, ID_CHUNK):
            self._table.delete(f"id IN ({id_list(chunk)})")

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

    def close(self) -> None:
        """Wait for background maintenance to finish: its commit is atomic, but a process that
        removes the directory after closing (tests, benchmarks) must not race it."""
        self._closed.set()
        with self._maintaining:
            self._pruner.close()

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
        self._bursts.read()
        with self._pruner.reads.reading():
            where, flat = self._plan(scope, only_ids)
            if where == NOTHING:
                return []
            query = query.limit(limit + TIE_MARGIN)
            if flat and kind == "vector":
                query = query.bypass_vector_index()
            if where:
                query = query.where(where, prefilter=True)
            table = query.to_arrow()
        distance = "_distance" in table.column_names
        scores = table.column("_distance" if distance else "_score").to_pylist()
        rows = list(zip(table.column("id").to_pylist(), scores, strict=True))
        return first_without_arbitrary_ties(rows, limit, limit + TIE_MARGIN, distance)

    def _plan(self, scope: Scope, only_ids: Sequence[str] | None) -> tuple[str | None, bool]:
        return self._planner.plan(scope, only_ids)

    def scope_rows(self, scope: Scope) -> int:
        """How many memories the scope has in the index (the search planner's cached count). Asked
        by a search before its queries, so it fails as they would (``VECTOR_SEARCH_ERROR``)."""
        with lance_search_errors("vector"), self._pruner.reads.reading():
            return self._planner.rows(scope)

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
