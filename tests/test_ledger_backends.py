"""One ledger suite, two engines: every ledger operation is checked on SQLite and on PostgreSQL
(real servers: a SQLite file in a temp dir, the test PostgreSQL on 127.0.0.1 with a schema of
its own). The PostgreSQL-only parts (migrations, outbox claims, per-scope locks, leases) follow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memorch.domain._records import deletion, new_record, replaced, utc_now
from memorch.errors import StorageError
from memorch.storage.base import Change, MemoryRecord, Scope
from memorch.storage.expiry import stamp
from memorch.storage.filters import compile_filters
from memorch.storage.history import SQLiteLedger

from .pg_helpers import fresh_schema, need_postgres

DIM = 4


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteLedger]:
    if request.param == "sqlite":
        opened = SQLiteLedger(tmp_path / "memorch.db")
        yield opened
        opened.close()
        return
    from memorch.storage.postgres import PostgresLedger

    with fresh_schema() as url:
        opened = PostgresLedger(url)
        yield opened
        opened.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    need_postgres()
    with fresh_schema() as url:
        yield url


def add(ledger: SQLiteLedger, text: str, scope: Scope, metadata: dict[str, Any] | None = None, **kw: Any) -> Any:
    record = new_record(text, vector(len(text)), scope, metadata or {}, utc_now())
    tokens = ledger.apply([Change("ADD", record, **kw)], ["vectors"], ["graph"])
    return record, tokens


def test_a_change_its_history_and_its_owed_index_work(ledger: SQLiteLedger) -> None:
    scope = Scope("alice", "planner")
    record, tokens = add(ledger, "Rex is a dog", scope, {"kind": "pet"})
    got = ledger.get(record.id)
    assert got is not None and got.memory == "Rex is a dog" and got.metadata == {"kind": "pet"}
    assert got.embedding is not None and np.allclose(got.embedding, record.embedding)
    assert ledger.find_by_hash(Scope("alice"), record.hash) is not None
    assert ledger.find_by_hash(Scope("bob"), record.hash) is None
    # No relations stated: the graph owes nothing; the vectors owe the memory.
    assert set(tokens) == {"vectors"} and ledger.pending("vectors") == [record.id]
    assert ledger.outbox_tokens("vectors", [record.id]) == tokens["vectors"]

    updated = replaced(record, "Rex is a black dog", vector(9), None)
    newer = ledger.apply([Change("UPDATE", updated, old_memory=record.memory)], ["vectors"])
    ledger.clear_pending("vectors", tokens["vectors"])  # a worker that saw the old state
    assert ledger.pending("vectors") == [record.id], "the stale token must not clear the newer work"
    ledger.clear_pending("vectors", newer["vectors"])
    assert ledger.pending("vectors") == []

    ledger.apply([deletion(updated)], ["vectors"])
    assert ledger.get(record.id) is None
    events = ledger.history(record.id)
    assert [e.event for e in events] == ["ADD", "UPDATE", "DELETE"]
    assert events[1].old_memory == "Rex is a dog" and events[2].is_deleted is True
    assert events[0].is_deleted is False
    assert ledger.history(record.id, Scope("bob")) == []
    assert ledger.history_scope(record.id) == scope
    assert ledger.known_ids([record.id, "nope"]) == {record.id}
    assert ledger.counts() == {"memories": 0, "history_events": 3, "pending_index": 1, "pending_inference": 0}


def test_lists_follow_the_scope_rule_and_order(ledger: SQLiteLedger) -> None:
    a, _ = add(ledger, "first", Scope("alice", "planner", "r1"))
    b, _ = add(ledger, "second", Scope("alice", "coder"))
    c, _ = add(ledger, "third", Scope("bob"))
    assert {r.id for r in ledger.list(Scope("alice"), None, 10)} == {a.id, b.id}
    assert [r.id for r in ledger.list(Scope(agent_id="planner"), None, 10)] == [a.id]
    assert set(ledger.ids(Scope())) == {a.id, b.id, c.id}
    assert [r.id for r in ledger.get_many([c.id, "missing", a.id])] == [c.id, a.id]
    assert ledger.scopes() == [{"user_id": "alice", "memories": 2}, {"user_id": "bob", "memories": 1}]
    assert ledger.deleted_by_user() == {}
    ledger.apply([deletion(c)], ["vectors"])
    assert ledger.scopes() == [{"user_id": "alice", "memories": 2}]
    assert ledger.deleted_by_user() == {"bob": 1}  # the UI still lists bob, for its Deleted view
    assert ledger.mark_all_pending("vectors") == 3
    assert sorted(ledger.pending("vectors")) == sorted([a.id, b.id, c.id])
    assert ledger.mark_all_pending("graph") == 2
    assert len(ledger.pending("graph")) == 2
    ledger.wipe()
    assert ledger.counts()["memories"] == 0 and ledger.pending("vectors") == []


METADATA = {
    "m0": {"n": 1, "tag": "red", "flag": True, "note": "Hello World"},
    "m1": {"n": 2.5, "tag": "blue", "flag": False},
    "m2": {"n": 10, "tag": "red", "extra": None},
    "m3": {"size": "ten", "dotted.key": "x"},
    "m4": {},
}
FILTERS = [
    ({"tag": "red"}, {"m0", "m2"}),
    ({"n": {"gte": 2}}, {"m1", "m2"}),
    ({"n": {"gt": 1, "lt": 10}}, {"m1"}),
    ({"size": "ten"}, {"m3"}),
    ({"n": {"in": [1, 10, "ten"]}}, {"m0", "m2"}),
    ({"size": {"in": [10, "ten"]}}, {"m3"}),
    ({"size": 10}, set()),  # a number never equals a text
    ({"tag": {"nin": ["red"]}}, {"m1"}),
    ({"flag": True}, {"m0"}),
    ({"flag": False}, {"m1"}),
    ({"tag": "*"}, {"m0", "m1", "m2"}),
    ({"extra": "*"}, set()),  # a JSON null is no value, as in SQLite
    ({"note": {"contains": "World"}}, {"m0"}),
    ({"note": {"icontains": "hello"}}, {"m0"}),
    ({"dotted.key": "x"}, {"m3"}),
    ({"OR": [{"tag": "blue"}, {"n": 10}]}, {"m1", "m2"}),
    ({"NOT": {"tag": "red"}}, {"m1"}),
    ({"tag": {"ne": "red"}}, {"m1"}),
    ({"created_at": {"gte": "2000-01-01"}, "tag": "red"}, {"m0", "m2"}),
    ({"tag": "'; DROP TABLE memories; --"}, set()),
    ({"note": {"contains": "100%"}}, set()),
]


def test_metadata_filters_select_the_same_memories(ledger: SQLiteLedger) -> None:
    names = {}
    for name, metadata in METADATA.items():
        record, _ = add(ledger, f"memory {name}", Scope("u"), metadata)
        names[record.id] = name
    for filters, expected in FILTERS:
        found = {names[r.id] for r in ledger.list(Scope("u"), compile_filters(filters), 100)}
        assert found == expected, filters
        assert {names[i] for i in ledger.ids(Scope("u"), compile_filters(filters))} == expected, filters


def test_pending_inference_is_found_by_its_mark(ledger: SQLiteLedger) -> None:
    marked, _ = add(ledger, "said while no model answered", Scope("u"), {"_memorch": {"pending_inference": True}})
    add(ledger, "inferred", Scope("u"), {"_memorch": {"pending_inference": False}})
    assert [r.id for r in ledger.pending_inference(10)] == [marked.id]
    assert ledger.counts()["pending_inference"] == 1


def test_relations_and_entities(ledger: SQLiteLedger) -> None:
    rel = {"source": "Rex", "source_type": "dog", "relationship": "belongs_to", "destination": "Alice"}
    record, tokens = add(ledger, "Rex belongs to Alice", Scope("alice"), relations=(rel,))
    assert set(tokens) == {"vectors", "graph"}
    stored = ledger.relations_for([record.id])[record.id]
    assert stored == [{**rel, "destination_type": None}]
    touching = ledger.relations_touching(Scope("alice"), ["rex"], [], 10)
    assert [t["memory_id"] for t in touching] == [record.id]
    assert ledger.relations_touching(Scope("bob"), ["rex"], [], 10) == []
    # Entity identity is the exact scope: agent and run NULL match only NULL.
    assert ledger.entity_names(Scope("alice")) == {"Rex": "dog", "Alice": None}
    assert ledger.entity_names(Scope("alice", "planner")) == {}
    ledger.apply([deletion(record)], ["vectors"], ["graph"])
    assert ledger.relations_for([record.id]) == {record.id: []}


def test_the_ledger_answers_neighbourhoods_as_the_graph_does(ledger: SQLiteLedger, tmp_path: Path) -> None:
    """What replicas read instead of a graph copy (``LedgerGraph``): the same relations as a
    Kuzu graph built from the same memories, for every entity, hop count and scope tried."""
    from memorch.storage.graph import GraphWork, KuzuGraph

    scopes = [Scope("alice"), Scope("alice", "planner"), Scope("alice", "planner", "r1"), Scope("bob")]
    kinds = ("knows", "lives_in", "likes")
    work = []
    for i in range(36):  # a few chains and cycles among 9 entities, in four exact scopes
        scope = scopes[i % len(scopes)]
        relation = {
            "source": f"Entity {i % 9}",
            "relationship": kinds[i % 3],
            "destination": f"Entity {(i * 4 + 1) % 9}",
        }
        record, _ = add(ledger, f"fact {i}", scope, relations=(relation,))
        work.append(GraphWork(record.id, scope, [relation], record.updated_at))
    gone = work.pop(5)  # a deleted memory's relation is in neither
    ledger.apply([deletion(ledger.get(gone.memory_id))], ["vectors"], ["graph"])  # type: ignore[arg-type]
    graph = KuzuGraph(tmp_path / "graph.kuzu", tmp_path / "graph.lock")
    graph.apply(work)

    def rows(found: list[dict[str, Any]]) -> list[tuple[str, ...]]:
        return sorted((r["source"], r["relationship"], r["destination"], r["memory_id"]) for r in found)

    compared = 0
    for scope in [*scopes, Scope(agent_id="planner")]:
        for name in ["Entity 0", "entity  4", "Entity 8", "Nobody"]:
            for hops in (1, 2, 3):
                expected = rows(graph.neighbourhood(scope, name, hops))
                assert rows(ledger.neighbourhood(scope, name, hops, 100)) == expected, (scope, name, hops)
                compared += bool(expected)
    assert compared > 30  # most questions have answers: the comparison is not of empty lists
    assert ledger.relation_counts() == graph.counts()
    assert len(rows(ledger.neighbourhood(Scope("alice"), "Entity 0", 3, 5))) == 5  # the limit holds


def test_meta_and_embedding_cache(ledger: SQLiteLedger) -> None:
    assert ledger.get_meta("embedding_dim") is None
    ledger.set_meta("embedding_dim", "4")
    ledger.set_meta("embedding_dim", "8")
    assert ledger.get_meta("embedding_dim") == "8"
    ledger.cache_vectors("m", {"h1": vector(1)})
    record = new_record("x", vector(2), Scope("u"), {}, utc_now())
    ledger.apply([Change("ADD", record)], ["vectors"], cached=("m", {"h2": vector(2), "h1": vector(3)}))
    cached = ledger.cached_vectors("m", ["h1", "h2", "h3"])
    assert set(cached) == {"h1", "h2"} and np.allclose(cached["h1"], vector(3))
    ledger.set_embeddings({record.id: vector(5)})
    got = ledger.get(record.id)
    assert got is not None and np.allclose(got.embedding, vector(5))  # type: ignore[arg-type]


def test_export_pages_and_point_in_time(ledger: SQLiteLedger) -> None:
    kept, _ = add(ledger, "kept", Scope("u"))
    gone, _ = add(ledger, "gone", Scope("u"))
    middle = utc_now()
    time.sleep(0.002)
    ledger.apply([deletion(gone)], [])
    rows = [row for page in ledger.export_pages(Scope("u")) for row in page]
    by_id = {row["id"]: row for row in rows}
    assert by_id[gone.id]["deleted"] is True and len(by_id[gone.id]["history"]) == 2
    assert by_id[kept.id]["memory"] == "kept" and by_id[kept.id]["relations"] == []
    assert [row["id"] for row in rows] == sorted(by_id)
    then = {event.memory_id for event, _ in ledger.versions_at(Scope("u"), middle, 10)}
    now = {event.memory_id for event, _ in ledger.versions_at(Scope("u"), utc_now(), 10)}
    assert then == {kept.id, gone.id} and now == {kept.id}


# -- PostgreSQL only ----------------------------------------------------------------------------


def test_migrations_are_numbered_and_run_once(pg_url: str) -> None:
    from memorch.storage.postgres import PostgresLedger
    from memorch.storage.postgres_schema import SCHEMA_VERSION

    ledgers: list[Any] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            ledgers.append(PostgresLedger(pg_url))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]  # replicas starting together
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ledgers[0]._read() as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM memorch_schema ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert ledgers[0].schema_version() == SCHEMA_VERSION
    for opened in ledgers:
        opened.close()


def _schema_of(url: str) -> dict[str, Any]:
    """What a schema holds, in terms that do not depend on how it was made: each table's columns
    in order with their types, collations, nullability and defaults; indexes; constraints;
    functions."""
    import psycopg

    queries = {
        "columns": """SELECT table_name, column_name, data_type, collation_name, is_nullable, column_default,
                      is_identity FROM information_schema.columns WHERE table_schema = current_schema()
                      ORDER BY table_name, ordinal_position""",
        "indexes": """SELECT indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes
                      WHERE schemaname = current_schema() ORDER BY indexname""",
        "constraints": """SELECT table_name, constraint_name, constraint_type FROM information_schema.table_constraints
                          WHERE table_schema = current_schema() AND constraint_type <> 'CHECK' ORDER BY 1, 2""",
        "functions": """SELECT proname, pg_get_function_arguments(oid), prosrc FROM pg_proc
                        WHERE pronamespace = current_schema()::regnamespace ORDER BY proname""",
    }
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def test_a_database_made_at_version_1_upgrades_to_the_schema_a_new_one_gets() -> None:
    """A new database gets today's schema at once; one made by memorch's first PostgreSQL version
    (tests/pg_schema_v1.sql, as it was) gets the migrations, keeps its rows, and ends the same."""
    import psycopg

    from memorch.storage.postgres import PostgresLedger
    from memorch.storage.postgres_schema import SCHEMA_VERSION, VERSION_TABLE

    v1 = (Path(__file__).parent / "pg_schema_v1.sql").read_text()
    with fresh_schema() as old_url, fresh_schema() as new_url:
        with psycopg.connect(old_url, autocommit=True) as conn:
            conn.execute(v1)  # type: ignore[arg-type] - DDL without parameters
            conn.execute(VERSION_TABLE)  # type: ignore[arg-type]
            conn.execute("INSERT INTO memorch_schema (version) VALUES (1)")
            conn.execute(
                "INSERT INTO memories (id, memory, hash, user_id, created_at, updated_at) "
                "VALUES ('m1', 'kept through the upgrade', 'h', 'u', '2025-01-01', '2025-01-01')"
            )
        upgraded, made_new = PostgresLedger(old_url), PostgresLedger(new_url)
        try:
            assert upgraded.schema_version() == made_new.schema_version() == SCHEMA_VERSION
            kept = upgraded.get("m1")
            assert kept is not None and kept.memory == "kept through the upgrade" and kept.project is None
        finally:
            upgraded.close()
            made_new.close()
        old, new = _schema_of(old_url), _schema_of(new_url)
        assert len(new["columns"]) > 40 and len(new["functions"]) == 3
        assert old == new


def test_outbox_claims_are_disjoint_and_keep_newer_work(pg_url: str) -> None:
    from memorch.storage.postgres import PostgresLedger

    a, b = PostgresLedger(pg_url), PostgresLedger(pg_url)
    records = [add(a, f"memory {i}", Scope("u"))[0] for i in range(6)]
    with a.claim_outbox("vectors", 4) as first:
        with b.claim_outbox("vectors", 10) as second:
            assert len(first) == 4 and len(second) == 2
            assert not set(first) & set(second)
        # b's block ended: its rows are cleared; a's are still held.
        assert sorted(a.pending("vectors")) == sorted(first)
    assert a.pending("vectors") == []

    # A write to a claimed memory waits for the claim, then leaves its new token owed.
    target = records[0]
    add_done = threading.Event()
    a.apply([Change("UPDATE", replaced(target, "changed", vector(3), None))], ["vectors"])
    with a.claim_outbox("vectors", 10) as claimed:
        assert list(claimed) == [target.id]

        def write() -> None:
            b.apply([Change("UPDATE", replaced(target, "changed again", vector(4), None))], ["vectors"])
            add_done.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not add_done.wait(0.3), "the write must wait for the claim"
    writer.join(5)
    assert add_done.is_set() and a.pending("vectors") == [target.id]
    a.close()
    b.close()


def test_scope_lock_serializes_one_scope_across_replicas(pg_url: str) -> None:
    from memorch.storage.postgres import PostgresLedger

    a, b = PostgresLedger(pg_url), PostgresLedger(pg_url)
    order: list[str] = []
    entered = threading.Event()

    def hold() -> None:
        with a.scope_lock(Scope("alice")):
            entered.set()
            time.sleep(2.0)  # far longer than another scope may take under a loaded machine
            order.append("a done")

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    started = time.perf_counter()
    with b.scope_lock(Scope("bob")):  # another scope: not held up
        assert time.perf_counter() - started < 1.5
    with b.scope_lock(Scope("alice")):
        order.append("b in")
    holder.join()
    assert order == ["a done", "b in"]
    a.close()
    b.close()


def test_a_lock_held_too_long_is_refused_as_lock_timeout(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica stuck holding a scope's or a memory's lock makes another fail with LOCK_TIMEOUT
    after ``LOCK_WAIT_S``, not wait for ever; the lock is taken once it is free."""
    import memorch.storage.postgres as postgres

    monkeypatch.setattr(postgres, "LOCK_WAIT_S", 1)
    a, b = postgres.PostgresLedger(pg_url), postgres.PostgresLedger(pg_url)
    locks = (lambda ledger: ledger.scope_lock(Scope("alice")), lambda ledger: ledger.memory_locks(["m1"]))
    for lock in locks:
        with lock(a):
            started = time.perf_counter()
            with pytest.raises(StorageError) as refused, lock(b):
                pass
            assert refused.value.error_code == "LOCK_TIMEOUT" and "restart" in refused.value.suggestion
            assert 0.9 < time.perf_counter() - started < 10
        with lock(b):  # free now
            pass
    a.close()
    b.close()


