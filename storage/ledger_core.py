"""The ledger's queries, written once for every ledger: ``LedgerCore``.

One write transaction per operation changes ``memories``, appends to ``history`` and records
which derived indexes (vectors, graph) still have to catch up in ``index_outbox``. The
orchestrator clears an outbox row only after the index has the change, so a crash between the
two leaves work that is replayed on the next start.

``LedgerCore`` is not a ledger: it opens nothing. Each ledger (``SQLiteLedger``,
``ReadOnlyLedger``, ``PostgresLedger``) derives from it and supplies the connection handling:
``_read`` and ``_write`` (a locked connection, a transaction), ``close``, ``backup_to`` and the
locks a duplicate check holds. The SQL is SQLite's dialect; the PostgreSQL ledger's connection
translates it (``storage/postgres_sql.py``), so the queries cannot drift between the two.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from memorch.storage.base import Change, HistoryEvent, MemoryRecord, Scope, normalize_entity
from memorch.storage.cache import CacheQueries, blob, store_vectors
from memorch.storage.expiry import EXPIRED_IDS, LIVE, ExpiryQueries, stamp
from memorch.storage.neighbours import NeighbourQueries
from memorch.storage.purge import PURGE, PurgeQueries, gone
from memorch.storage.relations import RELATION_FIELDS, RelationQueries
from memorch.storage.schema import (
    EVENT_COLUMNS,
    MEMORY_COLUMN_COUNT,
    MEMORY_COLUMNS,
    event_for,
    history_event,
    memory_record,
    memory_row,
)
from memorch.storage.sql import Connection, marks, scope_sql, select_in
from memorch.storage.transfer import TransferQueries

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

PENDING_INFERENCE = "json_extract(metadata, '$._memorch.pending_inference') = 1"


class LedgerCore(RelationQueries, CacheQueries, TransferQueries, PurgeQueries, ExpiryQueries, NeighbourQueries, ABC):
    """Every query of ``storage.ledger.Ledger`` over an abstract connection: a ledger derives from
    this and defines how a connection is had (the abstract methods below)."""

    # How many embeddings the persistent cache keeps (None: all). Given for the data directory's
    # ledger (``MEMORCH_EMBEDDING_CACHE_SIZE``); PostgreSQL's table has no rowid to order by,
    # and a shared ledger does not sit on one laptop's disk, so it keeps all.
    cache_rows: int | None = None

    # -- what each ledger supplies --------------------------------------------------------------

    @abstractmethod
    def _read(self) -> AbstractContextManager[Connection]:
        """The connection, for reads (under the ledger's lock; engine errors as ``StorageError``)."""

    @abstractmethod
    def _write(self, durable: bool = True) -> AbstractContextManager[Connection]:
        """One transaction. ``durable=False``: a crash may lose it, because it is redone anyway
        (clearing done index work, cached embeddings)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole ledger into a new SQLite file."""

    @abstractmethod
    def scope_lock(self, scope: Scope) -> AbstractContextManager[None]:
        """Serialize a duplicate check and its write per scope (across replicas, where several
        write one ledger)."""

    @abstractmethod
    def memory_locks(self, memory_ids: Sequence[str]) -> AbstractContextManager[None]:
        """As ``scope_lock``, for a change of these memories (update, restore, delete, purge, and
        what inference changes)."""

    def _purging(self) -> AbstractContextManager[None]:
        """Around a purge's transaction: SQLite overwrites what it deletes (``secure_delete``)."""
        return nullcontext()

    def scrub(self) -> None:
        """After a purge, outside any transaction: leave no copy of what it removed in the
        engine's files where that can be done (SQLite: ``VACUUM`` and a truncating checkpoint;
        PostgreSQL: ``VACUUM`` of the tables a purge touches). Nothing by default."""

    # -- writes -------------------------------------------------------------------------------

    def apply(
        self,
        changes: Sequence[Change],
        index_targets: Sequence[str],
        relation_targets: Sequence[str] = (),
        cached: tuple[str, dict[str, np.ndarray]] | None = None,
    ) -> dict[str, dict[str, str]]:
        """Write memories, their history events and the owed index work in one transaction, and
        return the outbox token of each (target → memory id → token) for ``clear_pending``.

        ``relation_targets`` (the graph) are owed work only when the change adds relations or
        the memory had some: most memories state none, and their writes skip the graph.
        ``cached`` (model, text hash → vector) rides along into the embedding cache, so that
        cache costs no commit of its own.
        """
        tokens: dict[str, dict[str, str]] = {}
        with self._write() as conn:
            if cached is not None and cached[1]:
                store_vectors(conn, *cached, self.cache_rows)
            for change in changes:
                had_relations = (
                    conn.execute("SELECT 1 FROM relations WHERE memory_id = ? LIMIT 1", (change.record.id,)).fetchone()
                    is not None
                )
                self._apply_change(conn, change)
                targets = list(index_targets)
                if had_relations or (change.kind != "DELETE" and change.relations):
                    targets += relation_targets
                # A fresh token per enqueue: an index worker that read the memory before this
                # change clears only the token it saw, so this change is never lost.
                queued = [(change.record.id, target, uuid.uuid4().hex) for target in targets]
                conn.executemany(
                    "INSERT OR REPLACE INTO index_outbox (memory_id, target, token) VALUES (?, ?, ?)", queued
                )
                for memory_id, target, token in queued:
                    tokens.setdefault(target, {})[memory_id] = token
        return tokens

    @staticmethod
    def _apply_change(conn: Connection, change: Change) -> None:
        r = change.record
        if change.kind == "DELETE":
            conn.execute("DELETE FROM memories WHERE id = ?", (r.id,))
        else:
            conn.execute(
                f"INSERT OR REPLACE INTO memories ({MEMORY_COLUMNS}) VALUES ({marks(MEMORY_COLUMN_COUNT)})",
                memory_row(r),
            )
        before = None  # the relations this change replaces, kept in its history event for restore
        if change.kind == "DELETE" or change.relations is not None:
            rows = conn.execute(
                f"SELECT {', '.join(RELATION_FIELDS)} FROM relations WHERE memory_id = ? ORDER BY position", (r.id,)
            ).fetchall()
            before = json.dumps([dict(zip(RELATION_FIELDS, row, strict=True)) for row in rows])
            conn.execute("DELETE FROM relations WHERE memory_id = ?", (r.id,))
        kept = () if change.kind == "DELETE" else (change.relations or ())
        for position, rel in enumerate(kept):
            conn.execute(
                "INSERT INTO relations (memory_id, position, source, source_type, relationship, destination,"
                " destination_type, user_id, agent_id, run_id, source_norm, destination_norm, project)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    r.id,
                    position,
                    *(rel.get(f) for f in RELATION_FIELDS),
                    r.user_id,
                    r.agent_id,
                    r.run_id,
                    normalize_entity(rel["source"]),
                    normalize_entity(rel["destination"]),
                    r.project,
                ),
            )
        events = change.history if change.history is not None else (event_for(change),)
        conn.executemany(
            "INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at,"
            " updated_at, is_deleted, actor_id, role, user_id, agent_id, run_id, project, reason, relations_before,"
            " expires_at, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    e.id,
                    r.id,
                    e.old_memory,
                    e.new_memory,
                    e.event,
                    e.created_at,
                    e.updated_at,
                    int(e.is_deleted),
                    e.actor_id,
                    e.role,
                    r.user_id,
                    r.agent_id,
                    r.run_id,
                    r.project,
                    e.reason,
                    before,
                    e.expires_at,
                    None if e.metadata is None else json.dumps(e.metadata),
                )
                for e in events
            ],
        )

    def set_embeddings(self, vectors: dict[str, np.ndarray]) -> None:
        """Replace stored embeddings (re-embedding is not a change of the memory: no history)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE memories SET embedding = ? WHERE id = ?",
                [(blob(v), memory_id) for memory_id, v in vectors.items()],
            )

    def outbox_tokens(self, target: str, ids: Sequence[str]) -> dict[str, str]:
        """The current outbox token of each id that has work queued for ``target``."""
        sql = "SELECT memory_id, token FROM index_outbox WHERE target = ? AND memory_id IN ({marks})"
        with self._read() as conn:
            return {row[0]: row[1] for row in select_in(conn, sql, ids, [target])}

    def clear_pending(self, target: str, tokens: dict[str, str]) -> None:
        """Clear outbox rows whose token is still the one the worker read before indexing. Not
        fsync'd: a clear a crash loses only makes the next start index those memories again."""
        with self._write(durable=False) as conn:
            conn.executemany(
                "DELETE FROM index_outbox WHERE memory_id = ? AND target = ? AND token = ?",
                [(memory_id, target, token) for memory_id, token in tokens.items()],
            )

    def mark_pending(self, target: str, ids: Sequence[str]) -> None:
        """Queue ``ids`` for ``target`` (index rows found missing on open)."""
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO index_outbox (memory_id, target, token) VALUES (?, ?, ?)",
                [(memory_id, target, uuid.uuid4().hex) for memory_id in ids],
            )

    def mark_all_pending(self, target: str) -> int:
        """Queue every current memory for ``target`` (used by reindex)."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO index_outbox (memory_id, target, token)"
                " SELECT id, ?, lower(hex(randomblob(16))) FROM memories",
                (target,),
            )
            return int(conn.execute("SELECT count(*) FROM index_outbox WHERE target = ?", (target,)).fetchone()[0])

    def wipe(self) -> None:
        with self._write() as conn:
            for table in ("memories", "history", "index_outbox", "meta", "relations"):
                conn.execute(f"DELETE FROM {table}")

    # -- reads --------------------------------------------------------------------------------

    def get(self, memory_id: str) -> MemoryRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?", (memory_id,)).fetchone()
        return None if row is None else memory_record(row)

    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]:
        """Records for ``ids`` in the order given (missing ids are skipped)."""
        with self._read() as conn:
            rows = select_in(conn, f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id IN ({{marks}})", ids)
            found = {row["id"]: memory_record(row) for row in rows}
        return [found[i] for i in ids if i in found]

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """The text of each of ``ids`` that exists (a search's candidates: no embedding, metadata
        or times read)."""
        with self._read() as conn:
            rows = select_in(conn, "SELECT id, memory FROM memories WHERE id IN ({marks})", ids)
            found = {row["id"]: row["memory"] for row in rows}
        return {i: found[i] for i in ids if i in found}

    def ids(self, scope: Scope, where: tuple[str, list[Any]] | None = None) -> list[str]:
        sql, params = self._where(scope, where)
        with self._read() as conn:
            return [row[0] for row in conn.execute(f"SELECT id FROM memories WHERE {sql}", params)]

    @staticmethod
    def _where(scope: Scope, where: tuple[str, list[Any]] | None) -> tuple[str, list[Any]]:
        sql, params = scope_sql(scope)
        if where is not None:
            sql, params = f"{sql} AND ({where[0]})", [*params, *where[1]]
        return sql, params

    def pending_inference(self, limit: int) -> list[MemoryRecord]:
        """Memories stored verbatim while no model could answer (oldest first)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE {PENDING_INFERENCE} ORDER BY created_at, id LIMIT ?",
                (limit,),
            ).fetchall()
        return [memory_record(row) for row in rows]

    def find_by_hash(self, scope: Scope, text_hash: str) -> MemoryRecord | None:
        """A memory of the scope with this text hash (an expired one is no repeat: it is gone)."""
        sql, params = scope_sql(scope)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE hash = ? AND {sql} AND {LIVE} LIMIT 1",
                [text_hash, *params, stamp()],
            ).fetchone()
        return None if row is None else memory_record(row)

    def history(self, memory_id: str, scope: Scope | None = None) -> list[HistoryEvent]:
        sql, params = scope_sql(scope or Scope())
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM history WHERE memory_id = ? AND {sql} ORDER BY seq",
                [memory_id, *params],
            ).fetchall()
        return [history_event(tuple(row)) for row in rows]

    def versions_at(self, scope: Scope, when: str, limit: int) -> list[tuple[HistoryEvent, Scope]]:
        """Each memory of the scope as it stood at ``when`` (an ISO UTC time): its last history
        event at or before then, unless that was a deletion or its text is gone (history
        retention); newest change first. A memory expired now is left out: it is forgotten."""
        sql, params = scope_sql(scope)
        at = "COALESCE(updated_at, created_at)"
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS}, user_id, agent_id, run_id, project FROM history WHERE seq IN ("
                f" SELECT MAX(seq) FROM history WHERE {sql} AND {at} <= ? GROUP BY memory_id)"
                f" AND event NOT IN ('DELETE', '{PURGE}') AND new_memory IS NOT NULL"
                f" AND memory_id NOT IN ({EXPIRED_IDS}) ORDER BY {at} DESC, seq DESC LIMIT ?",
                [*params, when, stamp(), limit],
            ).fetchall()
        return [(history_event(tuple(row)), Scope(*tuple(row)[-4:])) for row in rows]

    def history_scope(self, memory_id: str) -> Scope | None:
        """The scope (and layer) a memory had, from its history (also after it was deleted)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT user_id, agent_id, run_id, project FROM history WHERE memory_id = ? ORDER BY seq DESC LIMIT 1",
                (memory_id,),
            ).fetchone()
        return None if row is None else Scope(*row)

    def pending(self, target: str) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.execute("SELECT memory_id FROM index_outbox WHERE target = ?", (target,))]

    def scopes(self) -> list[dict[str, Any]]:
        """The user_ids that hold memories, with how many each (most first; the UI's scope list);
        expired ones are forgotten, so not counted."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT user_id, count(*) FROM memories WHERE user_id IS NOT NULL AND {LIVE}"
                " GROUP BY user_id ORDER BY count(*) DESC, user_id",
                [stamp()],
            ).fetchall()
        return [{"user_id": row[0], "memories": row[1]} for row in rows]

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            one = conn.execute(
                "SELECT (SELECT count(*) FROM memories), (SELECT count(*) FROM history),"
                f" (SELECT count(*) FROM index_outbox), (SELECT count(*) FROM memories WHERE {PENDING_INFERENCE})"
            ).fetchone()
        return {"memories": one[0], "history_events": one[1], "pending_index": one[2], "pending_inference": one[3]}

    def scope_counts(self, scope: Scope) -> dict[str, int]:
        """The scope's counts in one round trip: memories readable now (expired ones are
        forgotten), deleted ones (not purged), history events, and relations."""
        sql, params = scope_sql(scope)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT (SELECT count(*) FROM memories WHERE {sql} AND {LIVE}),"
                f" (SELECT count(DISTINCT memory_id) FROM history WHERE {sql} AND {gone()}),"
                f" (SELECT count(*) FROM history WHERE {sql}),"
                f" (SELECT count(*) FROM relations WHERE {sql})",
                [*params, stamp(), *params, *params, *params],
            ).fetchone()
        return dict(zip(("memories", "deleted", "history_events", "relations"), tuple(row), strict=True))

    # Last: a method named ``list`` hides the builtin from the annotations after it.
    def list(
        self, scope: Scope, where: tuple[str, list[Any]] | None, limit: int, after: tuple[str, str] | None = None
    ) -> list[MemoryRecord]:
        """Newest first, expired memories left out; ``after``: the (created_at, id) of the last
        memory of the page before (a keyset, so a page costs the same however deep, and writes
        meanwhile shift nothing)."""
        live = (LIVE, [stamp()]) if where is None else (f"{LIVE} AND ({where[0]})", [stamp(), *where[1]])
        sql, params = self._where(scope, live)
        if after is not None:
            sql += " AND (created_at < ? OR (created_at = ? AND id > ?))"
            params = [*params, after[0], after[0], after[1]]
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE {sql} ORDER BY created_at DESC, id LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [memory_record(row) for row in rows]
