"""`memorch import --from ...`: each importer turns its fixture (tests/data/importers/, written from
each format's documentation) into searchable memories and graph relations in real stores; a dry
run writes nothing; a bad item is refused by file and line with nothing written; importing the
same source again adds nothing."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from memorch import AsyncMemory, Memory, MemoryConfig
from memorch.cli._main import app
from memorch.errors import ConfigurationError, ValidationError
from memorch.importers import Options, import_source, load

from .conftest import fake_llm_config
from .fake_llm import FakeLLM

DATA = Path(__file__).parent / "data" / "importers"
module_loop = pytest.mark.asyncio(loop_scope="module")  # the async tests share the store's loop


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncMemory]:
    """One store for the module (graph on); each test imports under its own users."""
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path_factory.mktemp("store"), graph="on", llm_model=""))
    yield memory
    await memory.close()


def triples(relations: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["source"], r["relationship"], r["destination"]) for r in relations}


async def top(memory: AsyncMemory, query: str, **scope: str) -> str:
    found = await memory.search(query, **scope, limit=1, threshold=0)
    return found["results"][0]["memory"]


@module_loop
async def test_mem0_keeps_ids_users_metadata_timestamps_and_relations(store: AsyncMemory) -> None:
    path = DATA / "mem0_get_all.json"
    assert await import_source(store, "mem0", path) == {"imported": 4, "duplicates": 0}
    kept = await store.get("6b0e5d8a-3f1c-4c2a-9a57-1d2e3f4a5b6c")  # a mem0 UUID stays the id
    assert kept["user_id"] == "priya"
    assert kept["metadata"] == {"topic": "fitness", "imported_from": "mem0"}
    assert kept["created_at"].startswith("2025-03-02T16:15:00.123456+00:00")  # -08:00 → UTC
    assert kept["updated_at"].startswith("2025-03-10T03:40:12")
    listed = (await store.get_all(user_id="priya"))["results"]
    window = next(m for m in listed if "window" in m["memory"])
    assert window["metadata"]["source_id"] == "mem-0042"  # not a UUID: kept in metadata
    assert window["metadata"]["categories"] == ["travel", "preferences"]
    assert "half marathon" in await top(store, "what race is she preparing for?", user_id="priya")
    await store.flush_graph()
    around = await store.graph("Priya", user_id="priya")
    assert ("Priya", "works_at", "Northwind Labs") in triples(around["relations"])
    assert await import_source(store, "mem0", path) == {"imported": 0, "duplicates": 4, "known_ids": 4}

    rows = json.loads(path.read_text())["results"][1:2]  # a bare list, moved to another user
    rows[0]["id"] = "legacy-7"
    listing = store.config.data_dir / "bare_list.json"
    listing.write_text(json.dumps(rows))
    assert await import_source(store, "mem0", listing, user_id="priya-2") == {"imported": 1, "duplicates": 0}
    assert [m["memory"] for m in (await store.get_all(user_id="priya-2"))["results"]] == [rows[0]["memory"]]


@module_loop
async def test_openmemory_zip_export(store: AsyncMemory, tmp_path: Path) -> None:
    exported = json.loads((DATA / "openmemory" / "memories.json").read_text())
    archive = tmp_path / "memories_export_kenji.zip"
    lines = [{"id": m["id"], "content": m["content"], "state": m["state"]} for m in exported["memories"]]
    with zipfile.ZipFile(archive, "w") as zf:  # the layout of OpenMemory's POST /api/v1/backup/export
        zf.writestr("memories.json", json.dumps(exported))
        zf.writestr("memories.jsonl.gz", gzip.compress("\n".join(map(json.dumps, lines)).encode()))
    result = await import_source(store, "openmemory", archive)
    assert result == {"imported": 2, "duplicates": 0, "skipped": {"deleted memory": 1}}
    deploys = await store.get("f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9")
    assert deploys["user_id"] == "kenji"  # the export's user name, not OpenMemory's row id
    assert deploys["metadata"] == {
        "source_app": "cursor",
        "app": "cursor",
        "categories": ["work"],
        "imported_from": "openmemory",
    }
    paused = await store.get("0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9")
    assert paused["metadata"]["state"] == "paused" and paused["created_at"].startswith("2025-03-01T08:00:00")
    assert "Rust" in await top(store, "which programming languages does he use?", user_id="kenji")
    assert (await import_source(store, "openmemory", archive))["imported"] == 0

    gz = tmp_path / "memories.jsonl.gz"  # the logical per-memory file on its own
    gz.write_bytes(gzip.compress("\n".join(map(json.dumps, lines)).encode()))
    assert (await import_source(store, "openmemory", gz, dry_run=True))["memories"] == 2


@module_loop
async def test_mcp_memory_graph_becomes_memories_and_relations(store: AsyncMemory) -> None:
    path = DATA / "mcp_memory.jsonl"
    before = await store.stats()
    assert await import_source(store, "mcp-memory", path, user_id="ana") == {"imported": 5, "duplicates": 0}
    assert await top(store, "what food allergies are there?", user_id="ana") == "Ana Souza: Allergic to shellfish"
    around = await store.graph("Ana Souza", user_id="ana")
    assert {("Ana Souza", "works_at", "Brightline Robotics"), ("Ana Souza", "lives_in", "Porto")} <= triples(
        around["relations"]
    )
    after = await store.stats()
    assert after["relations"] - before["relations"] == 2
    relation = next(m for m in (await store.get_all(user_id="ana"))["results"] if m["memory"].endswith("Porto"))
    assert relation["memory"] == "Ana Souza lives in Porto"
    assert await import_source(store, "mcp-memory", path, user_id="ana") == {
        "imported": 0,
        "duplicates": 5,
        "known_ids": 5,
    }
    assert (await store.stats())["memories"] == after["memories"]


@module_loop
async def test_basic_memory_notes_folder(store: AsyncMemory) -> None:
    result = await import_source(store, "basic-memory", DATA / "basic_memory", user_id="gardener")
    assert result == {"imported": 8, "duplicates": 0}  # 5 observations + 3 relations; prose and code left out
    memories = (await store.get_all(user_id="gardener"))["results"]
    tomatoes = next(m for m in memories if "Tomatoes" in m["memory"])
    assert tomatoes["memory"] == "Garden Planning: Tomatoes go in the south bed this year #vegetables"
    assert {k: tomatoes["metadata"][k] for k in ("category", "tags", "context", "note", "permalink")} == {
        "category": "decision",
        "tags": ["vegetables"],
        "context": "more sun there",
        "note": "Garden Planning",
        "permalink": "garden-planning",
    }
    assert not any("code block" in m["memory"] or "ordinary list item" in m["memory"] for m in memories)
    assert "floods" in await top(store, "which bed gets waterlogged?", user_id="gardener")
    around = await store.graph("Marta Silva", user_id="gardener")
    assert {
        ("Garden Planning", "maintained_by", "Marta Silva"),
        ("Marta Silva", "member_of", "Allotment Association"),
    } <= (triples(around["relations"]))
    again = await import_source(store, "basic-memory", DATA / "basic_memory", user_id="gardener")
    assert again == {"imported": 0, "duplicates": 8, "known_ids": 8}


@module_loop
async def test_text_by_paragraph_and_by_line(store: AsyncMemory) -> None:
    assert await import_source(store, "text", DATA / "notes.md", user_id="home") == {"imported": 4, "duplicates": 0}
    assert await import_source(store, "text", DATA / "notes.txt", user_id="home") == {"imported": 3, "duplicates": 0}
    memories = {m["memory"]: m["metadata"] for m in (await store.get_all(user_id="home"))["results"]}
    wrapped = "The car's winter tyres are stored in the garage loft, behind the camping gear."
    assert memories[wrapped] == {"imported_from": "text", "file": "notes.md", "line": 7, "section": "Car"}
    assert "Miso's vet is Dr. Okafor at the Riverside clinic" in memories  # each list item on its own
    assert "neighbour" in await top(store, "who has the spare key?", user_id="home")
    assert await import_source(store, "text", DATA / "notes.txt", user_id="home") == {"imported": 0, "duplicates": 3}
    by_line = await import_source(store, "text", DATA / "notes.md", user_id="home", split="line", dry_run=True)
    assert by_line["kinds"] == {"line": 5}


@module_loop
async def test_dry_run_writes_nothing(store: AsyncMemory) -> None:
    before = await store.stats()
    summary = await import_source(store, "mcp-memory", DATA / "mcp_memory.jsonl", user_id="dry", dry_run=True)
    assert summary["memories"] == 5 and summary["relations"] == 2
    assert summary["kinds"] == {"observation": 3, "relation": 2}
    assert summary["samples"][0]["memory"] == "Ana Souza: Plays the cello in a community orchestra"
    for source, path in [("mem0", "mem0_get_all.json"), ("basic-memory", "basic_memory"), ("text", "notes.md")]:
        await import_source(store, source, DATA / path, user_id="dry", dry_run=True)
    after = await store.stats()
    assert (after["memories"], after["history_events"], after["relations"]) == (
        before["memories"],
        before["history_events"],
        before["relations"],
    )


@module_loop
@pytest.mark.parametrize(
    ("source", "name", "content", "where", "message"),
    [
        ("mcp-memory", "bad.jsonl", None, "mcp_memory_bad.jsonl line 3", "'observations' must be a list"),
        (
            "mcp-memory",
            "bad.jsonl",
            '{"type": "entity", "name": "A", "observations": []}\n{"type": "rel"}\n',
            "line 2",
            "type must be 'entity' or 'relation'",
        ),
        ("mem0", "bad.json", '{"results": [{"memory": "fine"}, {"memory": ""}]}', "bad.json item 2", "'memory'"),
        ("mem0", "bad.json", '[{"memory": "x", "created_at": "last tuesday"}]', "item 1", "is not a date"),
        ("mem0", "bad.json", '[{"memory": "x", "metadata": {"_memorch": 1}}]', "item 1", "reserved"),
        ("openmemory", "memories.json", '{"memories": [{"id": "x"}]}', "memories item 1", "'content'"),
        ("text", "bad.txt", "fine\n\xe9t\xe9\n", "bad.txt line 2", "UTF-8"),
        ("mem0", "bad.json", "[{", "bad.json line 1", "not valid JSON"),
        ("memorch", "list.json", '[{"memory": "x"}]\n', "list.json line 1", "is a JSON list"),
        ("basic-memory", "facts.txt", "I like tea\n- a plain list item\n", "facts.txt", "no basic-memory observation"),
    ],
)
async def test_bad_item_is_refused_whole(
    store: AsyncMemory, tmp_path: Path, source: str, name: str, content: str | None, where: str, message: str
) -> None:
    path = DATA / "mcp_memory_bad.jsonl" if content is None else tmp_path / name
    if content is not None:
        path.write_bytes(content.encode("latin-1") if source == "text" else content.encode())
    before = await store.stats()
    with pytest.raises(ValidationError) as caught:
        await import_source(store, source, path, user_id="refused")
    assert where in caught.value.message and message in str(caught.value)
    assert caught.value.suggestion
    assert (await store.stats())["memories"] == before["memories"]
    assert (await store.get_all(user_id="refused"))["results"] == []


@module_loop
@pytest.mark.parametrize(
    ("lines", "named"),
    [
        # Not JSON; bad items; times the import refuses (a dry run checks them too).
        (['{"memory": "fine"}', "{oops", '{"memory": "also fine"}', "[1", "nope"], ["line 2", "line 4", "line 5"]),
        (
            [
                '{"memory": ""}',
                '{"memory": "fine"}',
                '{"memory": "x", "metadata": 3}',
                '{"memory": "y", "expires_at": 9}',
            ],
            ["line 1", "line 3", "line 4"],
        ),
        (
            [
                '{"memory": "a", "created_at": "2999-01-01T00:00:00Z"}',
                '{"memory": "b"}',
                '{"memory": "c", "created_at": "yesterday-ish"}',
            ],
            ["line 1", "line 3"],
        ),
    ],
)
async def test_every_bad_line_is_named_in_one_refusal(
    store: AsyncMemory, tmp_path: Path, lines: list[str], named: list[str]
) -> None:
    """A file with several bad lines is fixed in one pass: each is named (the first few in the
    message, all in ``details.problems``), and nothing is written."""
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as caught:
        await import_source(store, "memorch", path, user_id="many")
    error = caught.value
    assert [p["where"] for p in error.details["problems"]] == [f"{path} {line}" for line in named]
    assert error.details["problem_count"] == len(named)
    assert all(f"{path} {line}: " in error.message for line in named)
    if error.error_code != "INVALID_JSONL":  # a line that is not JSON: the format's hint instead
        assert "every line named" in error.suggestion
    assert all(p["error_code"] and p["message"].startswith(p["where"]) for p in error.details["problems"])
    assert (await store.get_all(user_id="many"))["results"] == []


@module_loop
async def test_every_bad_item_of_a_peers_file_is_named_in_one_refusal(store: AsyncMemory, tmp_path: Path) -> None:
    """A newcomer's trial: a mem0 file with three bad items took three runs (the importer raised
    at the first); a 2030 `created_at` was imported (it sorted as the newest memory for years)
    and a numeric user_id went to the default user."""
    items = [
        {"memory": "x" * 200_000, "user_id": "sam"},  # refused by the check after reading, listed first
        {"memory": "from the future", "user_id": "sam", "created_at": "2030-01-01T00:00:00Z"},
        {"memory": "said yesterday", "user_id": "sam", "created_at": "yesterday"},
        {"text": "no memory field", "user_id": "sam"},
        {"memory": "a numbered user", "user_id": 5},
        {"memory": "fine", "user_id": "sam", "expiration_date": "2031-01-01T00:00:00Z"},
    ]
    relations = [{"source": "sam", "relationship": "lives_in", "target": "berlin"}, {"source": "sam"}]
    path = tmp_path / "mem0.json"
    path.write_text(json.dumps({"results": items, "relations": relations}))
    with pytest.raises(ValidationError) as caught:
        await import_source(store, "mem0", path)
    problems = caught.value.details["problems"]
    assert [p["where"] for p in problems] == [f"{path} item {n}" for n in (1, 2, 3, 4, 5)] + [f"{path} relation 2"]
    assert "is in the future" in problems[1]["message"] and "user_id 5 is not a string" in problems[4]["message"]
    assert (await store.get_all(user_id="sam"))["results"] == []  # nothing written
    # An expiry may be later than now; the file's relations go to the user of its memories.
    gone = {
        "memory": "parked on level 3",
        "user_id": "sam",
        "created_at": "2025-01-01",
        "expiration_date": "2025-01-02",
    }
    path.write_text(json.dumps({"results": [*items[5:], gone], "relations": relations[:1]}))
    batch = load("mem0", path, Options(default_user="me"))
    assert batch.summary()["users"] == {"sam": 3}
    assert batch.summary()["expired"] == 1  # imported as it was, hidden, and said


@module_loop
async def test_infer_needs_a_model_and_a_text_source(store: AsyncMemory) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await import_source(store, "text", DATA / "notes.txt", infer=True)
    assert caught.value.error_code == "LLM_NOT_CONFIGURED" and "MEMORCH_LLM_MODEL" in caught.value.suggestion
    with pytest.raises(ValidationError) as caught:
        await import_source(store, "mem0", DATA / "mem0_get_all.json", infer=True)
    assert caught.value.error_code == "INFER_NOT_SUPPORTED"


@module_loop
async def test_infer_extracts_facts_through_add(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(fake_llm_config(tmp_path, fake))
    fake.push(
        {"memory": [{"event": "ADD", "text": "The spare key is with the neighbour at number 14"}]},
        {"memory": [{"event": "ADD", "text": "The router restarts on Sundays at 4am"}]},
        {"memory": []},
    )
    result = await import_source(memory, "text", DATA / "notes.txt", user_id="inferred", infer=True)
    assert result == {"chunks": 3, "added": 2, "updated": 0, "deleted": 0, "unchanged": 0, "degraded": 0}
    assert len(fake.chat_requests()) == 3
    texts = {m["memory"] for m in (await memory.get_all(user_id="inferred"))["results"]}
    assert texts == {"The spare key is with the neighbour at number 14", "The router restarts on Sundays at 4am"}
    await memory.close()


def test_cli_dry_run_and_refusal_touch_no_store(tmp_path: Path) -> None:
    env = {"MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_GRAPH": "off"}
    runner = CliRunner()
    result = runner.invoke(
        app, ["import", "--from", "mcp-memory", str(DATA / "mcp_memory.jsonl"), "--dry-run"], env=env
    )
    assert result.exit_code == 0, result.output
    assert (
        "dry run, nothing written: 5 memories from mcp-memory (3 observations, 2 relations); 2 relations for the graph"
        in result.stdout
    )
    result = runner.invoke(app, ["import", "--from", "mcp-memory", str(DATA / "mcp_memory_bad.jsonl")], env=env)
    assert result.exit_code == 1
    assert "error [INVALID_IMPORT_ITEM]" in result.stderr and "mcp_memory_bad.jsonl line 3" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()  # neither opened the store


def test_cli_names_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "empty_lines.jsonl"
    path.write_text('{"memory": ""}\n' * 8)
    env = {"MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_GRAPH": "off"}
    result = CliRunner().invoke(app, ["import", str(path)], env=env)
    assert result.exit_code == 1 and "and 3 more" in result.stderr
    assert [f"line {n}: memory is empty" in result.stderr for n in range(1, 9)] == [True] * 8
    assert "Traceback" not in result.output


def test_cli_imports_through_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_GRAPH": "off"}
    env = {k: v for k, v in env.items() if not k.startswith("MEMORCH_") or k in ("MEMORCH_DATA_DIR", "MEMORCH_GRAPH")}
    command = [sys.executable, "-m", "memorch", "import", "--from", "basic-memory", str(DATA / "basic_memory")]
    done = subprocess.run(
        [*command, "--user-id", "cli", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"imported": 8, "duplicates": 0, "users": {"cli": 8}, "expired": 0}
    # What the import wrote, searched in this process (a second CLI launch costs ~10 s of imports).
    with Memory(MemoryConfig(data_dir=tmp_path / "data", graph="off")) as memory:
        found = memory.search("heirloom beans", user_id="cli")
    assert found["results"][0]["memory"] == "Marta Silva: Likes heirloom bean varieties #seeds"
