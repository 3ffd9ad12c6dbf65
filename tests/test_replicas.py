"""Several replicas: the vector dataset on S3-compatible object storage (moto in server mode on
127.0.0.1) and the ledger on PostgreSQL, both started by ``.ci/run``.

LanceDB reads only the standard ``AWS_*`` variables here; nothing memorch-specific configures the
object store.

A test's three replicas start side by side, after one process has compiled what they import into
the tests' shared cache of compiled modules (``tests/conftest.py``), where there is one: three
compiling the same modules at once took three times the work (a first add took 40 s).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

import memorch.engine._replica_claims as outbox_claims
from memorch import AsyncMemory, MemoryConfig
from memorch.domain._records import new_record, utc_now
from memorch.storage.base import Change, Scope
from memorch.storage.vectors import LanceVectorIndex

from .crash_workloads import respond
from .fake_llm import FakeLLM
from .mcp_helpers import start_http_server
from .pg_helpers import S3_ENV, bucket_keys, fresh_bucket, fresh_schema, need_s3

DIM = 4


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    need_s3()
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)


# What a replica process imports: compiled by one process before three start side by side
# (three compiling the same modules at once took three times the work).
REPLICA_IMPORTS = (
    "import lancedb, onnxruntime, psycopg, memorch.serve._app, memorch.api._async_memory\n"
    "from memorch.models._llm import import_litellm; import_litellm()"
)


@pytest.fixture(scope="module")
def compiled() -> None:
    """What the replica processes import, compiled once into the shared cache (if there is one)."""
    if os.environ.get("PYTHONPYCACHEPREFIX"):
        subprocess.run([sys.executable, "-c", REPLICA_IMPORTS], check=True)


@pytest.fixture
def shared(s3_env: None) -> Iterator[tuple[str, str]]:
    """A fresh ledger schema and a fresh bucket: what every replica of one deployment shares."""
    with fresh_schema() as url:
        yield url, fresh_bucket()


def records(n: int, tag: str) -> list:
    out = []
    for i in range(n):
        v = np.random.default_rng(i).standard_normal(DIM).astype(np.float32)
        out.append(new_record(f"{tag} memory {i}", v / np.linalg.norm(v), Scope("u"), {}, utc_now()))
    return out


def test_concurrent_writers_on_one_bucket_lose_nothing(s3_env: None) -> None:
    """Two writers (each its own LanceDB connection, as two replicas have) upsert at once: lance
    commits with conditional PUTs, a loser rebases and retries, no row is lost."""
    uri = fresh_bucket()
    writers = [LanceVectorIndex(uri, DIM), LanceVectorIndex(uri, DIM)]
    errors: list[BaseException] = []

    def write(index: LanceVectorIndex, tag: str) -> None:
        for record in records(12, tag):
            try:
                index.upsert([record])
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(w, tag)) for w, tag in zip(writers, "ab", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    time.sleep(0.3)  # past the read-consistency interval
    assert writers[0].count() == writers[1].count() == 24
    assert any(key.endswith(".manifest") for key in bucket_keys(uri))
    for w in writers:
        w.close()


async def test_replicas_share_the_ledger_and_the_bucket(shared: tuple[str, str], tmp_path: Path) -> None:
    url, uri = shared
    configs = [
        MemoryConfig(data_dir=tmp_path / f"replica{i}", graph="off", ledger_url=url, vector_uri=uri) for i in range(2)
    ]
    one, two = AsyncMemory(configs[0]), AsyncMemory(configs[1])
    try:
        added = (await one.add("Marta waters the tomatoes on Sundays", user_id="u", infer=False))["results"][0]
        # The other replica: same ledger and bucket, its own (empty) data directory.
        found = (await two.search("who waters the tomatoes", user_id="u"))["results"]
        assert [r["id"] for r in found] == [added["id"]]
        await two.update(added["id"], "Marta waters the tomatoes on Saturdays")
        time.sleep(0.3)
        found = (await one.search("tomatoes Saturdays", user_id="u"))["results"]
        assert found[0]["memory"] == "Marta waters the tomatoes on Saturdays"
        assert [e["event"] for e in await one.history(added["id"])] == ["ADD", "UPDATE"]
        # The same text added on both replicas: the second is a repeat, not a duplicate.
        again = (await two.add("Marta waters the tomatoes on Saturdays", user_id="u", infer=False))["results"]
        assert again[0]["event"] == "NONE"
        await one.delete(added["id"])
        time.sleep(0.3)
        assert (await two.search("tomatoes", user_id="u"))["results"] == []
    finally:
        await one.close()
        await two.close()
    # Nothing of the index went to the replicas' disks; the bucket holds it.
    assert not (tmp_path / "replica0" / "lance").exists() and not (tmp_path / "replica1" / "lance").exists()
    assert any("/memories.lance/" in key for key in bucket_keys(uri))


def test_maintenance_runs_on_the_lease_holder_only(shared: tuple[str, str]) -> None:
    from memorch.storage.postgres import PostgresLedger
    from memorch.storage.vectors_shared import SharedLanceVectorIndex

    url, uri = shared
    ledger = PostgresLedger(url)

    def index(holder: str) -> SharedLanceVectorIndex:
        return SharedLanceVectorIndex(
            uri,
            DIM,
            take_lease=lambda: ledger.acquire_lease("vector-maintenance", holder, 60),
            release_lease=lambda: ledger.release_lease("vector-maintenance", holder),
        )

    a, b = index("a"), index("b")
    a.upsert(records(5, "x"))
    assert ledger.acquire_lease("vector-maintenance", "a", 60)  # a is mid-pass
    before = b._table.version
    b.maintain_now()
    assert b.passes_skipped == 1 and b._table.version == before
    ledger.release_lease("vector-maintenance", "a")
    b.maintain_now()
    assert b.passes_skipped == 1 and b._table.version > before
    # The pass gave the lease back: a may take it at once.
    assert ledger.acquire_lease("vector-maintenance", f"a-{uuid.uuid4().hex[:4]}", 1)
    a.close()
    b.close()
    ledger.close()


# -- three replicas as processes ------------------------------------------------------------------


class Replica:
    """``memorch serve --transport streamable-http`` on 127.0.0.1 with the shared settings."""

    @classmethod
    def several(cls, data_dirs: list[Path], env: dict[str, str]) -> list[Replica]:
        """Replicas started side by side, each once it listens; none left running if one fails."""
        with ThreadPoolExecutor(len(data_dirs)) as pool:
            starts = [pool.submit(cls, data_dir, env) for data_dir in data_dirs]
        started = [start.result() for start in starts if start.exception() is None]
        failure = next((start.exception() for start in starts if start.exception() is not None), None)
        if failure is not None:
            for replica in started:
                replica.stop()
            raise failure
        return started

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir, self.env = data_dir, env
        self.proc, port = start_http_server("streamable-http", data_dir, **env)
        self.url = f"http://127.0.0.1:{port}/mcp"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def call(target: Any, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The tool's structured answer, or None when the call was not acknowledged (refused,
    connection lost: the replica may be dead). ``target``: a URL (one connection for this call,
    as a stateless load balancer gives) or an open client."""
    try:
        if isinstance(target, str):
            async with Client(target) as client:
                result = await client.call_tool(tool, args)
        else:
            result = await target.call_tool(tool, args)
    except (OSError, RuntimeError, ExceptionGroup, httpx.HTTPError, MCPError):
        return None
    return None if result.is_error else result.structured_content


