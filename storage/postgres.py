"""The ledger on PostgreSQL (``MEMORCH_LEDGER_URL=postgresql://...``), for several replicas.

Same semantics as the SQLite ledger, and the same code: ``PostgresLedger`` runs every query of
``LedgerCore`` (``storage/ledger_core.py``), as ``SQLiteLedger`` does, and only supplies another
connection underneath. Each statement is translated once to PostgreSQL's dialect
(``storage/postgres_sql.py``), so the two ledgers cannot drift. What several replicas need on top
(``storage.ledger.SharedLedger``):

- one transaction per operation (as in SQLite); a write that returned is committed;
- ``scope_lock``: duplicate checks and the write they decide on are serialized per scope across
  replicas with a transaction-scoped advisory lock on the scope (``pg_advisory_xact_lock``);
- ``claim_outbox``: owed index work is claimed with ``FOR UPDATE SKIP LOCKED``, so two replicas
  never work the same rows at once;
- ``acquire_lease``: work one replica at a time may do (index maintenance), with an expiry so a
  killed replica's lease lapses;
- numbered schema migrations (``storage/postgres_schema.py``).

psycopg is an optional dependency (``pip install memorch[postgres]``); it is imported only here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from memorch.errors import ConfigurationError, StorageError
from memorch.storage.base import Scope
from memorch.storage.engine import log, reason
from memorch.storage.ledger_core import LedgerCore
from memorch.storage.postgres_schema import MIGRATION_LOCK, MIGRATIONS, SCHEMA, SCHEMA_VERSION, VERSION_TABLE
from memorch.storage.postgres_sql import translate
from memorch.storage.sql import marks

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

CONNECT_TIMEOUT_S = 10
# How long a replica waits for another's advisory lock on a scope or a memory (a duplicate check
# and its write, an inference's commit: seconds at most) before it refuses with ``LOCK_TIMEOUT``: a
# replica stuck while holding one (its process frozen, its connection not yet dropped) makes
# the others fail and say so instead of hanging every call on that scope.
LOCK_WAIT_S = 60
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs and messages."""
    return _PASSWORD.sub(r"\1***@", url)


class Row(tuple[Any, ...]):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            key = self._index[key]
        return super().__getitem__(key)


