"""Which LanceDB versions and files maintenance removes, and when (``VersionPruner``).

Every write adds a dataset version (an upsert two) and LanceDB keeps them all unless told
otherwise (12,171 versions, ~130 kB per memory after a 20,000-operation soak). The writer after
one of its folds in ``PRUNE_EVERY_PASSES`` (``prune_in_writer``; with replicas, one background
pass in that many), and every forced pass (the idle pass, the end of a bulk write, an explicit
one) remove the versions nobody can still be reading. A reader in another process holds a
version for at most ``FRESHNESS_S`` plus one query after a newer one appears (then it reloads),
and this process reads the version it wrote last; crash recovery replays the SQLite outbox, never
an old LanceDB version. So a version whose successor is older than ``VERSION_HOLD_S`` is kept by
nobody: 10 s is 40 freshness intervals, room for a query stalled by a slow disk (60 s kept
~1,500 versions and 117 kB per memory in a 20,000-operation soak; 10 s: 875 and 99 kB). The hold
counts from the successor, not from the version's own creation: a version written long ago and
replaced a moment ago may still be in a reader's hands.

A process that finds itself alone on the directory (no other process has it open: each holds a
locked file in ``lance-attached/`` while it does, see ``Attachment``) need not wait that long:
only its own reads can hold an old version, so the pass waits for the reads that began before
it (``ReadGate``) and removes every version older than the one current then (``alone_cutoff``).
Each pass compacts the whole table below LanceDB's 1M-row fragment target, so with the 10 s hold
a soak's data directory held 4-6 copies of the table; alone, about one or two.

Files no version references ("unverified": a compaction that lost its commit to a concurrent
delete leaves its rewritten files behind; they were 93 % of the directory after a soak) are
deleted too, where every writer of the directory holds one lock: LanceDB deletes them whatever
their age, a write's files before its commit included, so that cleanup runs while no write can
and while no other process runs a pass (``held_if_free``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

VERSION_HOLD_S = 10.0
# Alone on the directory, after the reads that began before the pass have ended: how much older
# than the version current then a version may be and still stay. LanceDB prunes after the
# compaction ``optimize`` runs first and before its index fold, so with no write since the pass's
# own compaction the version current then is still the latest when the prune runs, which LanceDB
# never removes, and the margin only has to absorb clock reads (timestamps are microseconds from
# this machine's clock): the version before it goes unless it is less than 5 ms older. A write
# since makes that optimize compact again first, which ages every version by that compaction's
# time: ``VersionPruner`` adds a second and three times the pass's compaction then.
ALONE_MARGIN_S = 0.005
ATTACHED_DIR = "lance-attached"  # beside the LanceDB directory
log = logging.getLogger("memorch.vectors")
# optimize's own prune (created > 7 days ago) could remove one just replaced; ``VersionPruner`` prunes.
NO_PRUNE = timedelta(days=36_500)
# Timestamp rounding, and the compaction a pruning optimize runs before its prune.
PRUNE_MARGIN_S = 5.0
PASS_LOCK = "lance-maintain.lock"  # beside the LanceDB directory
# How long a prune waits for the writers' lock before leaving the versions to the next pass.
PRUNE_LOCK_WAIT_S = 2.0
# Once writes have stopped, and no search has run, for this long, one more pass (``watch_idle``):
# the last rows of a burst are folded into the indexes, and a process alone on the directory keeps
# one copy of the table at rest (a pass during writes keeps the copy readers may still hold, see
# ``VersionPruner``). Searches hold it off too: a fold between two searches could change the
# second's full-text scores (``vector_maintenance``).
IDLE_PASS_S = 2.0
# Folds (a writer's; with replicas, background passes) under continuous writes per prune. A prune
# is a second ``optimize`` under the writers' lock (~0.25 s at 5,000 memories, during which
# writes and the index flush a search makes wait); pruning at every pass made the soak's
# searches' p95 grow with the table. A forced pass (the idle one, the end of a bulk write, an
# explicit one) prunes.
PRUNE_EVERY_PASSES = 4


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


def alone_cutoff(created: Sequence[float], began: float, now: float, margin_s: float) -> timedelta | None:
    """``cleanup_older_than`` that keeps the version current at ``began`` and every later one
    (versions created at ``created``, oldest first), or None when none is older."""
    current = max((i for i, at in enumerate(created) if at <= began), default=0)
    if current == 0:
        return None
    return timedelta(seconds=max(0.0, now - created[current]) + margin_s)


@contextmanager
def held_if_free(lock: Any, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold a file lock if it is free within ``wait_s`` (by default never waiting): True while
    held, False when another holds it (a maintenance pass that finds another running skips: that
    one maintains the same table, this process's rows included; a search does not wait behind a
    writer)."""
    from filelock import Timeout

    try:
        held = lock.acquire(timeout=wait_s)
    except Timeout:
        yield False
        return
    with held:
        yield True


