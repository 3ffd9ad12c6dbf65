"""The SQLite ledger: a data directory's ``memorch.db``, the source of truth on one machine.

Its queries are ``LedgerCore``'s (``storage/ledger_core.py``); here is the connection they run
on. WAL with ``synchronous=FULL``: a write that returned has reached the disk.
``SQLiteCore`` is what this ledger shares with ``ReadOnlyLedger`` (``storage/readonly.py``), which
opens the same file where it cannot be written: one connection behind a lock, reads, backups,
and no locks to take for a duplicate check.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from memorch.errors import StorageError
from memorch.storage.base import Scope
from memorch.storage.cache import trim_cache
from memorch.storage.engine import log, reason
from memorch.storage.in_use import InUse
from memorch.storage.ledger_core import LedgerCore
from memorch.storage.schema import SCHEMA, migrate

# How long a statement waits for another process's write transaction before "database is
# locked"; a write is milliseconds, so this is only reached when a writer is stuck.
BUSY_TIMEOUT_S = 30
# How long a first open waits for another process that is creating the same new ledger.
OPEN_LOCK_TIMEOUT_S = 60
WAL_SIZE_LIMIT_BYTES = 1024 * 1024  # see ``journal_size_limit`` below


class SQLiteCore(LedgerCore):
    """A SQLite file's connection, shared by the read-write and the read-only ledger. Not a
    ledger: each of them opens the file its own way and says how a write goes (``_write``)."""

    path: Path
    _conn: sqlite3.Connection
    _lock: threading.RLock
    _in_use: InUse  # held while open: ``memorch restore-backup`` refuses to replace the file under it

    @abstractmethod
    def _error(self, action: str, exc: BaseException) -> StorageError:
        """The engine's error as the client sees it (the path and the details go to the log)."""

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._in_use.close()

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole ledger into a new SQLite file (SQLite's online backup:
        one step under this connection's lock and a read transaction, so no commit is split)."""
        with self._lock:
            try:
                target = sqlite3.connect(path)
                try:
                    self._conn.backup(target)
                    target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
                finally:
                    target.close()
            except sqlite3.Error as exc:
                raise self._error("be backed up", exc) from exc

    def scope_lock(self, scope: Scope) -> AbstractContextManager[None]:
        """Serialize a duplicate check and its write per scope across replicas: nothing to do
        here, as every writer of this file holds the data directory's index lock
        (``Store.writing``); the PostgreSQL ledger takes an advisory lock."""
        return nullcontext()

    def memory_locks(self, memory_ids: Sequence[str]) -> AbstractContextManager[None]:
        """As ``scope_lock``, for a change of these memories."""
        return nullcontext()


class SQLiteLedger(SQLiteCore):
    """``storage.ledger.Ledger`` on one SQLite file. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path, cache_rows: int | None = None) -> None:
        self.path = path
        self.cache_rows = cache_rows
        self._lock = threading.RLock()
        # Two processes opening a new data directory at once race on switching the journal to
        # WAL and creating the schema, and SQLite answers "database is locked" without waiting;
        # a cross-process lock around the open makes the second wait for the first.
        from filelock import FileLock

        try:
            # A data directory that is a file, or cannot be created, is an OSError here.
            path.parent.mkdir(parents=True, exist_ok=True)
            self._in_use = InUse(path)
        except OSError as exc:
            raise self._error("open", exc) from exc
        try:
            with FileLock(str(path) + ".open.lock", timeout=OPEN_LOCK_TIMEOUT_S):
                self._conn = sqlite3.connect(
                    path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
                )
                self._conn.row_factory = sqlite3.Row
                self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
                self._conn.execute("PRAGMA journal_mode=WAL")
                # After a checkpoint the -wal file is cut back to this size; SQLite otherwise keeps
                # it at its high-water mark (~4 MB with the 1,000-page autocheckpoint) for ever.
                self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.executescript(SCHEMA)
                migrate(self._conn)
                if cache_rows is not None:  # a cache grown before the bound: cut once, not in a write
                    trim_cache(self._conn, cache_rows)
        except (sqlite3.Error, OSError) as exc:
            self._in_use.close()
            raise self._error("open", exc) from exc

    def _error(self, action: str, exc: BaseException) -> StorageError:
        # The path and the engine's own words go to the log; the client gets a path-free reason.
        log.warning("the SQLite ledger could not %s (%s)", action, self.path, exc_info=True)
        damaged = type(exc) is sqlite3.DatabaseError  # "malformed", "not a database": the file, not the disk
        return StorageError(
            f"the SQLite ledger could not {action} ({reason(exc)})",
            error_code="LEDGER_ERROR",
            suggestion="the ledger file is damaged: restore it with `memorch restore-backup DIR` (from `memorch "
            "backup`); run `memorch doctor`"
            if damaged
            else "check that the data directory (MEMORCH_DATA_DIR) is writable and not full; run `memorch doctor`",
        )

    @contextmanager
    def _purging(self) -> Iterator[None]:
        """A purge's transaction overwrites what it deletes with zeros (``secure_delete``: the
        text leaves the page it was on, not only the b-tree); every other write stays as fast."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA secure_delete=ON")
            except sqlite3.Error as exc:
                raise self._error("write", exc) from exc
            try:
                yield
            finally:
                self._conn.execute("PRAGMA secure_delete=OFF")

    def scrub(self) -> None:
        """After a purge: ``VACUUM`` rewrites the file, so no free page or unused part of one
        keeps a copy a purge removed (an earlier update or delete leaves its old bytes there),
        then a truncating checkpoint empties the WAL, which held the pages as they were written.
        ``VACUUM`` writes the whole ledger once (its temporary copy goes to SQLite's temporary
        directory, not the data directory); a checkpoint waits up to ``BUSY_TIMEOUT_S`` for
        another process's read of an older snapshot, else the WAL keeps those pages until the next
        checkpoint that completes (logged)."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA secure_delete=ON")
                try:
                    self._conn.execute("VACUUM")
                finally:
                    self._conn.execute("PRAGMA secure_delete=OFF")
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                raise self._error("be scrubbed after a purge", exc) from exc
        if busy:
            log.warning("the WAL of %s could not be emptied after a purge: another process is reading", self.path)

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction. ``durable=False`` skips the fsync at commit, for writes a crash may
        lose because they are redone anyway (clearing done index work, cached embeddings)."""
        with self._lock:
            try:
                if not durable:
                    self._conn.execute("PRAGMA synchronous=NORMAL")  # only outside a transaction
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:  # noqa: BLE001, RUF100 - roll back on anything (even cancellation), then re-raise
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error("write", exc) from exc
            finally:
                if not durable:
                    self._conn.execute("PRAGMA synchronous=FULL")