def test_scope_lock_makes_a_check_and_its_write_atomic(pg_url: str) -> None:
    """Ten writers on two connections add the same text in one scope, each checking first:
    exactly one memory is stored."""
    from memorch.storage.postgres import PostgresLedger

    ledgers = [PostgresLedger(pg_url), PostgresLedger(pg_url)]
    text = new_record("the same", vector(1), Scope("u"), {}, utc_now())

    def writer(i: int) -> None:
        ledger = ledgers[i % 2]
        with ledger.scope_lock(Scope("u")):
            if ledger.find_by_hash(Scope("u"), text.hash) is None:
                time.sleep(0.01)  # widen the window a missing lock would leave open
                ledger.apply([Change("ADD", new_record("the same", vector(1), Scope("u"), {}, utc_now()))], [])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledgers[0].ids(Scope("u"))) == 1
    for opened in ledgers:
        opened.close()


def test_a_lease_has_one_holder_until_it_expires(pg_url: str) -> None:
    from memorch.storage.postgres import PostgresLedger

    a, b = PostgresLedger(pg_url), PostgresLedger(pg_url)
    assert a.acquire_lease("maintenance", "replica-a", 0.5)
    assert not b.acquire_lease("maintenance", "replica-b", 0.5)
    assert a.acquire_lease("maintenance", "replica-a", 0.5)  # renewal
    time.sleep(0.7)
    assert b.acquire_lease("maintenance", "replica-b", 10)
    assert not a.acquire_lease("maintenance", "replica-a", 10)
    b.release_lease("maintenance", "replica-b")
    assert a.acquire_lease("maintenance", "replica-a", 10)
    a.close()
    b.close()


