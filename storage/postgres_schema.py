"""The PostgreSQL ledger's schema: today's, for a new database, and numbered migrations that bring
a database made by an earlier version up to it.

The tables are SQLite's (``storage/schema.py`` ``TABLES``) in PostgreSQL's words, plus the leases
replicas take turns with and the functions that stand in for SQLite's ``json_extract``. A new
database gets today's schema in one transaction and is stamped with every migration's number; an
older one gets the migrations it has not had, each once, in its own transaction. Both run under
an advisory lock, so replicas starting together apply them exactly once; ``memorch_schema``
records which ran. ``tests/test_ledger_backends.py`` checks that both ways give the same schema.
"""

from __future__ import annotations

from memorch.storage.schema import EMBEDDING_CACHE_TABLE, EXPIRY_INDEX, LAYER_INDEX, TABLES, ddl

# A fixed advisory-lock key for migrations (any 64-bit number no other lock uses).
MIGRATION_LOCK = 0x6D656D6F72636801

LEASES = """
-- Leases: work that one replica at a time may do (index maintenance), held until expires_at.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"""

JSON_FUNCTIONS = """
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
"""

SCHEMA = (
    ddl(TABLES + EMBEDDING_CACHE_TABLE, "postgresql")
    + LAYER_INDEX
    + ";\n"
    + EXPIRY_INDEX
    + ";\n"
    + LEASES
    + JSON_FUNCTIONS
)

# Version 1 made the tables without layers, explanations or leases (its text: tests/pg_schema_v1.sql).
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (2, LEASES),
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
    (
        6,
        """
-- A user's newest memories first (list_memories) without sorting all of them: 29 ms -> 0.03 ms
-- for 20 of 5,500 in SQLite.
CREATE INDEX IF NOT EXISTS memories_recent ON memories (user_id, created_at DESC, id);
""",
    ),
    (
        7,
        f"""
-- Expiry (storage/expiry.py): when a memory stops being true (ISO UTC text, compared byte-wise
-- like the other times; NULL: never, which is what every earlier memory is), and the partial
-- index reads and maintenance find expired memories by.
ALTER TABLE memories ADD COLUMN expires_at TEXT COLLATE "C";
{EXPIRY_INDEX};
""",
    ),
    (
        8,
        """
-- A deletion records the memory's expiry, so restore brings it back (NULL before: never).
ALTER TABLE history ADD COLUMN expires_at TEXT COLLATE "C";
""",
    ),
    (
        9,
        """
-- ... and its metadata (JSON; NULL before: restored without it, as then).
ALTER TABLE history ADD COLUMN metadata TEXT;
""",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]  # what SCHEMA is: every migration applied

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS memorch_schema (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
