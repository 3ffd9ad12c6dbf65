"""Graph memory in real Kuzu: extraction in the one call, exact updates/deletes, scopes,
hostile names, reindex, and two processes sharing one data directory."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig

from .conftest import fake_llm_config
from .fake_llm import FakeLLM, Request


def graph_config(tmp_path: Path, fake: FakeLLM, **overrides) -> MemoryConfig:
    return fake_llm_config(tmp_path, fake, **{"graph": "on", "llm_api_key": "k", **overrides})


@pytest.fixture
async def memory(tmp_path: Path, fake: FakeLLM) -> AsyncIterator[AsyncMemory]:
    instance = AsyncMemory(graph_config(tmp_path, fake))
    yield instance
    await instance.close()


def rel(fact: int, source: str, relationship: str, destination: str) -> dict:
    return {
        "fact": fact,
        "source": source,
        "source_type": "person",
        "relationship": relationship,
        "destination": destination,
        "destination_type": "thing",
    }


def triples(relations: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["source"], r["relationship"], r["destination"]) for r in relations}


def _number(request: Request, text: str) -> int:
    block = request.prompt.split("EXISTING MEMORIES:\n")[1].split("\n\n")[0]
    return next(int(line.split(":")[0]) for line in block.splitlines() if line.endswith(text))


async def test_relations_come_from_the_single_call(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(
        {
            "memory": [
                {"event": "ADD", "text": "Alice lives in Lisbon"},
                {"event": "ADD", "text": "Alice works at Acme"},
            ],
            "relations": [rel(0, "Alice", "lives in", "Lisbon"), rel(1, "Alice", "works_at", "Acme")],
        }
    )
    result = await memory.add("I'm Alice, I live in Lisbon and work at Acme", user_id="a")
    assert len(fake.chat_requests()) == 1
    assert "relations" in fake.chat_requests()[0].body["messages"][0]["content"]  # asked in the same call
    assert triples(result["relations"]["added_entities"]) == {
        ("Alice", "lives_in", "Lisbon"),
        ("Alice", "works_at", "Acme"),
    }
    found = await memory.search("Where does Alice live?", user_id="a")
    assert ("Alice", "lives_in", "Lisbon") in triples(found["relations"])
    stats = await memory.stats()
    assert stats["entities"] == 3 and stats["relations"] == 2
    around = await memory.graph("alice", user_id="a")
    assert triples(around["relations"]) == {("Alice", "lives_in", "Lisbon"), ("Alice", "works_at", "Acme")}


async def test_update_replaces_exactly_its_relations_and_delete_removes_orphans(
    memory: AsyncMemory, fake: FakeLLM
) -> None:
    fake.push(
        {
            "memory": [{"event": "ADD", "text": "Bob lives in Paris"}, {"event": "ADD", "text": "Bob has a dog"}],
            "relations": [rel(0, "Bob", "lives_in", "Paris"), rel(1, "Bob", "owns", "Rex")],
        }
    )
    ids = {r["memory"]: r["id"] for r in (await memory.add("Bob: Paris, dog Rex", user_id="b"))["results"]}
    fake.responder = lambda request: {
        "memory": [{"event": "UPDATE", "id": _number(request, "Bob lives in Paris"), "text": "Bob lives in Berlin"}],
        "relations": [rel(0, "Bob", "lives_in", "Berlin")],
    }
    result = await memory.add("I moved to Berlin", user_id="b")
    assert triples(result["relations"]["deleted_entities"]) == {("Bob", "lives_in", "Paris")}
    around_bob = (await memory.graph("Bob", user_id="b", hops=1))["relations"]
    assert {(r["relationship"], r["destination"]) for r in around_bob} == {("lives_in", "Berlin"), ("owns", "Rex")}
    assert (await memory.stats())["entities"] == 3  # Paris is gone: nothing mentions it any more

    await memory.delete(ids["Bob has a dog"])
    assert (await memory.stats())["entities"] == 2 and (await memory.stats())["relations"] == 1
    around = await memory.graph("Bob", user_id="b")
    assert triples(around["relations"]) == {("Bob", "lives_in", "Berlin")}

    await memory.update(ids["Bob lives in Paris"], "Bob lives somewhere else now")  # hand edit clears
    assert (await memory.stats())["relations"] == 0 and (await memory.stats())["entities"] == 0


async def test_restore_brings_back_the_relations_of_the_restored_version(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(
        {"memory": [{"event": "ADD", "text": "Cy lives in Oslo"}], "relations": [rel(0, "Cy", "lives_in", "Oslo")]}
    )
    [added] = (await memory.add("I live in Oslo", user_id="c"))["results"]
    fake.responder = lambda request: {
        "memory": [{"event": "UPDATE", "id": _number(request, "Cy lives in Oslo"), "text": "Cy lives in Rome"}],
        "relations": [rel(0, "Cy", "lives_in", "Rome")],
    }
    await memory.add("I moved to Rome", user_id="c")
    await memory.update(added["id"], "Cy lives somewhere warm")  # a hand edit clears relations
    history = await memory.history(added["id"])
    assert [e["event"] for e in history] == ["ADD", "UPDATE", "UPDATE"]
    assert history[1]["reason"]  # the model's decision is explained in the history too

    await memory.restore(added["id"], history[1]["id"])  # the version before the model's update
    await memory.flush_graph()
    assert (await memory.get(added["id"]))["memory"] == "Cy lives in Oslo"
    assert triples((await memory.graph("Cy", user_id="c"))["relations"]) == {("Cy", "lives_in", "Oslo")}
    last = (await memory.history(added["id"]))[-1]
    assert last["event"] == "RESTORE" and history[1]["id"] in last["reason"]

    await memory.restore(added["id"])  # undo the restore: the hand-edited text, with no relations
    await memory.flush_graph()
    assert (await memory.stats())["relations"] == 0


async def test_scopes_are_separate_graphs(memory: AsyncMemory, fake: FakeLLM) -> None:
    for user, city in (("u1", "Rome"), ("u2", "Oslo")):
        fake.push(
            {
                "memory": [{"event": "ADD", "text": f"Sam lives in {city}"}],
                "relations": [rel(0, "Sam", "lives_in", city)],
            }
        )
        await memory.add(f"I live in {city}", user_id=user)
    assert triples((await memory.graph("Sam", user_id="u1"))["relations"]) == {("Sam", "lives_in", "Rome")}
    assert triples((await memory.search("Sam", user_id="u2"))["relations"]) == {("Sam", "lives_in", "Oslo")}
    await memory.delete_all(user_id="u1")
    assert (await memory.graph("Sam", user_id="u1"))["relations"] == []
    assert triples((await memory.graph("Sam", user_id="u2"))["relations"]) == {("Sam", "lives_in", "Oslo")}


HOSTILE = [
    "O'Brien",
    'say "hi"',
    "back`tick`",
    "MATCH (n) DETACH DELETE n",
    "}) RETURN 1 //",
    "Zoë 東京 🎉",
    "$key",
    "CREATE",
]


async def test_hostile_names_are_stored_verbatim(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(
        {
            "memory": [{"event": "ADD", "text": f"fact {i}"} for i in range(len(HOSTILE))],
            "relations": [rel(i, name, "knows", f"{name} friend") for i, name in enumerate(HOSTILE)],
        }
    )
    await memory.add("hostile names", user_id="h")
    for name in HOSTILE:
        assert triples((await memory.graph(name, user_id="h", hops=1))["relations"]) == {
            (name, "knows", f"{name} friend")
        }
    assert (await memory.stats())["relations"] == len(HOSTILE)


async def test_known_entities_reach_the_model_and_close_names_merge(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(graph_config(tmp_path, fake, entity_merge_threshold=0.9))
    fake.push(
        {
            "memory": [{"event": "ADD", "text": "Cleo lives in New York City"}],
            "relations": [rel(0, "Cleo", "lives_in", "New York City")],
        },
        {
            "memory": [{"event": "ADD", "text": "Cleo loves NYC pizza"}],
            "relations": [rel(0, "cleo ", "eats_pizza_in", "NYC"), rel(0, "Cleo", "likes", "Paris")],
        },
    )
    await memory.add("I live in New York City", user_id="c")
    await memory.add("I love New York pizza", user_id="c")
    assert "KNOWN ENTITIES: Cleo, New York City" in fake.chat_requests()[1].prompt
    around = triples((await memory.graph("New York City", user_id="c", hops=1))["relations"])
    assert around == {("Cleo", "lives_in", "New York City"), ("Cleo", "eats_pizza_in", "New York City")}
    assert (await memory.stats())["entities"] == 3  # Cleo, New York City, Paris
    await memory.close()


async def test_default_threshold_keeps_distinct_names_apart(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(
        {
            "memory": [{"event": "ADD", "text": "Fay visited York"}, {"event": "ADD", "text": "Fay lives in New York"}],
            "relations": [rel(0, "Fay", "visited", "York"), rel(1, "Fay", "lives_in", "New York")],
        }
    )
    await memory.add("I visited York; I live in New York", user_id="f")
    assert (await memory.stats())["entities"] == 3


async def test_reindex_reproduces_the_same_graph_without_the_llm(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(
        {
            "memory": [{"event": "ADD", "text": "Dee plays oboe"}, {"event": "ADD", "text": "Dee met Eli"}],
            "relations": [rel(0, "Dee", "plays", "oboe"), rel(1, "Dee", "met", "Eli")],
        }
    )
    await memory.add("I play oboe; I met Eli", user_id="d")

    def around_dee(found: dict) -> list:  # the graph's answer has no order (Kuzu returns none)
        return sorted(found["relations"], key=lambda r: (r["memory_id"], r["relationship"]))

    before = around_dee(await memory.graph("Dee", user_id="d"))
    requests = len(fake.requests)
    await memory.reindex()
    assert around_dee(await memory.graph("Dee", user_id="d")) == before and len(before) == 2
    assert len(fake.requests) == requests


async def test_graph_off_imports_no_kuzu(tmp_path: Path, fake: FakeLLM) -> None:
    code = textwrap.dedent(f"""
        import asyncio, sys
        from memorch import AsyncMemory, MemoryConfig
        async def main():
            m = AsyncMemory(MemoryConfig(data_dir={str(tmp_path / "off")!r}, graph="off"))
            await m.add("no graph here", user_id="x")
            result = await m.search("graph", user_id="x")
            assert "relations" not in result
            print("kuzu" in sys.modules)
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# One interpreter imports LiteLLM and LanceDB once (tens of seconds each on a loaded 2-core
# machine), then forks the writers: separate processes on one data directory, each opening its
# own stores and its own graph child, started at the same moment. Each prints its ids on a line.
WRITER = textwrap.dedent("""
    import asyncio, contextlib, importlib, json, os, sys, traceback
    from memorch import AsyncMemory, MemoryConfig
    from memorch.models._llm import import_litellm

    import_litellm()
    for name in ("memorch.api._async_memory", "memorch.engine._store", "memorch.inference._add",
                 "memorch.storage.vectors", "memorch.storage.graph_process", "lancedb", "lancedb.query",
                 "httpcore", "h11", "litellm.llms.openai.openai"):  # what the first add imports
        with contextlib.suppress(ImportError):
            importlib.import_module(name)

    async def main(data, url, name, n):
        memory = AsyncMemory(MemoryConfig(data_dir=data, graph="on", llm_model="openai/" + name,
                                          llm_api_base=url, llm_api_key="k", llm_max_retries=0))
        ids = []
        for i in range(n):
            result = await memory.add(f"{name} fact {i}", user_id="shared")
            assert "degraded" not in result, result
            ids += [r["id"] for r in result["results"] if r["event"] == "ADD"]
        await memory.close()
        return ids

    data, url, n, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    children = []
    for name in names:
        pid = os.fork()
        if pid == 0:
            try:
                print(json.dumps(asyncio.run(main(data, url, name, n))), flush=True)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            os._exit(0)
        children.append(pid)
    failed = [os.waitpid(pid, 0)[1] for pid in children]
    sys.exit(1 if any(failed) else 0)
""")


async def test_two_processes_share_one_data_directory(tmp_path: Path, fake: FakeLLM) -> None:
    def responder(request: Request) -> dict:
        said = request.prompt.split("CONVERSATION:")[1].strip().split(": ", 1)[1]
        writer, _, number = said.partition(" fact ")
        return {
            "memory": [{"event": "ADD", "text": f"{writer} knows item {number}"}],
            "relations": [rel(0, writer, "knows", f"item {writer} {number}")],
        }

    fake.responder = responder
    data = tmp_path / "shared"
    n = 12
    writers = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data), fake.url, str(n), "writer-a", "writer-b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = await asyncio.to_thread(writers.communicate, timeout=240)
    assert writers.returncode == 0, err[-2000:]
    lines = out.splitlines()
    assert len(lines) == 2, out  # one line per writer process
    ids = [i for line in lines for i in json.loads(line)]
    assert len(ids) == 2 * n

    memory = AsyncMemory(MemoryConfig(data_dir=data, graph="on"))
    stats = await memory.stats()
    assert stats["memories"] == 2 * n and stats["relations"] == 2 * n and stats["pending_index"] == 0
    assert stats["entities"] == 2 + 2 * n
    assert memory.engine.components.vectors.all_ids() == set(ids)
    await memory.close()