def test_an_unreachable_server_is_a_typed_error_without_the_password() -> None:
    from memorch.storage.postgres import PostgresLedger

    with pytest.raises(StorageError) as caught:
        PostgresLedger("postgresql://memorch:s3cret-pw@127.0.0.1:9/memorch?connect_timeout=2")
    assert caught.value.error_code == "LEDGER_ERROR"
    assert "s3cret-pw" not in str(caught.value) and "MEMORCH_LEDGER_URL" in (caught.value.suggestion or "")


def test_records_round_trip_unchanged(ledger: SQLiteLedger) -> None:
    record = MemoryRecord(
        id="00000000-0000-4000-8000-000000000001",
        memory="ünïcödé 🐕 and 'quotes' and %s and ?",
        hash="h",
        user_id="u",
        agent_id=None,
        run_id="r",
        metadata={"nested": {"a": [1, 2, {"b": None}]}, "pct": "50%"},
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-02T00:00:00+00:00",
        embedding=vector(7),
    )
    ledger.apply([Change("ADD", record)], [])
    got = ledger.get(record.id)
    assert got is not None
    assert (got.memory, got.metadata, got.agent_id, got.created_at) == (
        record.memory,
        record.metadata,
        None,
        record.created_at,
    )


def test_backup_refuses_a_ledger_on_postgresql(tmp_path: Path) -> None:
    """``memorch backup`` copies the SQLite file; with the ledger elsewhere it says so instead
    of copying an empty local file."""
    from typer.testing import CliRunner

    from memorch.cli._main import app

    env = {"MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_LEDGER_URL": "postgresql://x@127.0.0.1:9/x"}
    for args in (["backup", str(tmp_path / "b")], ["restore-backup", str(tmp_path / "b")]):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 1
        assert "BACKUP_UNSUPPORTED" in result.output and "pg_dump" in result.output
    assert not (tmp_path / "b").exists()


