"""The centres of scopes not held in memory (too large for ``_nearest``, or any scope with
several replicas): what ``retrieval._centering`` subtracts, read from the ledger.

A scope of up to ``FRESH_ROWS`` memories is read at every search (its embeddings: ~1.5 MB, a
millisecond or two), so another replica's writes count at once. A larger one is read once per
``TTL_S``, from at most ``MAX_ROWS`` embeddings (the first in the ledger's scope index: ~33 ms
for 20,000 of a 100,000-memory ledger): the mean of thousands of memories moves little in a
minute, and reading them at every search would cost more than the search. ``clear`` (reset,
reindex) makes a read that started before it unusable.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from memorch.engine._nearest import unit_mean
from memorch.storage.base import Scope

if TYPE_CHECKING:
    from memorch.storage.ledger import Ledger

FRESH_ROWS = 1_000
MAX_ROWS = 20_000
TTL_S = 60.0
MAX_SCOPES = 64


class Centroids:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._known: OrderedDict[Scope, tuple[float, np.ndarray | None]] = OrderedDict()
        self._generation = 0  # bumped by ``clear``

    def of(self, scope: Scope) -> np.ndarray | None:
        """The unit mean of the scope's embeddings (None: it has none)."""
        with self._lock:
            known, generation = self._known.get(scope), self._generation
        if known is not None and time.monotonic() - known[0] < TTL_S:
            return known[1]
        found = self._ledger.embedding_sum(scope, MAX_ROWS)
        centre = None if found is None else unit_mean(*found)
        if found is not None and found[1] > FRESH_ROWS:
            with self._lock:
                if generation == self._generation:
                    self._known[scope] = (time.monotonic(), centre)
                    self._known.move_to_end(scope)
                    while len(self._known) > MAX_SCOPES:
                        self._known.popitem(last=False)
        return centre

    def clear(self) -> None:
        """Embeddings changed wholesale (reindex, reset)."""
        with self._lock:
            self._known.clear()
            self._generation += 1
