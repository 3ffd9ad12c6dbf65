"""The ledger's tables: memories, their append-only history, the index outbox, the embedding
cache, relations, and a small key/value table. ``CREATE ... IF NOT EXISTS`` throughout, so
opening an existing ledger is a no-op."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from .base import Change, HistoryEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id TEXT PRIMARY KEY,
    memory TEXT NOT NULL,
    hash TEXT NOT NULL,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS memories_scope ON memories (user_id, agent_id, run_id);
CREATE INDEX IF NOT EXISTS memories_hash ON memories (hash);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    memory_id TEXT NOT NULL,
    old_memory TEXT,
    new_memory TEXT,
    event TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    is_deleted INTEGER NOT NULL DEFAULT 0,
    actor_id TEXT,
    role TEXT,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id, seq);
CREATE TABLE IF NOT EXISTS index_outbox (
    memory_id TEXT NOT NULL,
    target TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (memory_id, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS embedding_cache (
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS relations (
    memory_id TEXT NOT NULL,
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
    PRIMARY KEY (memory_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relations_source ON relations (user_id, source_norm);
CREATE INDEX IF NOT EXISTS relations_destination ON relations (user_id, destination_norm);
"""

# The columns a HistoryEvent is read from, in its field order.
EVENT_COLUMNS = "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role"
EVENT_COLUMN_COUNT = len(EVENT_COLUMNS.split(","))


def history_event(values: Sequence[Any]) -> HistoryEvent:
    """A HistoryEvent from a row that starts with ``EVENT_COLUMNS`` (SQLite keeps the flag as 0/1)."""
    event = HistoryEvent(*values[:EVENT_COLUMN_COUNT])
    return HistoryEvent(**{**event.__dict__, "is_deleted": bool(event.is_deleted)})


def event_for(change: Change) -> HistoryEvent:
    """The history event that records ``change`` (a new id; the change's own times)."""
    r = change.record
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
    )
