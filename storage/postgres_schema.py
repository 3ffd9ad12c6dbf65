"""The PostgreSQL ledger's schema, as numbered migrations.

The tables are SQLite's (``storage/schema.py``) with PostgreSQL's types: ``BYTEA`` for blobs, an
identity column for the history sequence, ``COLLATE "C"`` on the text the ledger orders by (ids
and ISO timestamps compare byte-wise, as in SQLite, whatever the database's locale). Each
migration runs once, in its own transaction, under an advisory lock, so replicas starting
together apply it exactly once; ``memorch_schema`` records which ran.
"""

from __future__ import annotations

# A fixed advisory-lock key for migrations (any 64-bit number no other lock uses).
MIGRATION_LOCK = 0x6D656D6F72636801

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE memories (
    id TEXT COLLATE "C" PRIMARY KEY,
    memory TEXT NOT NULL,
    hash TEXT NOT NULL,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    embedding BYTEA
);
CREATE INDEX memories_scope ON memories (user_id, agent_id, run_id);
CREATE INDEX memories_hash ON memories (hash);
CREATE TABLE history (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    memory_id TEXT COLLATE "C" NOT NULL,
    old_memory TEXT,
    new_memory TEXT,
    event TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C",
    is_deleted INTEGER NOT NULL DEFAULT 0,
    actor_id TEXT,
    role TEXT,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT
);
CREATE INDEX history_memory ON history (memory_id, seq);
CREATE TABLE index_outbox (
    memory_id TEXT COLLATE "C" NOT NULL,
    target TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (memory_id, target)
);
CREATE TABLE embedding_cache (
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (model, text_hash)
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE relations (
    memory_id TEXT COLLATE "C" NOT NULL,
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
);
CREATE INDEX relations_source ON relations (user_id, source_norm);
CREATE INDEX relations_destination ON relations (user_id, destination_norm);
-- SQLite's json_extract, typed by use (see storage/postgres_sql.py).
CREATE FUNCTION memorch_json_num(doc TEXT, path TEXT[]) RETURNS NUMERIC
LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(doc::jsonb #> path)
        WHEN 'number' THEN (doc::jsonb #>> path)::numeric
        WHEN 'boolean' THEN CASE WHEN (doc::jsonb #> path) = 'true'::jsonb THEN 1 ELSE 0 END
    END
$$;
CREATE FUNCTION memorch_json_text(doc TEXT, path TEXT[]) RETURNS TEXT
LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(doc::jsonb #> path) IN ('string', 'array', 'object')
        THEN doc::jsonb #>> path END
$$;
CREATE FUNCTION memorch_json_any(doc TEXT, path TEXT[]) RETURNS TEXT
LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS $$
    SELECT doc::jsonb #>> path
$$;
""",
    ),
    (
        2,
        """
-- Leases: work that one replica at a time may do (index maintenance), held until expires_at.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
""",
    ),
    (
        3,
        """
-- The change sequence each replica replays into its own graph copy: the transaction that wrote
-- each history row. Sequence numbers are handed out before commit, so a reader could pass a
-- number whose transaction commits later; transaction ids below the oldest running one
-- (pg_snapshot_xmin) belong to finished transactions only, which makes them a safe cursor.
ALTER TABLE history ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX history_xid ON history (xid);
""",
    ),
    (
        4,
        """
-- What the SQLite schema gained alongside (storage/schema.py ``migrate``). Layers: a memory's
-- project (NULL = its owner's global layer, which is what every earlier memory is in), on the
-- memory, its history and its relations, and the index a layered read of one user uses.
-- Explained and reversible history: why a change was made, and the relations it replaced (JSON).
ALTER TABLE memories ADD COLUMN project TEXT;
ALTER TABLE history ADD COLUMN project TEXT;
ALTER TABLE relations ADD COLUMN project TEXT;
CREATE INDEX memories_layer ON memories (user_id, project);
ALTER TABLE history ADD COLUMN reason TEXT;
ALTER TABLE history ADD COLUMN relations_before TEXT;
""",
    ),
    (
        5,
        """
-- Replicas answer graph reads from the ledger now, instead of replaying the change sequence into
-- a graph copy each (README "Running several replicas"): the column of migration 3 goes.
ALTER TABLE history DROP COLUMN xid;
""",
    ),
)

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS memorch_schema (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
