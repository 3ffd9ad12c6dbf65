"""The embeddings of recently used scopes, held in memory: the duplicate hint of a verbatim add,
the vector signal of a search and its scope's centre (``retrieval._centering``; ``_centroids``
for a scope too large to hold).

The hint ("a similar memory is already stored") needs the scope's nearest memory. Asked of
LanceDB that cost 7.6 ms per add (``bench/add_stages.py``: the query's setup and its round trips
to LanceDB's event loop, whatever the scope's size), a third of the add; a dot product over the
scope's vectors costs a fraction of a millisecond up to thousands of rows. A search's vector
signal is the same exact (brute-force) cosine ranking LanceDB computes for a scope this small,
and LanceDB's costs grow with the table's fragments between two compactions as well as with its
rows: in the soak's mix (``bench/soak.py``, 500-5,000 memories) its vector query took 17-25 ms
p50 and 35-90 ms p95; over the held vectors it takes under a millisecond, and it sees a commit
whose index row is not written yet. The ledger holds every embedding, so a scope is loaded from
it on first use and kept in step with this process's commits (``apply``, called by
``Store.commit``). Another process's commit changes SQLite's ``data_version``; then everything
is loaded again. Scopes past ``MAX_ROWS`` (in all) are left to LanceDB, and so is every scope
with several replicas (their commits are not seen here).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from memorch.storage.base import Change, Scope, VectorHit

if TYPE_CHECKING:
    from memorch.storage.ledger import Ledger

# Rows held in all (~30 MB of 384-d float32 vectors), and scopes (each commit is checked against
# every held scope); past either, the least recently used scopes go first.
MAX_ROWS = 20_000
MAX_SCOPES = 64
# A scope found too large to hold is left to the index this long before it is counted again:
# finding out reads MAX_ROWS + 1 embeddings from the ledger, which would cost each of its
# searches and adds more than the index query it replaces.
TOO_LARGE_RECHECK_S = 60.0


def unit_mean(total: np.ndarray | None, count: int) -> np.ndarray | None:
    """The unit vector along a sum of ``count`` embeddings (None for none, or a zero sum)."""
    if total is None or count == 0:
        return None
    norm = float(np.linalg.norm(total))
    return (total / norm).astype(np.float32) if norm > 0 else None


class Centered(NamedTuple):
    """A vector search's hits with their scope's centre and their own vectors (by id)."""

    hits: list[VectorHit]
    centre: np.ndarray | None
    vectors: dict[str, np.ndarray]


class _Rows:
    """One scope's ids and vectors; rows are replaced in place, deleted by moving the last in."""

    def __init__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.ids = ids
        self.at = {memory_id: i for i, memory_id in enumerate(ids)}
        self.vectors = vectors if len(ids) else np.zeros((0, 0), dtype=np.float32)
        # The rows' sum (the scope's centre, ``retrieval._centering``), kept in step by ``put`` and
        # ``drop`` rather than summed again at the search after every add (20,000 rows: ~5 ms).
        self.total = self.vectors[: len(ids)].sum(0, dtype=np.float64) if len(ids) else None

    def put(self, memory_id: str, vector: np.ndarray) -> None:
        self._add_to_total(vector)
        i = self.at.get(memory_id)
        if i is not None:
            self._add_to_total(-self.vectors[i])
            self.vectors[i] = vector
            return
        if not self.ids:
            self.vectors = np.zeros((8, len(vector)), dtype=np.float32)
        elif len(self.ids) == len(self.vectors):  # full: double the buffer
            self.vectors = np.concatenate([self.vectors, np.zeros_like(self.vectors)])
        self.at[memory_id] = len(self.ids)
        self.vectors[len(self.ids)] = vector
        self.ids.append(memory_id)

    def drop(self, memory_id: str) -> None:
        i = self.at.pop(memory_id, None)
        if i is None:
            return
        self._add_to_total(-self.vectors[i])
        last = self.ids.pop()
        if last != memory_id:
            self.ids[i], self.at[last] = last, i
            self.vectors[i] = self.vectors[len(self.ids)]

    def _add_to_total(self, vector: np.ndarray) -> None:
        change = np.asarray(vector, dtype=np.float64)
        self.total = change.copy() if self.total is None else self.total + change

    def centre(self) -> np.ndarray | None:
        return unit_mean(self.total, len(self.ids))

    def top(self, vector: np.ndarray, k: int, only_ids: Sequence[str] | None) -> list[VectorHit]:
        """The ``k`` rows (of ``only_ids``, when given) most similar to ``vector``, best first;
        the score is the cosine clipped to [0, 1], as the index's ``1 - cosine distance``."""
        rows = np.arange(len(self.ids)) if only_ids is None else self._positions(only_ids)
        if not len(rows) or k <= 0:
            return []
        # A slice is a view; only a subset is copied.
        scores = (self.vectors[: len(self.ids)] if only_ids is None else self.vectors[rows]) @ vector
        if len(rows) > k:
            keep = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        return [VectorHit(self.ids[rows[i]], float(min(1.0, max(0.0, scores[i])))) for i in order]

    def _positions(self, ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.at[i] for i in set(ids) if i in self.at), dtype=np.intp)


