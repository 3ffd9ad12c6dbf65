"""Owed vector-index work, worked by whichever replica gets to it first (several replicas).

The outbox is shared in PostgreSQL: a replica killed between its ledger commit and its index
write leaves rows there for any replica to finish. Rows are claimed in batches with ``FOR
UPDATE SKIP LOCKED`` (``PostgresLedger.claim_outbox``): two replicas starting at once split the
work instead of doing it twice, and a row is cleared only if no newer change re-queued it. A
running replica looks again every ``SWEEP_EVERY_S`` (on its next write or search).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from memorch.storage.ledger import shared_ledger

if TYPE_CHECKING:
    from memorch.engine._components import Components

# How often a running replica looks for work another replica died owing (one short claim query
# on an empty outbox); until then such a memory is in the ledger but not found by search.
SWEEP_EVERY_S = 30.0


class Store(Protocol):
    """What this module uses of ``engine._store.Store``, which imports this module (so it is not
    imported back: no cycle, not even a type-only one)."""

    parts: Components


def work_owed_vectors(store: Store, target: str, batch: int) -> int:
    """Index every owed memory this replica can claim; how many it indexed."""
    ledger = shared_ledger(store.parts.ledger)  # only with ledger_url
    done = 0
    while True:
        with ledger.claim_outbox(target, batch) as claimed:
            if not claimed:
                return done
            _index_claimed(store, list(claimed))
            done += len(claimed)


def index_own_changes(store: Store, target: str, ids: list[str]) -> None:
    """Index the memories this replica just committed, under their outbox rows' claim: a sweep
    (or another replica's write) of the same memory is either finished before or waits until
    after. A row already gone was indexed by a sweep that read this commit."""
    ledger = shared_ledger(store.parts.ledger)
    with ledger.claim_outbox(target, len(ids), ids=ids) as claimed:
        if claimed:
            _index_claimed(store, list(claimed))


def _index_claimed(store: Store, ids: list[str]) -> None:
    # Read under the claim: no change of these can commit meanwhile. The index write starts from
    # the dataset's latest version (``LanceVectorIndex`` refreshes before writing), so a row
    # another replica appended a moment ago is seen and replaced, never kept beside.
    records = store.parts.ledger.get_many(ids)
    present = {r.id for r in records}
    store.parts.vectors.replace(records, [i for i in ids if i not in present])
