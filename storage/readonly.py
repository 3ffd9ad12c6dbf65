"""Opening the ledger of a data directory that cannot be written (a read-only mount, a
directory without write permission): reads work, writes are refused before they start.

``ReadOnlyLedger`` shares ``SQLiteLedger``'s connection (``SQLiteCore``), not its open, which
cannot work there: it creates a lock file beside the database, switches the journal to WAL and
creates the schema, and SQLite's WAL mode needs a ``-shm`` file it may not be able to create.
Here the file is opened ``mode=ro``; when SQLite cannot set up its shared memory for that (no
``-shm`` and no way to create one) and no write-ahead log holds commits the file lacks, it is
opened ``immutable`` instead, which is exact because nobody can write the directory.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

from memorch.errors import StorageError
from memorch.storage.engine import log, reason
from memorch.storage.history import BUSY_TIMEOUT_S, SQLiteCore
from memorch.storage.in_use import InUse
from memorch.storage.schema import LATER_COLUMNS

READ_ONLY_HINT = (
    "the data directory (MEMORCH_DATA_DIR) is read-only: reads (search, list, get, export, stats) work; "
    "to write, make it writable (check the mount and its permissions)"
)


def read_only_error(action: str, path: Path) -> StorageError:
    return StorageError(
        f"cannot {action}: the data directory {path} is read-only",
        error_code="READ_ONLY",
        details={"data_dir": str(path)},
        suggestion=READ_ONLY_HINT,
    )


def _connect(path: Path, flags: str) -> sqlite3.Connection:
    uri = f"file:{quote(str(path))}?{flags}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    conn.row_factory = sqlite3.Row
    conn.execute("SELECT count(*) FROM memories").fetchone()  # fails here, not on the first real read
    return conn


def _read_as_current(conn: sqlite3.Connection) -> None:
    """A ledger an earlier version wrote cannot be migrated here: shadow each table that lacks
    ``LATER_COLUMNS`` with a TEMP view that adds them as NULL, what the migration would store
    (temp objects live in memory, and unqualified names find them first)."""
    for table, later in LATER_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        missing = [column for column in later if column not in have]
        if have and missing:
            extra = ", ".join(f"NULL AS {column}" for column in missing)
            conn.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {extra} FROM main.{table}")


class ReadOnlyLedger(SQLiteCore):
    """The ledger of a read-only data directory (every write raises ``READ_ONLY``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        if not path.is_file():
            raise StorageError(
                f"the data directory {path.parent} is read-only and holds no ledger (memorch.db)",
                error_code="READ_ONLY",
                suggestion="point MEMORCH_DATA_DIR at the directory that holds your memories, or make it writable",
            )
        try:
            self._conn = _connect(path, "mode=ro")
        except sqlite3.Error as first:
            wal = Path(str(path) + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise self._error("open read-only (its write-ahead log cannot be read)", first) from first
            try:
                self._conn = _connect(path, "immutable=1")
            except sqlite3.Error as exc:
                raise self._error("open read-only", exc) from exc
        _read_as_current(self._conn)
        self._in_use = InUse(path)
        log.info("the data directory %s is read-only; opened the ledger read-only", path.parent)

    def _write(self, durable: bool = True) -> NoReturn:
        """Every write is refused here, before it starts."""
        raise read_only_error("write", self.path.parent)

    def _error(self, action: str, exc: BaseException) -> StorageError:
        log.warning("the read-only SQLite ledger could not %s (%s)", action, self.path, exc_info=True)
        return StorageError(
            f"the SQLite ledger could not {action} ({reason(exc)})",
            error_code="LEDGER_ERROR",
            suggestion=READ_ONLY_HINT,
        )
