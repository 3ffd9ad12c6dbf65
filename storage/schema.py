"""The ledger's tables: memories, their append-only history, the index outbox, the embedding
cache, relations, and a small key/value table. ``CREATE ... IF NOT EXISTS`` throughout, so
opening an existing ledger is a no-op; ``migrate`` adds what later versions added to a ledger
made before them. Also how a ``memories`` row becomes a ``MemoryRecord`` and back."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from memorch.storage.base import Change, HistoryEvent, MemoryRecord
from memorch.storage.cache import blob

# The ledger's tables, written once for both engines (``ddl`` fills in an engine's words where
# they differ, from ``DIALECTS``): in PostgreSQL the ids and ISO timestamps the ledger orders by
# compare byte-wise as in SQLite (COLLATE "C"), blobs are BYTEA, the history sequence is an
# identity column, and WITHOUT ROWID is SQLite's alone. ``memories_layer`` and
# ``memories_expiry`` are apart: a ledger made before layers (or expiry) gets them from
# ``migrate``, after their columns.
TABLES = """
CREATE TABLE IF NOT EXISTS memories (
    id {ordered} PRIMARY KEY,
    memory TEXT NOT NULL,
    hash TEXT NOT NULL,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{{}}',
    created_at {ordered} NOT NULL,
    updated_at {ordered} NOT NULL,
    embedding {blob},
    project TEXT,
    expires_at {ordered}
);
CREATE INDEX IF NOT EXISTS memories_scope ON memories (user_id, agent_id, run_id);
CREATE INDEX IF NOT EXISTS memories_hash ON memories (hash);
CREATE INDEX IF NOT EXISTS memories_recent ON memories (user_id, created_at DESC, id);
CREATE TABLE IF NOT EXISTS history (
    seq {sequence},
    id TEXT NOT NULL UNIQUE,
    memory_id {ordered} NOT NULL,
    old_memory TEXT,
    new_memory TEXT,
    event TEXT NOT NULL,
    created_at {ordered} NOT NULL,
    updated_at {ordered},
    is_deleted INTEGER NOT NULL DEFAULT 0,
    actor_id TEXT,
    role TEXT,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    project TEXT,
    reason TEXT,
    relations_before TEXT,
    expires_at {ordered},
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id, seq);
CREATE TABLE IF NOT EXISTS index_outbox (
    memory_id {ordered} NOT NULL,
    target TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (memory_id, target)
){without_rowid};
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS relations (
    memory_id {ordered} NOT NULL,
    position INTEGER NOT NULL,
    source TEXT NOT NULL,
    source_type TEXT,
    relationship TEXT NOT NULL,
    destination TEXT NOT NULL,
    destination_type TEXT,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    source_norm TEXT NOT NULL,
    destination_norm TEXT NOT NULL,
    project TEXT,
    PRIMARY KEY (memory_id, position)
){without_rowid};
CREATE INDEX IF NOT EXISTS relations_source ON relations (user_id, source_norm);
CREATE INDEX IF NOT EXISTS relations_destination ON relations (user_id, destination_norm);
"""

# A rowid table in SQLite too (not WITHOUT ROWID): its 1.5 kB vectors stay inline, see ``migrate``.
EMBEDDING_CACHE_TABLE = """
CREATE TABLE IF NOT EXISTS embedding_cache (
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector {blob} NOT NULL,
    PRIMARY KEY (model, text_hash)
);
"""

DIALECTS = {
    "sqlite": {
        "ordered": "TEXT",
        "blob": "BLOB",
        "sequence": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "without_rowid": " WITHOUT ROWID",
    },
    "postgresql": {
        "ordered": 'TEXT COLLATE "C"',
        "blob": "BYTEA",
        "sequence": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "without_rowid": "",
    },
}


def ddl(template: str, dialect: str) -> str:
    """A table template in one engine's words."""
    return template.format(**DIALECTS[dialect])


EMBEDDING_CACHE = ddl(EMBEDDING_CACHE_TABLE, "sqlite")
SCHEMA = ddl(TABLES + EMBEDDING_CACHE_TABLE, "sqlite")

# The index a layered read of one user uses (``project``; NULL = its owner's global layer).
LAYER_INDEX = "CREATE INDEX IF NOT EXISTS memories_layer ON memories (user_id, project)"
# The memories that expire, by time: what a read hides and maintenance purges (storage/expiry.py).
# Partial: most memories never expire and cost the index nothing.
EXPIRY_INDEX = "CREATE INDEX IF NOT EXISTS memories_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL"