def _rows(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class PgConnection:
    """The part of ``sqlite3.Connection`` the ledger's queries use, over a psycopg connection."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        text, values = translate(sql, params)
        return self.raw.execute(text, values)

    def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        if rows:
            text, _ = translate(sql)
            with self.raw.cursor() as cursor:
                cursor.executemany(text, rows)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "MEMORCH_LEDGER_URL names PostgreSQL, but psycopg is not installed",
            error_code="POSTGRES_DRIVER_MISSING",
            suggestion="install the extra: pip install 'memorch[postgres]' (or uv sync --extra postgres), "
            "or unset MEMORCH_LEDGER_URL to use the SQLite ledger",
        ) from exc
    return psycopg


class PostgresLedger(LedgerCore):
    """``LedgerCore``'s queries on PostgreSQL: a ``Ledger`` and a ``SharedLedger``. Thread-safe
    like the SQLite ledger: one connection behind a lock for the ledger's work, and separate ones
    for advisory locks and outbox claims, which are held while other work goes on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = redact_url(url)  # what the log names (never the password)
        self._lock = threading.RLock()
        self._pg = _psycopg()
        self._raw = self._connect()
        self._migrate()

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        try:
            raw: psycopg.Connection = self._pg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, row_factory=_rows
            )
        except self._pg.Error as exc:
            raise self._error("connect", exc) from exc
        return raw

    def _live(self) -> psycopg.Connection:
        """The connection, opened again if the server dropped it (a restart, a failover)."""
        if self._raw.closed or self._raw.broken:
            self._raw = self._connect()
        return self._raw

    def _error(self, action: str, exc: BaseException) -> StorageError:
        if isinstance(exc, self._pg.errors.LockNotAvailable):
            return StorageError(
                f"another replica held a lock this {action} needs for over {LOCK_WAIT_S} s",
                error_code="LOCK_TIMEOUT",
                suggestion="try again; if it persists, a replica may be stuck holding it: restart that "
                "replica (its locks go with its connection)",
            )
        log.warning("the PostgreSQL ledger could not %s (%s)", action, self.location, exc_info=True)
        return StorageError(
            f"the PostgreSQL ledger could not {action} ({reason(exc)})",
            error_code="LEDGER_ERROR",
            suggestion="check that PostgreSQL at MEMORCH_LEDGER_URL is reachable and accepts the "
            "credentials; run `memorch doctor`",
        )

    def _migrate(self) -> None:
        """A new database gets today's schema; an older one the migrations it has not had, each
        once, whoever starts first."""
        with self._write() as conn:
            # The lock first: CREATE TABLE IF NOT EXISTS itself races between two sessions.
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            conn.execute(VERSION_TABLE)
            done = {row[0] for row in conn.execute("SELECT version FROM memorch_schema")}
            if not done:
                conn.raw.execute(SCHEMA)  # DDL only, no parameters
                done = set(range(1, SCHEMA_VERSION + 1))
                conn.executemany("INSERT INTO memorch_schema (version) VALUES (?)", [(v,) for v in sorted(done)])
            for version, script in MIGRATIONS:
                if version not in done:
                    conn.raw.execute(script)  # DDL only, no parameters
                    conn.execute("INSERT INTO memorch_schema (version) VALUES (?)", (version,))

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COALESCE(max(version), 0) FROM memorch_schema").fetchone()[0])

    @contextmanager
    def _read(self) -> Iterator[PgConnection]:
        with self._lock:
            try:
                yield PgConnection(self._live())
            except self._pg.Error as exc:
                raise self._error("read", exc) from exc

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[PgConnection]:
        """One transaction (a savepoint inside ``scope_lock``'s). ``durable=False`` commits
        without waiting for the WAL flush, for writes a crash may lose because they are redone."""
        with self._lock:
            try:
                raw = self._live()
                with raw.transaction():
                    if not durable:
                        raw.execute("SET LOCAL synchronous_commit = off")
                    yield PgConnection(raw)
            except self._pg.Error as exc:
                raise self._error("write", exc) from exc

    def scrub(self) -> None:
        """After a purge (outside its transaction): ``VACUUM`` the tables it touched, so the
        space of the rows it deleted is marked free (their bytes stay in the table's files until
        PostgreSQL reuses that space, and in its WAL, archives and replicas until they are
        recycled; ``VACUUM FULL`` rewrites a table, under a lock that stops every reader, and is
        left to the database's administrator). A failure is logged: the purge itself is done."""
        with self._lock:
            try:
                self._live().execute("VACUUM memories, history, relations, embedding_cache")
            except self._pg.Error:
                log.warning("VACUUM after a purge failed (%s)", self.location, exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._raw.close()

    def backup_to(self, path: Path) -> None:
        raise StorageError(
            "memorch backup copies the SQLite ledger; this ledger is on PostgreSQL",
            error_code="BACKUP_UNSUPPORTED",
            suggestion="back up PostgreSQL with its own tools (pg_dump, or the provider's snapshots)",
        )

    # -- what several replicas need -----------------------------------------------------------

    @contextmanager
    def scope_lock(self, scope: Scope) -> Iterator[None]:
        """Hold the scope's advisory lock for the block, which runs as one transaction: a
        duplicate check and the write it decides on are not interleaved with another replica's
        in the same scope. The lock goes with the commit (or rollback)."""
        with self.named_lock("scope\x1f" + "\x1f".join(value or "" for value in scope.values())):
            yield

    @contextmanager
    def memory_locks(self, memory_ids: Sequence[str]) -> Iterator[None]:
        """As ``scope_lock``, for a change of these memories: two replicas updating one at once
        take turns, so each reads the version the other wrote (history chains old → new), and a
        purge never interleaves with inference changing what it purges. Taken in the ids' order,
        so two writers locking several never wait on each other in a circle."""
        with self._write() as conn:
            with _lock_waits_bounded(conn):
                for memory_id in sorted(set(memory_ids)):
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("memory\x1f" + memory_id,))
            yield

    @contextmanager
    def named_lock(self, name: str) -> Iterator[None]:
        """Hold an advisory lock on ``name`` across replicas for the block (one transaction)."""
        with self._write() as conn:
            with _lock_waits_bounded(conn):
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))
            yield

    @contextmanager
    def claim_outbox(self, target: str, limit: int, ids: Sequence[str] | None = None) -> Iterator[dict[str, str]]:
        """Claim up to ``limit`` rows of owed ``target`` work that no other replica holds
        (``SKIP LOCKED``), as memory id → token. The claim lasts for the block, on a connection
        of its own; at its end the rows whose token is unchanged are cleared in the same
        transaction (a write meanwhile waits, then leaves a new token: that work stays owed).

        ``ids``: claim exactly these memories' rows, waiting for a replica that holds one. A
        writer indexes its own change this way, so two replicas' index writes of one memory
        never interleave (LanceDB would keep both appends, or a delete would miss a row)."""
        if ids is None:
            sql = (
                "SELECT memory_id, token FROM index_outbox WHERE target = ?"
                " ORDER BY memory_id LIMIT ? FOR UPDATE SKIP LOCKED"
            )
            params: tuple[Any, ...] = (target, limit)
        else:
            sql = (
                f"SELECT memory_id, token FROM index_outbox WHERE target = ? AND memory_id IN ({marks(len(ids))})"
                " ORDER BY memory_id FOR UPDATE"
            )
            params = (target, *sorted(ids))
        try:
            raw = self._pg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            with raw, raw.transaction():
                conn = PgConnection(raw)
                claimed = {row[0]: row[1] for row in conn.execute(sql, params).fetchall()}
                yield claimed
                conn.executemany(
                    "DELETE FROM index_outbox WHERE memory_id = ? AND target = ? AND token = ?",
                    [(memory_id, target, token) for memory_id, token in claimed.items()],
                )
        except self._pg.Error as exc:
            raise self._error("claim index work", exc) from exc

    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``seconds`` unless another holder has it unexpired."""
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, now() + make_interval(secs => ?))"
                " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
                " WHERE leases.expires_at < now() OR leases.holder = EXCLUDED.holder RETURNING holder",
                (name, holder, float(seconds)),
            ).fetchone()
        return row is not None

    def release_lease(self, name: str, holder: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


@contextmanager
def _lock_waits_bounded(conn: PgConnection) -> Iterator[None]:
    """The advisory locks taken in the block wait at most ``LOCK_WAIT_S`` (``LOCK_TIMEOUT``); the
    rest of the transaction waits as before (a row another replica's outbox claim holds while it
    writes to object storage is no stuck replica)."""
    conn.raw.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_S * 1000)}ms'")
    yield
    conn.raw.execute("SET LOCAL lock_timeout = DEFAULT")
