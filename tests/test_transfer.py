"""`memorch export` / `memorch import`: ids, metadata, relations and history survive the round
trip into an empty store; importing again changes nothing; a bad line changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.errors import ValidationError

from .fake_llm import FakeLLM
from .test_cli import app, run, runner
from .test_graph import graph_config, rel, triples


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def history_of(memory: AsyncMemory, ids: list[str]) -> dict[str, list[dict]]:
    return {i: await memory.history(i) for i in ids}


async def test_export_import_round_trip(tmp_path: Path, fake: FakeLLM) -> None:
    source = AsyncMemory(graph_config(tmp_path / "a", fake))
    fake.push(
        {
            "memory": [
                {"event": "ADD", "text": "Alice lives in Lisbon"},
                {"event": "ADD", "text": "Alice works at Acme"},
            ],
            "relations": [rel(0, "Alice", "lives_in", "Lisbon"), rel(1, "Alice", "works_at", "Acme")],
        }
    )
    added = await source.add("Alice lives in Lisbon and works at Acme", user_id="alice", metadata={"src": "chat"})
    lisbon = next(r["id"] for r in added["results"] if "Lisbon" in r["memory"])
    await source.update(lisbon, "Alice lives in Porto", metadata={"src": "edit", "n": 2})
    thought = await source.add("a passing thought", user_id="alice", infer=False, metadata={"mood": "idle"})
    gone = thought["results"][0]["id"]
    await source.delete(gone)
    await source.add("Bob plays chess", user_id="bob", infer=False)
    export = tmp_path / "backup.jsonl"
    counts = await source.export_memories(export)
    assert counts == {"memories": 3, "deleted": 1, "history_events": 6}
    exported = lines(export)
    ids = [row["id"] for row in exported]
    assert ids == sorted(ids) and gone in ids
    assert next(row for row in exported if row["id"] == gone)["deleted"] is True

    target = AsyncMemory(graph_config(tmp_path / "b", fake))
    requests_before = len(fake.chat_requests())
    assert await target.import_memories(lines(export)) == {"imported": 4, "duplicates": 0, "deleted": 1}
    assert len(fake.chat_requests()) == requests_before  # restored as stored: no inference
    for user in ("alice", "bob"):
        assert (await target.get_all(user_id=user)) == (await source.get_all(user_id=user))
    assert await history_of(target, ids) == await history_of(source, ids)
    found = await target.search("where does Alice live?", user_id="alice", limit=1)
    assert found["results"][0]["id"] == lisbon  # embedded and indexed on the way in
    around = await target.graph("Alice", user_id="alice")
    assert triples(around["relations"]) == triples((await source.graph("Alice", user_id="alice"))["relations"])
    assert ("Alice", "works_at", "Acme") in triples(around["relations"])

    again = tmp_path / "again.jsonl"
    await target.export_memories(again)
    assert again.read_text() == export.read_text()
    await target.restore(gone)  # the deletion's record of the metadata came along
    assert (await target.get(gone))["metadata"] == {"mood": "idle"}
    await target.delete(gone)
    # An update's record of the metadata it replaced came along too: undone alike in both stores.
    for store in (source, target):
        await store.restore(lisbon)
    undone = (await target.get(lisbon))["metadata"]
    assert undone == (await source.get(lisbon))["metadata"] and undone.get("src") == "chat" and "n" not in undone
    await target.restore(lisbon)  # back to the updated version, so the re-import below finds it as exported
    stats = await target.stats()
    assert await target.import_memories(lines(export)) == {"imported": 0, "duplicates": 4, "known_ids": 4}
    assert (await target.stats())["history_events"] == stats["history_events"]

    only_bob = tmp_path / "bob.jsonl"
    assert (await source.export_memories(only_bob, user_id="bob"))["memories"] == 1
    assert [row["user_id"] for row in lines(only_bob)] == ["bob"]
    await source.close()
    await target.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"history": []}, "history"),
        ({"history": [{"id": "x", "event": "ADD", "created_at": "2026-01-01T00:00:00+00:00"}]}, "history.0.id"),
        ({"history": [{"id": "6b1e3f4a-1b8e-4f1e-9c1e-2f3a4b5c6d7e", "event": "MERGE", "created_at": "x"}]}, "event"),
        ({"id": "not-a-uuid"}, "id"),
        ({"memory": ""}, "memory"),
    ],
)
async def test_a_bad_export_line_changes_nothing(amem: AsyncMemory, change: dict, field: str) -> None:
    good = {
        "id": "0c2d6f0e-5a3b-4c1d-8e9f-0a1b2c3d4e5f",
        "memory": "likes tea",
        "user_id": "u",
        "history": [
            {"id": "1c2d6f0e-5a3b-4c1d-8e9f-0a1b2c3d4e5f", "event": "ADD", "created_at": "2026-01-01T00:00:00+00:00"}
        ],
    }
    with pytest.raises(ValidationError) as caught:
        await amem.import_memories([{"memory": "fine", "user_id": "u"}, good, {**good, **change}])
    assert caught.value.details["item"] == 3 and field in caught.value.message
    assert (await amem.stats())["memories"] == 0


def test_cli_export_then_import(tmp_path: Path) -> None:
    code, out = run(tmp_path / "one", "add", "I am allergic to peanuts", "--json")
    assert code == 0, out
    memory_id = json.loads(out)["results"][0]["id"]
    code, out = run(tmp_path / "one", "export", str(tmp_path / "all.jsonl"), "--json")
    assert code == 0 and json.loads(out)["memories"] == 1
    code, out = run(tmp_path / "two", "import", str(tmp_path / "all.jsonl"), "--json")
    assert code == 0 and json.loads(out) == {"imported": 1, "duplicates": 0, "users": {"cli-user": 1}, "expired": 0}
    code, out = run(tmp_path / "two", "get", memory_id, "--json")
    assert code == 0 and json.loads(out)["memory"] == "I am allergic to peanuts"
    # A second export to the same path (here a mistyped user: an empty one) replaced the first.
    before = (tmp_path / "all.jsonl").read_bytes()
    data = {"MEMORCH_DATA_DIR": str(tmp_path / "one"), "MEMORCH_GRAPH": "off"}
    refused = runner.invoke(app, ["export", str(tmp_path / "all.jsonl"), "--user-id", "typo"], env=data)
    assert refused.exit_code == 1 and "EXPORT_EXISTS" in refused.stderr and "--force" in refused.stderr
    assert (tmp_path / "all.jsonl").read_bytes() == before
    code, out = run(tmp_path / "one", "export", str(tmp_path / "all.jsonl"), "--user-id", "typo", "--force")
    assert code == 0 and (tmp_path / "all.jsonl").read_bytes() == b""


def test_cli_import_of_an_export_says_its_deleted_memories_apart(tmp_path: Path) -> None:
    """An export carries deleted memories (their history, so restore works after a move); the
    import's line counted them as memories ("imported 2 memories" where one came back)."""
    for text in ("I am allergic to peanuts", "I drive a blue car"):
        code, out = run(tmp_path / "one", "add", text, "--json")
        assert code == 0, out
    assert run(tmp_path / "one", "delete", json.loads(out)["results"][0]["id"])[0] == 0
    assert run(tmp_path / "one", "export", str(tmp_path / "all.jsonl"))[0] == 0
    code, out = run(tmp_path / "two", "import", str(tmp_path / "all.jsonl"))
    assert code == 0 and out.startswith("imported 1 memory and 1 deleted (their history, for restore), skipped 0"), out