class Ledgerless:
    """What the clients were told: the acknowledged state of each memory, and its events."""

    def __init__(self) -> None:
        self.text: dict[str, str | None] = {}  # id -> acknowledged text (None: deleted)
        self.events: dict[str, list[str]] = {}
        self.scope: dict[str, str] = {}
        # id -> what unacknowledged changes since the last acknowledged one would have left
        # (a replica killed after its commit, before its answer): the memory may be in either.
        self.maybe: dict[str, list[str | None]] = {}

    def acknowledged(self, memory_id: str, text: str | None, kind: str) -> None:
        self.text[memory_id] = text
        self.events[memory_id].append(kind)
        self.maybe[memory_id] = []

    def possible(self, memory_id: str) -> list[str | None]:
        return [self.text[memory_id], *self.maybe[memory_id]]


async def client_run(name: str, urls: list[str], ops: int, seen: Ledgerless, rng: random.Random) -> None:
    live: list[str] = []
    for i in range(ops):
        url = urls[i % len(urls)]  # spread over the replicas, as a load balancer would
        roll = rng.random()
        if roll < 0.5 or not live:
            text = f"{name} note {i}: {' '.join(rng.choices(WORDS, k=6))}"
            out = await call(url, "add_memory", {"text": text, "user_id": name, "infer": False})
            if out and out["results"] and out["results"][0]["event"] == "ADD":
                memory_id = out["results"][0]["id"]
                seen.events[memory_id], seen.scope[memory_id] = [], name
                seen.acknowledged(memory_id, text, "ADD")
                live.append(memory_id)
        elif roll < 0.8:
            memory_id = rng.choice(live)
            text = f"{name} edit {i}: {' '.join(rng.choices(WORDS, k=6))}"
            out = await call(url, "update_memory", {"memory_id": memory_id, "text": text})
            if out and out["event"] == "UPDATE":
                seen.acknowledged(memory_id, text, "UPDATE")
            elif out is None:
                seen.maybe[memory_id].append(text)
        else:
            memory_id = live.pop(rng.randrange(len(live)))
            out = await call(url, "delete_memory", {"memory_id": memory_id})
            if out and out["event"] == "DELETE":
                seen.acknowledged(memory_id, None, "DELETE")
            elif out is None:
                seen.maybe[memory_id].append(None)
                live.append(memory_id)  # not acknowledged: it may still be there