def test_a_list_reads_the_newest_rows_in_index_order(tmp_path: Path) -> None:
    """``list_memories`` walks ``memories_recent`` and stops after the limit, instead of sorting
    every memory of the user (29 ms for 20 of 5,500 before the index, 0.03 ms with it)."""
    ledger = SQLiteLedger(tmp_path / "memorch.db")
    for i in range(30):
        add(ledger, f"memory number {i}", Scope("u"))
    statements: list[str] = []
    ledger._conn.set_trace_callback(statements.append)
    newest = ledger.list(Scope("u"), None, 5)
    ledger._conn.set_trace_callback(None)
    assert [r.memory for r in newest] == [f"memory number {i}" for i in range(29, 24, -1)]
    listing = next(s for s in statements if s.lstrip().startswith("SELECT") and "LIMIT" in s)
    plan = " | ".join(row[3] for row in ledger._conn.execute("EXPLAIN QUERY PLAN " + listing))
    assert "memories_recent" in plan and "TEMP B-TREE" not in plan, plan
    ledger.close()


def test_neighbours_are_the_memories_created_around_one_in_its_scope(ledger: SQLiteLedger) -> None:
    """In creation order (ties by id), live, in the scope and within the window; an expired
    memory is nobody's neighbour, and another scope's memories never are."""
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    me, other = Scope(user_id="me"), Scope(user_id="other")

    def at(text: str, scope: Scope, minutes: float, **fields: Any) -> str:
        record = new_record(text, vector(len(text)), scope, {}, stamp(start + timedelta(minutes=minutes)))
        for name, value in fields.items():
            setattr(record, name, value)
        ledger.apply([Change("ADD", record)], ["vectors"], ["graph"])
        return record.id

    early = at("told an hour before", me, -60)
    a = at("two before", me, 0)
    b = at("one before", me, 1)
    at("another user's, in between", other, 1.5)
    gone = at("expired", me, 1.7, expires_at=stamp(datetime.now(UTC) - timedelta(minutes=1)))
    hit = at("the hit", me, 2)
    c = at("one after", me, 3)
    d = at("two after", me, 4)
    at("three after", me, 5)
    found = ledger.neighbours(me, [hit, early], per_side=2, window_s=30 * 60)
    assert found[hit] == [b, a, c, d]
    assert gone not in found[hit]
    assert found[early] == []  # the next memory is an hour later: outside the window