async def test_a_file_that_repeats_a_line_imports_it_once(amem: AsyncMemory, tmp_path: Path) -> None:
    """The same exported memory twice in one file (two exports concatenated, a repeated
    observation) is one memory and one duplicate, not a failed write (UNIQUE history.id)."""
    await amem.add("I keep bees", user_id="al", infer=False)
    export = tmp_path / "e.jsonl"
    await amem.export_memories(export)
    target = AsyncMemory(MemoryConfig(data_dir=tmp_path / "b", graph="off"))
    assert await target.import_memories(lines(export) * 2) == {"imported": 1, "duplicates": 1}
    assert [r["memory"] for r in (await target.get_all(user_id="al"))["results"]] == ["I keep bees"]
    await target.close()


async def test_the_library_imports_the_file_an_export_wrote(tmp_path: Path) -> None:
    """``export_memories`` says ``import_memories`` reads it back: a path (str or Path) is that
    file; anything else that is no list of items is INVALID_ITEMS (a str was read letter by
    letter, a Path or None was a bare TypeError)."""
    async with AsyncMemory(MemoryConfig(data_dir=tmp_path / "a", graph="off")) as source:
        await source.add("I like tea", user_id="u", metadata={"k": 1}, infer=False)
        await source.export_memories(tmp_path / "x.jsonl")
    async with AsyncMemory(MemoryConfig(data_dir=tmp_path / "b", graph="off")) as target:
        assert (await target.import_memories(str(tmp_path / "x.jsonl")))["imported"] == 1
        assert (await target.import_memories(tmp_path / "x.jsonl"))["duplicates"] == 1
        assert [(m["memory"], m["metadata"]) for m in (await target.get_all(user_id="u"))["results"]] == [
            ("I like tea", {"k": 1})
        ]
        for bad in (None, 5, {"memory": "x"}):
            with pytest.raises(ValidationError) as refused:
                await target.import_memories(bad)
            assert refused.value.error_code == "INVALID_ITEMS"


async def test_an_export_into_a_missing_folder_names_the_folder(amem: AsyncMemory, tmp_path: Path) -> None:
    """The OS named the temporary ``.partial`` file it failed on (a newcomer's trial)."""
    from memorch.errors import StorageError

    await amem.add("I like tea", user_id="u", infer=False)
    target = tmp_path / "no" / "such" / "folder" / "x.jsonl"
    with pytest.raises(StorageError) as failed:
        await amem.export_memories(target, user_id="u")
    assert failed.value.error_code == "EXPORT_FAILED" and ".partial" not in failed.value.message
    assert f"the folder {target.parent} does not exist" in failed.value.message
    assert not target.parent.exists()
