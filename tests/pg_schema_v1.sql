-- The PostgreSQL ledger's schema at version 1, as memorch made it then (storage/postgres_schema.py
-- makes today's): tests/test_ledger_backends.py upgrades a database made with it.
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