class NearestCache:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._max_rows = MAX_ROWS
        self._lock = threading.Lock()
        self._scopes: OrderedDict[Scope, _Rows] = OrderedDict()
        self._too_large: dict[Scope, float] = {}  # scope -> when it was found too large (monotonic)
        self._version: int | None = None

    def nearest(self, vector: np.ndarray, scope: Scope) -> tuple[bool, tuple[float, str] | None]:
        """(answered, (similarity in [0, 1], id) of the scope's nearest memory or None when it has none).
        Not answered: the scope is too large to hold, ask the index."""
        hits = self.top(vector, scope, 1)
        if hits is None:
            return False, None
        return True, (hits[0].score, hits[0].id) if hits else None

    def top(
        self, vector: np.ndarray, scope: Scope, k: int, only_ids: Sequence[str] | None = None
    ) -> list[VectorHit] | None:
        """The scope's ``k`` memories (among ``only_ids``, when given) most similar to ``vector``,
        best first: the exact ranking LanceDB's flat search gives. None: the scope is too large
        to hold, ask the index."""
        with self._lock:  # ``apply`` changes the rows in place
            rows = self._held(scope)
            return None if rows is None else rows.top(np.asarray(vector, dtype=np.float32), k, only_ids)

    def rows(self, scope: Scope) -> int | None:
        """How many memories the scope holds; None: it is too large to hold."""
        with self._lock:
            rows = self._held(scope)
            return None if rows is None else len(rows.ids)

    def top_centered(
        self, vector: np.ndarray, scope: Scope, k: int, only_ids: Sequence[str] | None = None
    ) -> Centered | None:
        """``top``, with what ``retrieval._centering`` needs of the same rows, read under one
        lock: the scope's centre and each hit's vector. None: the scope is too large to hold."""
        with self._lock:
            rows = self._held(scope)
            if rows is None:
                return None
            hits = rows.top(np.asarray(vector, dtype=np.float32), k, only_ids)
            return Centered(hits, rows.centre(), {h.id: rows.vectors[rows.at[h.id]].copy() for h in hits})

    def _held(self, scope: Scope) -> _Rows | None:
        """The scope's rows, loaded if need be; None when it is too large. The caller holds the lock."""
        version = self._ledger.data_version()
        if version != self._version:  # another process committed: what is held may be stale
            self._scopes.clear()
            self._version = version
        rows = self._scopes.get(scope)
        if rows is None:
            rows = self._load(scope)
            if rows is None:
                return None
        self._scopes.move_to_end(scope)
        return rows

    def _load(self, scope: Scope) -> _Rows | None:
        found_at = self._too_large.get(scope)
        if found_at is not None and time.monotonic() - found_at < TOO_LARGE_RECHECK_S:
            return None
        loaded = self._ledger.embeddings(scope, self._max_rows)
        if loaded is None:
            if len(self._too_large) >= MAX_SCOPES:
                self._too_large.clear()
            self._too_large[scope] = time.monotonic()
            return None
        self._too_large.pop(scope, None)
        rows = _Rows(*loaded)
        self._scopes[scope] = rows
        self._shrink()  # never this scope: it fits alone, and it is the most recently used
        return rows

    def _shrink(self) -> None:
        while len(self._scopes) > MAX_SCOPES or sum(len(r.ids) for r in self._scopes.values()) > self._max_rows:
            self._scopes.popitem(last=False)

    def apply(self, changes: Sequence[Change]) -> None:
        """A commit of this process: every held scope follows it."""
        with self._lock:
            for scope, rows in self._scopes.items():
                for change in changes:
                    record = change.record
                    if change.kind != "DELETE" and record.embedding is not None and scope.contains(record):
                        rows.put(record.id, record.embedding)
                    else:
                        rows.drop(record.id)
            self._shrink()

    def clear(self) -> None:
        """Embeddings changed wholesale (reindex, reset)."""
        with self._lock:
            self._scopes.clear()
            self._too_large.clear()