WORDS = ["garden", "tomato", "basil", "Lisbon", "train", "dentist", "violin", "Marta", "Sunday", "coffee"]


async def test_three_replicas_one_killed_mid_stream(shared: tuple[str, str], tmp_path: Path, compiled: None) -> None:
    url, uri = shared
    env = {"MEMORCH_LEDGER_URL": url, "MEMORCH_VECTOR_URI": uri, **S3_ENV}
    replicas = Replica.several([tmp_path / f"replica{i}" for i in range(3)], env)
    try:
        urls = [r.url for r in replicas]
        seen = Ledgerless()
        rng = random.Random(15)
        # Warm every replica (model and LanceDB load) so the kill lands mid-stream, not mid-start.
        await asyncio.gather(*(call(u, "list_memories", {"user_id": "warm"}) for u in urls))

        async def kill_later() -> None:
            await asyncio.sleep(2.0)
            replicas[2].kill()

        same = "the team meets on Thursdays at ten"
        await asyncio.gather(
            *(client_run(f"client{c}", urls, OPS_PER_CLIENT, seen, random.Random(rng.random())) for c in range(3)),
            # Concurrent identical adds in one scope, through every replica at once.
            *(call(u, "add_memory", {"text": same, "user_id": "dup", "infer": False}) for u in urls * 2),
            kill_later(),
        )
        assert replicas[2].proc.poll() is not None, "the replica was killed mid-stream"
        replicas[2] = Replica(replicas[2].data_dir, env)  # restarted: same settings, its own disk
        urls = [r.url for r in replicas]
        await asyncio.sleep(0.5)  # past LanceDB's read-consistency interval

        assert len(seen.text) >= 10, "the workload acknowledged too little to prove anything"
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Client(u)) for u in urls]
            await check_replicas(clients, seen, same)
    finally:
        for replica in replicas:
            replica.stop()


OPS_PER_CLIENT = 10


async def check_replicas(clients: list[Any], seen: Ledgerless, same: str) -> None:
    dup = await call(clients[0], "list_memories", {"user_id": "dup"})
    assert dup is not None and [m["memory"] for m in dup["results"]] == [same]
    for memory_id in seen.text:
        history = await call(clients[0], "memory_history", {"memory_id": memory_id})
        assert history is not None
        events = [e["event"] for e in history["events"]]
        # Every acknowledged event is there, in order; an unacknowledged one may be too.
        it = iter(events)
        assert all(e in it for e in seen.events[memory_id]), (events, seen.events[memory_id])
        for client in clients:
            got = await call(client, "get_memory", {"memory_id": memory_id})
            text = None if got is None else got["memory"]
            assert text in seen.possible(memory_id), (text, seen.possible(memory_id))
            if text is None:
                continue
            # Every replica finds it (its row is in the shared index, exactly once).
            query = {"query": text, "user_id": seen.scope[memory_id], "limit": 3}
            found = await call(client, "search_memories", query)
            assert found is not None, "the search failed"
            assert [r["id"] for r in found["results"]].count(memory_id) == 1, found


# -- the graph, read from the ledger -------------------------------------------------------------


def add_with_relations(store: Any, text: str, relations: list[dict[str, str]]) -> str:
    """A memory stating ``relations``, written through the store as inference would."""
    from memorch.storage.base import Change

    record = new_record(text, store.parts.embedder.embed([text])[0], Scope("u"), {}, utc_now())
    with store.writing():
        store.commit([Change("ADD", record, relations=tuple(relations))])
    return record.id


def ledger_edges(memory: AsyncMemory) -> list[tuple[str, str]]:
    ledger = memory.engine.components.ledger
    ids = ledger.known_ids(ledger.ids(Scope()))
    return sorted((rel["relationship"], i) for i, rels in ledger.relations_for(sorted(ids)).items() for rel in rels)


async def graph_edges(memory: AsyncMemory, name: str, hops: int = 3) -> list[tuple[str, str]]:
    """What the replica's ``graph`` command answers around ``name``, as (relationship, memory id)."""
    found = (await memory.graph(name, user_id="u", hops=hops))["relations"]
    return sorted((r["relationship"], r["memory_id"]) for r in found)


