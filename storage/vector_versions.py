"""Which LanceDB versions and files maintenance removes, and when (``LanceVectorIndex._prune``).

Every write adds a dataset version (an upsert two) and LanceDB keeps them all unless told
otherwise (12,171 versions, ~130 kB per memory after a 20,000-operation soak). Each maintenance
pass removes the versions nobody can still be reading. A reader in another process holds a
version for at most ``FRESHNESS_S`` plus one query after a newer one appears (then it reloads),
and this process reads the version it wrote last; crash recovery replays the SQLite outbox, never
an old LanceDB version. So a version whose successor is older than ``VERSION_HOLD_S`` is kept by
nobody: 10 s is 40 freshness intervals, room for a query stalled by a slow disk (60 s kept
~1,500 versions and 117 kB per memory in a 20,000-operation soak; 10 s: 875 and 99 kB). The hold
counts from the successor, not from the version's own creation: a version written long ago and
replaced a moment ago may still be in a reader's hands.

Files no version references ("unverified": a compaction that lost its commit to a concurrent
delete leaves its rewritten files behind; they were 93 % of the directory after a soak) are
deleted too, where every writer of the directory holds one lock: LanceDB deletes them whatever
their age, a write's files before its commit included, so that cleanup runs while no write can
and while no other process runs a pass (``held_if_free``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

VERSION_HOLD_S = 10.0
# optimize's own prune (created > 7 days ago) could remove one just replaced; ``_prune`` prunes.
NO_PRUNE = timedelta(days=36_500)
# Timestamp rounding, and the compaction a pruning optimize runs before its prune.
PRUNE_MARGIN_S = 5.0
PASS_LOCK = "lance-maintain.lock"  # beside the LanceDB directory


def prune_cutoff(created: Sequence[float], now: float, hold_s: float) -> timedelta | None:
    """``cleanup_older_than`` for versions created at ``created`` (oldest first), or None when
    nothing may go. LanceDB removes every version created before the cutoff (never the latest),
    so the cutoff is the creation time of the oldest version still held: the first one whose
    successor is younger than the hold. The margin is at most half the hold."""
    held = next((i for i in range(len(created) - 1) if created[i + 1] > now - hold_s), None)
    if held == 0 or len(created) < 2:
        return None
    oldest_kept = created[-1 if held is None else held]
    return timedelta(seconds=max(0.0, now - oldest_kept) + min(PRUNE_MARGIN_S, hold_s / 2))


def pass_lock(lance_dir: str | Path) -> Any:
    """The lock one maintenance pass at a time holds across the processes on a directory."""
    from filelock import FileLock

    return FileLock(str(Path(lance_dir).parent / PASS_LOCK))


@contextmanager
def held_if_free(lock: Any) -> Iterator[bool]:
    """Hold a file lock if no other process does, never waiting: True while held, False when
    another holds it (a maintenance pass that finds another running skips: that one maintains
    the same table, this process's rows included; a search does not wait behind a writer)."""
    from filelock import Timeout

    try:
        held = lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    with held:
        yield True
