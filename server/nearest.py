"""The embeddings of recently used scopes, held in memory for the duplicate hint of a verbatim add.

The hint ("a similar memory is already stored") needs the scope's nearest memory. Asked of
LanceDB that cost 7.6 ms per add (``bench/add_stages.py``: the query's setup and its round trips
to LanceDB's event loop, whatever the scope's size), a third of the add; a dot product over the
scope's vectors costs a fraction of a millisecond up to thousands of rows. The ledger holds every
embedding, so a scope is loaded from it on first use and kept in step with this process's
commits (``apply``, called by ``Store.commit``). Another process's commit changes SQLite's
``data_version``; then everything is loaded again. Scopes past ``MAX_ROWS`` (in all) are left to
LanceDB, and so is every scope with several replicas (their commits are not seen here).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memorch.storage.base import Change, Scope

if TYPE_CHECKING:
    from memorch.storage.history import SQLiteLedger

# Rows held in all (~30 MB of 384-d float32 vectors), and scopes (each commit is checked against
# every held scope); past either, the least recently used scopes go first.
MAX_ROWS = 20_000
MAX_SCOPES = 64


class _Rows:
    """One scope's ids and vectors; rows are replaced in place, deleted by moving the last in."""

    def __init__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.ids = ids
        self.at = {memory_id: i for i, memory_id in enumerate(ids)}
        self.vectors = vectors if len(ids) else np.zeros((0, 0), dtype=np.float32)

    def put(self, memory_id: str, vector: np.ndarray) -> None:
        i = self.at.get(memory_id)
        if i is not None:
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
        last = self.ids.pop()
        if last != memory_id:
            self.ids[i], self.at[last] = last, i
            self.vectors[i] = self.vectors[len(self.ids)]

    def best(self, vector: np.ndarray) -> tuple[float, str] | None:
        if not self.ids:
            return None
        scores = self.vectors[: len(self.ids)] @ vector
        i = int(np.argmax(scores))
        return float(scores[i]), self.ids[i]


class NearestCache:
    def __init__(self, ledger: SQLiteLedger) -> None:
        self._ledger = ledger
        self._max_rows = MAX_ROWS
        self._lock = threading.Lock()
        self._scopes: OrderedDict[Scope, _Rows] = OrderedDict()
        self._version: int | None = None

    def nearest(self, vector: np.ndarray, scope: Scope) -> tuple[bool, tuple[float, str] | None]:
        """(answered, (similarity, id) of the scope's nearest memory or None when it has none).
        Not answered: the scope is too large to hold, ask the index."""
        with self._lock:
            version = self._ledger.data_version()
            if version != self._version:  # another process committed: what is held may be stale
                self._scopes.clear()
                self._version = version
            rows = self._scopes.get(scope)
            if rows is None:
                rows = self._load(scope)
                if rows is None:
                    return False, None
            self._scopes.move_to_end(scope)
            return True, rows.best(np.asarray(vector, dtype=np.float32))

    def _load(self, scope: Scope) -> _Rows | None:
        loaded = self._ledger.embeddings(scope, self._max_rows)
        if loaded is None:
            return None
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
