"""The graph of a shared deployment (several replicas over one PostgreSQL ledger), read from the
ledger's relations table instead of a Kuzu copy per replica.

Chosen by measurement (``bench/graph_reads.py``, README "Running several replicas"): one
recursive query on PostgreSQL answered 1-3 hop neighbourhoods 2-4x faster than a replica's Kuzu
copy (whose floor is a database open and a round trip to its child process), and a read from the
ledger needs no replay to see another replica's change: every committed change is there.
"""

from __future__ import annotations

from typing import Any

from memorch.storage.base import Scope
from memorch.storage.graph import MAX_HOPS
from memorch.storage.ledger import Ledger


class LedgerGraph:
    """The read side of ``KuzuGraph`` (``neighbourhood``, ``counts``) over the ledger; there is
    nothing derived to write, rebuild or wipe."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def neighbourhood(self, scope: Scope, name: str, hops: int = 2, limit: int = 100) -> list[dict[str, Any]]:
        return self.ledger.neighbourhood(scope, name, max(1, min(hops, MAX_HOPS)), limit)

    def counts(self) -> dict[str, int]:
        return self.ledger.relation_counts()

    def close(self) -> None:
        """Nothing to close: the ledger is closed by its owner."""