async def test_replicas_read_the_graph_from_the_ledger(shared: tuple[str, str], tmp_path: Path) -> None:
    """No replica keeps a graph copy: each answers graph reads from the ledger, so a change made
    through one replica is in every replica's next answer, with nothing to replay or rebuild."""
    url, uri = shared
    a, b = (
        AsyncMemory(MemoryConfig(data_dir=tmp_path / f"g{i}", graph="on", ledger_url=url, vector_uri=uri))
        for i in range(2)
    )
    try:
        rex = [{"source": "Rex", "relationship": "belongs_to", "destination": "Marta"}]
        lisbon = [{"source": "Marta", "relationship": "lives_in", "destination": "Lisbon"}]
        first = await a.engine.write(add_with_relations, a.engine.store, "Rex is Marta's dog", rex)
        await a.engine.write(add_with_relations, a.engine.store, "Marta lives in Lisbon", lisbon)
        await b.engine.write(
            add_with_relations,
            b.engine.store,
            "Marta plays the violin",
            [{"source": "Marta", "relationship": "plays", "destination": "violin"}],
        )
        expected = ledger_edges(a)
        assert len(expected) == 3
        assert await graph_edges(a, "Marta") == await graph_edges(b, "Marta") == expected
        assert [r for r, _ in await graph_edges(b, "Rex", hops=1)] == ["belongs_to"]
        assert (await a.stats())["entities"] == 4 and (await b.stats())["relations"] == 3

        await b.delete(first)  # through the other replica: a's next answer no longer has it
        assert ("belongs_to", first) not in await graph_edges(a, "Marta")
        assert await graph_edges(a, "Marta") == ledger_edges(a)
        await b.reindex()  # nothing derived to rebuild for the graph; the vectors are refilled
        assert await graph_edges(b, "Marta") == ledger_edges(a)
        assert (await b.stats())["pending_index"] == 0

        await a.reset(confirm=True)  # the other replica's graph and search follow at once
        assert await graph_edges(b, "Marta") == [] and (await b.search("Marta", user_id="u"))["results"] == []
        kept = await b.engine.write(add_with_relations, b.engine.store, "Marta lives in Porto", lisbon)
        assert await graph_edges(a, "Porto") == [] and await graph_edges(a, "Lisbon") == [("lives_in", kept)]
        time.sleep(0.3)  # past the read-consistency interval
        assert [r["id"] for r in (await a.search("Marta lives in Porto", user_id="u"))["results"]] == [kept]
        graph_check = next(c for c in await a.doctor() if c["name"] == "graph")
        assert graph_check["ok"], graph_check
        assert "read from the ledger: 2 entities, 1 relation" in graph_check["detail"], graph_check
    finally:
        await a.close()
        await b.close()
    assert not any((tmp_path / f"g{i}" / "graph.kuzu").exists() for i in range(2)), "a replica kept a graph copy"