MEMORY_COLUMNS = (
    "id, memory, hash, user_id, agent_id, run_id, metadata, created_at, updated_at, embedding, project, expires_at"
)
MEMORY_COLUMN_COUNT = len(MEMORY_COLUMNS.split(","))


# The TEXT columns later versions added to each table, NULL in rows written before: ``migrate``
# adds them; a read-only ledger (``storage.readonly``), which cannot be migrated, reads them as NULL.
# Layers: a memory stored before projects is in its owner's global layer, what NULL ``project``
# says. Expiry: one stored before never expires. Explained and reversible history: an event's
# ``reason`` and the relations it replaced; a deletion's record of the memory's expiry and
# metadata (restore brings them back).
LATER_COLUMNS = {
    "memories": ("project", "expires_at"),
    "history": ("project", "reason", "relations_before", "expires_at", "metadata"),
    "relations": ("project",),
}


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a ledger made by an earlier version up to this schema: adding the ``LATER_COLUMNS``
    it lacks (no table rewrite in SQLite) is the whole migration of its rows."""
    for table, later in LATER_COLUMNS.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in later:
            if column not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
    conn.execute(LAYER_INDEX)
    conn.execute(EXPIRY_INDEX)
    # The embedding cache was a WITHOUT ROWID table: its 1.5 kB vectors overflowed the index
    # b-tree's ~1 kB of local payload, so each entry took ~4.6 kB. A rowid table keeps them
    # inline (~1.7 kB). It is a cache (every entry can be recomputed): dropped, not copied.
    cache = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'embedding_cache'").fetchone()
    if cache is not None and "WITHOUT ROWID" in cache[0].upper():
        conn.execute("BEGIN IMMEDIATE")  # a running older process never finds the table missing
        conn.execute("DROP TABLE embedding_cache")
        conn.execute(EMBEDDING_CACHE)
        conn.execute("COMMIT")


def _vector(data: bytes | None) -> np.ndarray | None:
    return None if data is None else np.frombuffer(data, dtype=np.float32).copy()


def memory_record(row: sqlite3.Row) -> MemoryRecord:
    """The record a ``SELECT {MEMORY_COLUMNS}`` row holds."""
    return MemoryRecord(
        id=row["id"],
        memory=row["memory"],
        hash=row["hash"],
        user_id=row["user_id"],
        agent_id=row["agent_id"],
        run_id=row["run_id"],
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        embedding=_vector(row["embedding"]),
        project=row["project"],
        expires_at=row["expires_at"],
    )


def memory_row(r: MemoryRecord) -> tuple[Any, ...]:
    """The values of ``MEMORY_COLUMNS`` for ``r``, in order."""
    return (
        r.id,
        r.memory,
        r.hash,
        r.user_id,
        r.agent_id,
        r.run_id,
        json.dumps(r.metadata),
        r.created_at,
        r.updated_at,
        blob(r.embedding),
        r.project,
        r.expires_at,
    )


# The columns a HistoryEvent is read from, in its field order.
EVENT_COLUMNS = (
    "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role,"
    " reason, relations_before, expires_at, metadata"
)
EVENT_COLUMN_COUNT = len(EVENT_COLUMNS.split(","))


def history_event(values: Sequence[Any]) -> HistoryEvent:
    """A HistoryEvent from a row that starts with ``EVENT_COLUMNS`` (SQLite keeps the flag as 0/1,
    the relations and metadata as JSON)."""
    event = HistoryEvent(*values[:EVENT_COLUMN_COUNT])
    before = None if event.relations_before is None else tuple(json.loads(event.relations_before))
    metadata = None if event.metadata is None else json.loads(event.metadata)
    fields = {"is_deleted": bool(event.is_deleted), "relations_before": before, "metadata": metadata}
    return HistoryEvent(**{**event.__dict__, **fields})


def event_for(change: Change) -> HistoryEvent:
    """The history event that records ``change`` (a new id; the change's own times)."""
    r = change.record
    before = r if change.kind == "DELETE" else change.before
    return HistoryEvent(
        id=str(uuid.uuid4()),
        memory_id=r.id,
        old_memory=change.old_memory,
        new_memory=None if change.kind == "DELETE" else r.memory,
        event=change.kind,
        created_at=r.created_at,
        updated_at=r.updated_at,
        is_deleted=change.kind == "DELETE",
        actor_id=change.actor_id,
        role=change.role,
        reason=change.reason,
        expires_at=None if before is None else before.expires_at,
        metadata=None if before is None else before.metadata,
    )