class Bursts:
    """When the index was last written, and whether a pass is owed for that burst of writes: the
    idle pass (``watch_idle``) runs once per burst, and not at all when a pass that began after
    the burst's last write (after an import, the import's own) already did its work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = self._last_use = 0.0  # the last write; the last write or search
        self._owed = False

    def wrote(self) -> None:
        with self._lock:
            self._last = self._last_use = time.monotonic()
            self._owed = True

    def read(self) -> None:
        """A search: the index is in use, so the idle pass waits (``vector_maintenance``)."""
        self._last_use = time.monotonic()

    def mark(self) -> float:
        """Taken as a pass begins, for ``covered``."""
        return self._last

    def covered(self, mark: float) -> None:
        """A pass that began at ``mark`` has ended: if nothing was written since, none is owed."""
        with self._lock:
            if self._last == mark:
                self._owed = False

    def idle_pass_due(self, idle_s: float) -> bool:
        """True once per burst, when the index has not been written or searched for ``idle_s``."""
        with self._lock:
            if not self._owed or time.monotonic() - self._last_use < idle_s:
                return False
            self._owed = False
            return True


def watch_idle(index_ref: Any) -> None:
    """Start a pass of the index (a ``weakref``) once its writes have stopped for ``IDLE_PASS_S``,
    one per burst, until it is closed or gone."""
    while True:
        index = index_ref()
        if index is None or index._closed.wait(IDLE_PASS_S / 4):
            return
        if index._bursts.idle_pass_due(IDLE_PASS_S):
            index._schedule(force=True)
        del index  # no reference held while waiting: an index nobody closed can still go


class ReadGate:
    """The reads in flight, by when they began: ``wait_for_earlier`` waits for those that began
    before it was called (which may hold a version a prune removes) and for none that begin
    after (they read the latest), so a steady stream of reads cannot starve a prune."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._epoch = 0
        self._active: Counter[int] = Counter()

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._changed:
            epoch = self._epoch
            self._active[epoch] += 1
        try:
            yield
        finally:
            with self._changed:
                self._active[epoch] -= 1
                if not self._active[epoch]:
                    del self._active[epoch]
                self._changed.notify_all()

    def wait_for_earlier(self, timeout: float) -> bool:
        """True once every read that began before this call has ended; False after ``timeout``."""
        with self._changed:
            self._epoch += 1
            barrier = self._epoch
            return self._changed.wait_for(lambda: all(epoch >= barrier for epoch in self._active), timeout)


class Attachment:
    """This process's mark that it has a local LanceDB directory open: a file in
    ``lance-attached/`` it holds locked until ``close``. ``alone`` is True when no other
    process holds one. A process that opens the directory after that check reads the versions
    written since, which a prune keeps. A file left by a process that died is not locked: it is
    removed when found."""

    def __init__(self, lance_dir: str | Path) -> None:
        from filelock import FileLock

        self._dir = Path(lance_dir).parent / ATTACHED_DIR
        self._dir.mkdir(exist_ok=True)
        self._path = self._dir / f"{os.getpid()}-{uuid.uuid4().hex}.lock"
        self._lock = FileLock(str(self._path), thread_local=False)
        self._lock.acquire(timeout=0)

    def alone(self) -> bool:
        from filelock import FileLock, Timeout

        for path in self._dir.glob("*.lock"):
            if path == self._path:
                continue
            other = FileLock(str(path), thread_local=False)
            try:
                other.acquire(timeout=0)
            except Timeout:
                return False  # another process has the directory open
            with other:  # its process ended without removing it
                path.unlink(missing_ok=True)
        return True

    def close(self) -> None:
        self._lock.release()
        self._path.unlink(missing_ok=True)