async def test_work_a_killed_replica_owed_is_finished_once(
    shared: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits whose index writes never happened (the replica died in between) are indexed by
    the replicas that start next, split between them by the claims."""
    from memorch.storage.postgres import PostgresLedger

    url, uri = shared
    first = AsyncMemory(MemoryConfig(data_dir=tmp_path / "first", graph="off", ledger_url=url, vector_uri=uri))
    await first.add("the first memory", user_id="u", infer=False)  # creates the dataset
    vector = first.engine.components.embedder.embed(["the boat is moored at the river"])[0]
    await first.close()
    ledger = PostgresLedger(url)
    orphans = [
        new_record(f"the boat is moored at the river, pier {i}", vector, Scope("u"), {}, utc_now()) for i in range(8)
    ]
    ledger.apply([Change("ADD", r) for r in orphans], ["vectors"])  # committed, never indexed
    assert len(ledger.pending("vectors")) == 8
    replicas = [
        AsyncMemory(MemoryConfig(data_dir=tmp_path / f"next{i}", graph="off", ledger_url=url, vector_uri=uri))
        for i in range(2)
    ]
    try:
        await asyncio.gather(*(r.search("boat", user_id="u") for r in replicas))  # each finishes owed work first
        assert ledger.pending("vectors") == []
        time.sleep(0.3)
        for replica in replicas:
            found = (await replica.search("boat moored river pier", user_id="u", limit=20))["results"]
            assert {r.id for r in orphans} <= {f["id"] for f in found}
        # While they run, another replica dies owing work: the next sweep (due at once here) finds it.
        late = new_record("the boat left the river at dawn", vector, Scope("u"), {}, utc_now())
        ledger.apply([Change("ADD", late)], ["vectors"])
        monkeypatch.setattr(outbox_claims, "SWEEP_EVERY_S", 0.0)
        await replicas[1].search("boat", user_id="u")
        assert ledger.pending("vectors") == []
        time.sleep(0.3)
        found = (await replicas[0].search("the boat left the river at dawn", user_id="u"))["results"]
        assert late.id in [f["id"] for f in found]
    finally:
        for replica in replicas:
            await replica.close()
        ledger.close()


async def test_two_replicas_updating_one_memory_take_turns(shared: tuple[str, str], tmp_path: Path) -> None:
    """Each update reads the version it replaces under a lock across replicas: the history
    chains every event's old text to the one before, and the index holds the last text once."""
    url, uri = shared
    one, two = (
        AsyncMemory(MemoryConfig(data_dir=tmp_path / f"r{i}", graph="off", ledger_url=url, vector_uri=uri))
        for i in range(2)
    )
    try:
        added = (await one.add("Marta's locker is number 1", user_id="u", infer=False))["results"][0]["id"]
        for round_ in range(4):
            await asyncio.gather(
                one.update(added, f"Marta's locker is number {10 + round_}"),
                two.update(added, f"Marta's locker is number {20 + round_}"),
            )
        events = await two.history(added)
        assert len(events) == 9
        for before, after in itertools.pairwise(events):
            assert after["old_memory"] == before["new_memory"], events
        last = events[-1]["new_memory"]
        assert (await one.get(added))["memory"] == last
        time.sleep(0.3)  # past the read-consistency interval
        found = (await one.search("Marta's locker number", user_id="u"))["results"]
        assert [(r["id"], r["memory"]) for r in found] == [(added, last)]
    finally:
        await one.close()
        await two.close()


async def test_three_replica_processes_answer_the_graph_from_the_ledger(
    shared: tuple[str, str], tmp_path: Path, fake: FakeLLM, compiled: None
) -> None:
    """Model adds stating relations, spread over three ``memorch serve`` replicas (updates and a
    delete among them, one replica killed and restarted midway): afterwards the ledger holds
    exactly the relations said last, and every replica's graph answers with them."""
    url, uri = shared
    fake.responder = respond  # "Name: I live in Place" -> the fact, and Name lives_in Place
    env = {
        "MEMORCH_LEDGER_URL": url,
        "MEMORCH_VECTOR_URI": uri,
        "MEMORCH_LLM_MODEL": "openai/fake-model",
        "MEMORCH_LLM_API_BASE": fake.url,
        "MEMORCH_LLM_API_KEY": "test-key",
        "MEMORCH_BACKGROUND_INFERENCE": "off",  # each add answers with its facts
        "MEMORCH_GRAPH": "on",
        **S3_ENV,
    }
    replicas = Replica.several([tmp_path / f"replica{i}" for i in range(3)], env)
    said = [
        ("Ana", "Lima"), ("Ben", "Oslo"), ("Cy", "Rome"), ("Ana", "Kyiv"),
        ("Dee", "Baku"), ("Ben", None), ("Eli", "Riga"), ("Cy", "Pune"),
    ]  # fmt: skip
    try:
        for i, (name, place) in enumerate(said):
            if i == 4:
                replicas[1].kill()  # mid-stream
                replicas[1] = Replica(replicas[1].data_dir, env)
            text = f"{name}: I live in {place}" if place else f"{name}: I have left"
            out = await call(
                replicas[i % 3].url, "add_memory", {"messages": [{"role": "user", "content": text}], "user_id": "u"}
            )
            assert out is not None, f"the add of {text!r} was not acknowledged"
    finally:
        for replica in replicas:
            replica.stop()
    for replica in replicas:  # each replica, opened as it would be on start, reads the ledger's relations
        memory = AsyncMemory(MemoryConfig(data_dir=replica.data_dir, graph="on", ledger_url=url, vector_uri=uri))
        try:
            expected = ledger_edges(memory)
            assert len(expected) == 4  # Ana, Cy, Dee, Eli (Ben left; Ana and Cy moved)
            places = {"Ana": "Kyiv", "Cy": "Pune", "Dee": "Baku", "Eli": "Riga"}
            for name, place in places.items():
                hood = (await memory.graph(name, user_id="u", hops=1))["relations"]
                assert [(r["relationship"], r["destination"]) for r in hood] == [("lives_in", place)], (name, hood)
            assert (await memory.graph("Ben", user_id="u"))["relations"] == []
            assert not (replica.data_dir / "graph.kuzu").exists()
        finally:
            await memory.close()
