"""The LanceDB index when several replicas write one dataset (``MEMORCH_VECTOR_URI=s3://...``).

Concurrent writers: LanceDB (lance >= 0.25, with lancedb 0.40 here) commits each version by
writing its manifest with a conditional PUT (``If-None-Match: *``); a writer that loses the
race gets 412, rebases its transaction on the winner's version and tries the next one. So plain
``s3://`` on any store that honours conditional PUT (AWS S3 since 2024-08, MinIO, R2, moto) is
safe without the DynamoDB commit store (``s3+ddb://``) older releases needed. Checked here:
two writers, 30 concurrent upserts to moto, three 412s in moto's log, all 30 rows present
(``tests/test_replicas.py`` keeps that check).

What is left to coordinate is maintenance: compaction, index folds, the ANN build and version
pruning rewrite the dataset, and two replicas doing them at once would waste the CPU and fight
over commits. A pass runs only while its replica holds the ledger's lease (``acquire_lease``);
the lease expires by itself if the replica dies mid-pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from memorch.storage.engine import log
from memorch.storage.vector_purge import PURGE_PASS_WAIT_S
from memorch.storage.vectors import LanceVectorIndex

# Longer than one maintenance pass (the ANN build at 100k rows: ~60 s on one core), short enough
# that a killed replica's lease lapses soon.
MAINTENANCE_LEASE_S = 600.0


class SharedLanceVectorIndex(LanceVectorIndex):
    """``LanceVectorIndex`` whose maintenance passes run under a lease (see the module doc); its
    writers never fold (replicas' writes interleave, so no order of them is repeatable)."""

    folds_in_writer = False

    def __init__(
        self,
        uri: str | Path,
        dimension: int,
        take_lease: Callable[[], bool],
        release_lease: Callable[[], None],
    ) -> None:
        self._take_lease = take_lease
        self._release_lease = release_lease
        self.passes_skipped = 0  # passes another replica's lease made this one skip
        super().__init__(uri, dimension)

    def wipe(self) -> None:
        """Delete every row, keeping the dataset: the other replicas hold it open, and a dropped
        and re-created one would start its versions again under their handles."""
        with self._lock, self._from_latest("wipe"):
            self._table.delete("true")
            self._planner.forget()

    @contextmanager
    def _other_passes_held(self) -> Iterator[None]:
        """A purge holds the lease the replicas' passes take, so none runs meanwhile: a pass's
        index fold beside the purge's rebuild of the full-text index lost LanceDB's commit race
        ("CreateIndex transaction was preempted by concurrent transaction CreateIndex") and the
        purge failed. Waits up to ``PURGE_PASS_WAIT_S`` for a pass running."""
        deadline = time.monotonic() + PURGE_PASS_WAIT_S
        while not (held := self._take_lease()):
            if time.monotonic() > deadline:
                log.warning("another replica's maintenance pass is still running; purging beside it")
                break
            time.sleep(0.2)
        try:
            yield
        finally:
            if held:
                self._release_lease()

    def _maintain_once(self) -> None:
        if not self._take_lease():
            self.passes_skipped += 1
            return
        try:
            super()._maintain_once()
        finally:
            self._release_lease()