def attach(lance_dir: str | Path) -> Attachment | None:
    """This process's ``Attachment``, or None where it cannot mark the directory (a read-only
    one, which no process prunes): maintenance then always holds versions ``VERSION_HOLD_S``."""
    try:
        return Attachment(lance_dir)
    except OSError:
        log.info("cannot mark %s as open; old versions are held %.0f s", lance_dir, VERSION_HOLD_S, exc_info=True)
        return None


class VersionPruner:
    """Which versions of one table a maintenance pass removes (see the module doc), and the
    reads in flight it waits for (``reads``: every read of the table runs inside
    ``reads.reading()``)."""

    def __init__(
        self,
        uri: str | Path,
        hold_s: float,
        writers_lock: Callable[[], AbstractContextManager[Any]] | None,
    ) -> None:
        self.reads = ReadGate()
        self._passes = 0  # since the last prune
        self._hold_s = hold_s
        self._writers_lock = writers_lock
        self._attachment = attach(uri) if isinstance(uri, Path) or "://" not in uri else None

    def due(self, forced: bool) -> bool:
        """Whether this pass prunes: every ``PRUNE_EVERY_PASSES``-th since the last prune that
        ran, and every forced one."""
        self._passes += 1
        return forced or self._passes >= PRUNE_EVERY_PASSES

    def prune(self, table: Any, table_lock: threading.Lock, compacted: int, compaction_s: float) -> None:
        """Remove the versions replaced more than the hold ago, and with ``writers_lock`` the
        files no version references. Alone on the directory, once this process's reads that
        began before now have ended, every version older than the current one goes. The prune
        is a second ``optimize``; ``compacted`` is the version the pass's compaction made, in
        ``compaction_s``."""
        began = self._alone_since()
        if self._writers_lock is None:
            self._prune_held(table, began, compacted, compaction_s, delete_unverified=False)
            self._passes = 0
            return
        # Never an unbounded wait: a thread that holds the writers' lock may be waiting for this
        # pass to end (``reindex`` closes the index it rebuilds); then the next pass prunes.
        with held_if_free(self._writers_lock(), PRUNE_LOCK_WAIT_S) as held:
            if held:
                with table_lock:  # after the writers' lock, the order every writer takes them in
                    self._prune_held(table, began, compacted, compaction_s, delete_unverified=True)
                self._passes = 0

    def prune_in_writer(self, table: Any) -> None:
        """A writer's prune, right after its fold and under its table lock (no write comes
        between): as ``prune``, except that files no version references wait for a pass that
        holds every writer's lock."""
        self._prune_held(table, self._alone_since(), table.version, 0.0, delete_unverified=False)
        self._passes = 0

    def _alone_since(self) -> float | None:
        """When alone on the directory: now, once this process's reads that began before have
        ended (every version older than the current one may then go); else None (the hold)."""
        if self._attachment is None or not self._attachment.alone():
            return None
        began = time.time()
        return began if self.reads.wait_for_earlier(timeout=self._hold_s) else None

    def _prune_held(
        self, table: Any, began: float | None, compacted: int, compaction_s: float, delete_unverified: bool
    ) -> None:
        versions = sorted(table.list_versions(), key=lambda v: v["version"])
        # list_versions gives naive local datetimes; .timestamp() reads them as local time.
        created, now = [v["timestamp"].timestamp() for v in versions], time.time()
        if began is None:
            keep = prune_cutoff(created, now, self._hold_s)
        else:  # a write since the compaction makes this optimize compact again before it prunes
            margin = ALONE_MARGIN_S if table.version == compacted else 1.0 + 3 * compaction_s
            keep = alone_cutoff(created, began, now, margin)
        if keep is not None:
            table.optimize(cleanup_older_than=keep, delete_unverified=delete_unverified)

    def close(self) -> None:
        if self._attachment is not None:
            self._attachment.close()
            self._attachment = None
