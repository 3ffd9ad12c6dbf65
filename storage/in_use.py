"""Which processes have a data directory's SQLite ledger open: each holds a shared lock on
``memorch.db.in-use`` (``flock``) for as long as its ledger is open, and what puts another
ledger file in its place (``memorch restore-backup``) takes that lock alone, or refuses. A
server whose ledger was moved aside went on writing to it, its WAL already unlinked, and
acknowledged writes that no ledger kept (a newcomer's trial, 2026-12-07).

The lock goes with the process: a server killed with -9 holds nothing. Where ``flock`` does not
exist (Windows) or the file system refuses it (some network mounts) nothing is held or checked,
as the backups page says.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memorch.errors import StorageError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("memorch.storage")
SUFFIX = ".in-use"
# How long an open waits for a restore holding the lock alone (it copies one ledger file).
WAIT_S = 60.0


class InUse:
    """The shared lock of one open ledger; ``close`` releases it."""

    def __init__(self, ledger: Path) -> None:
        self._fd = _open(ledger)
        if self._fd is None:
            return
        deadline = time.monotonic() + WAIT_S
        while not (got := _locked(self._fd, fcntl.LOCK_SH)):  # type: ignore[union-attr]
            if got is None:  # a file system without flock: nothing held (a restore cannot see us)
                self.close()
                return
            if time.monotonic() > deadline:
                self.close()
                raise in_use_error(ledger, "being restored")
            time.sleep(0.05)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None


@contextmanager
def held_alone(ledger: Path) -> Iterator[None]:
    """Hold ``ledger``'s lock alone for the block, or raise ``DATA_DIR_IN_USE`` at once."""
    fd = _open(ledger)
    try:
        if fd is not None and _locked(fd, fcntl.LOCK_EX) is False:  # type: ignore[union-attr]
            raise in_use_error(ledger, "open in another process")
        yield
    finally:
        if fd is not None:
            os.close(fd)


def in_use_error(ledger: Path, state: str) -> StorageError:
    return StorageError(
        f"the ledger of {ledger.parent} is {state}",
        error_code="DATA_DIR_IN_USE",
        details={"data_dir": str(ledger.parent)},
        suggestion="stop every memorch process on this data directory (the MCP client's server, "
        "`memorch serve`, `memorch ui`), then run the command again",
    )


def _open(ledger: Path) -> int | None:
    if fcntl is None:
        return None
    path = str(ledger) + SUFFIX
    try:
        # Readable by all: a process of another user locks it through a read-only descriptor.
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only data directory: the file if it is there (nothing replaces its ledger)
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return None


def _locked(fd: int, kind: int) -> bool | None:
    """Whether the lock was taken without waiting; None where the file system has no flock (an
    NFS or Lustre mount without it): then nothing is held or checked, as on Windows."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)  # type: ignore[union-attr]
    except BlockingIOError:
        return False
    except OSError:
        log.warning("this file system cannot lock the ledger's in-use file; restore-backup cannot see who has it open")
        return None
    return True
