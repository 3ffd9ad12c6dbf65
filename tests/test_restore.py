"""Every change is reversible: restore brings back the version before a history event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mcp import Client

from memorch import AsyncMemory, MemoryConfig
from memorch.errors import MemoryNotFoundError, ValidationError
from memorch.serve._app import build_server


async def test_restore_undoes_the_last_change_and_is_recorded(amem: AsyncMemory) -> None:
    memory_id = (await amem.add("I live in Berlin", user_id="u"))["results"][0]["id"]
    await amem.update(memory_id, "I live in Hamburg")
    restored = await amem.restore(memory_id)
    assert restored["event"] == "RESTORE" and restored["memory"] == "I live in Berlin"
    assert restored["previous_memory"] == "I live in Hamburg"
    assert (await amem.get(memory_id))["memory"] == "I live in Berlin"
    events = await amem.history(memory_id)
    assert [e["event"] for e in events] == ["ADD", "UPDATE", "RESTORE"]
    assert events[-1]["old_memory"] == "I live in Hamburg" and events[-1]["new_memory"] == "I live in Berlin"
    found = await amem.search("Berlin", user_id="u", threshold=0)  # the index follows the restored text
    assert found["results"][0]["memory"] == "I live in Berlin"
    assert "Hamburg" not in {r["memory"] for r in found["results"]}


async def test_restore_before_a_chosen_event(amem: AsyncMemory) -> None:
    memory_id = (await amem.add("v1", user_id="u"))["results"][0]["id"]
    await amem.update(memory_id, "v2")
    await amem.update(memory_id, "v3")
    second_update = (await amem.history(memory_id))[2]["id"]
    first_update = (await amem.history(memory_id))[1]["id"]
    assert (await amem.restore(memory_id, first_update))["memory"] == "v1"
    assert (await amem.restore(memory_id, second_update))["memory"] == "v2"
    with pytest.raises(ValidationError) as created:
        await amem.restore(memory_id, (await amem.history(memory_id))[0]["id"])  # before ADD: nothing
    assert created.value.error_code == "NOTHING_TO_RESTORE"
    with pytest.raises(ValidationError) as unknown:
        await amem.restore(memory_id, "00000000-0000-4000-8000-000000000000")
    assert unknown.value.error_code == "EVENT_NOT_FOUND"


async def test_a_deleted_memory_comes_back_under_its_id_and_scope(amem: AsyncMemory) -> None:
    memory_id = (await amem.add("I keep bees", user_id="alice", agent_id="garden"))["results"][0]["id"]
    created_at = (await amem.get(memory_id))["created_at"]
    await amem.delete(memory_id)
    with pytest.raises(MemoryNotFoundError):
        await amem.restore(memory_id, user_id="bob")  # a given scope narrows, as everywhere
    restored = await amem.restore(memory_id)
    assert restored["event"] == "RESTORE" and "previous_memory" not in restored
    back = await amem.get(memory_id)
    assert (back["memory"], back["user_id"], back["agent_id"]) == ("I keep bees", "alice", "garden")
    assert back["created_at"] == created_at
    assert (await amem.search("bees", user_id="alice", threshold=0))["results"][0]["id"] == memory_id
    assert [e["event"] for e in await amem.history(memory_id)] == ["ADD", "DELETE", "RESTORE"]


async def test_a_deleted_memory_comes_back_with_its_metadata(amem: AsyncMemory) -> None:
    """Deleted one by one or with its whole scope, a memory's metadata comes back with it, so a
    filter finds it again; a memory that still exists keeps its own."""
    bees = (await amem.add("I keep bees", user_id="al", metadata={"topic": "garden", "hives": 3}))["results"][0]["id"]
    tea = (await amem.add("I drink green tea", user_id="al", metadata={"topic": "food"}))["results"][0]["id"]
    await amem.delete(bees)
    await amem.restore(bees)
    assert (await amem.get(bees))["metadata"] == {"topic": "garden", "hives": 3}
    listed = await amem.get_all(user_id="al", filters={"topic": "garden"})
    assert [r["id"] for r in listed["results"]] == [bees]
    await amem.delete_all(user_id="al")
    await amem.restore(tea)
    assert (await amem.get(tea))["metadata"] == {"topic": "food"}
    found = await amem.search("tea", user_id="al", filters={"topic": "food"}, threshold=0)
    assert [r["id"] for r in found["results"]] == [tea]


async def test_a_deletion_recorded_before_metadata_was_kept_restores_without_it(tmp_path: Path) -> None:
    """A ledger written before DELETE events kept the metadata (no such column: the next open
    adds it, NULL for the earlier events): the memory comes back with none, as it did then."""
    config = MemoryConfig(data_dir=tmp_path, graph="off")
    memory = AsyncMemory(config)
    memory_id = (await memory.add("I keep bees", user_id="al", metadata={"topic": "garden"}))["results"][0]["id"]
    await memory.delete(memory_id)
    await memory.close()
    with sqlite3.connect(tmp_path / "memorch.db") as conn:
        conn.execute("ALTER TABLE history DROP COLUMN metadata")
    memory = AsyncMemory(config)
    await memory.restore(memory_id)
    assert (await memory.get(memory_id))["metadata"] == {}
    await memory.close()


async def test_restore_over_mcp(tmp_path: Path) -> None:
    async with Client(build_server(MemoryConfig(data_dir=tmp_path, graph="off"))) as client:
        added = await client.call_tool("add_memory", {"text": "My flight is on Monday"})
        memory_id = added.structured_content["results"][0]["id"]
        await client.call_tool("update_memory", {"memory_id": memory_id, "text": "My flight is on Tuesday"})
        history = await client.call_tool("memory_history", {"memory_id": memory_id})
        update_event = history.structured_content["events"][1]["id"]
        restored = await client.call_tool("restore_memory", {"memory_id": memory_id, "event_id": update_event})
        assert restored.structured_content["memory"] == "My flight is on Monday"
        bad = await client.call_tool("restore_memory", {"memory_id": memory_id, "event_id": "nope"})
        assert bad.is_error and bad.content[0].text.startswith("[INVALID_EVENT_ID]")


async def test_an_update_of_metadata_or_expiry_alone_is_undone(amem: AsyncMemory) -> None:
    """ "Undo a change": an update that kept the text but changed the metadata or the expiry
    comes undone too (it answered NONE, "already says this", and kept the new metadata)."""
    added = (await amem.add("I am allergic to peanuts", user_id="u", metadata={"k": 0}, infer=False))["results"][0]
    memory_id = added["id"]
    await amem.update(memory_id, "I am allergic to peanuts", metadata={"k": 1})
    undone = await amem.restore(memory_id)
    assert undone["event"] == "RESTORE"
    assert (await amem.get(memory_id))["metadata"] == {"k": 0}
    # The restore is itself a change with a before: restoring again brings {"k": 1} back.
    assert (await amem.restore(memory_id))["event"] == "RESTORE"
    assert (await amem.get(memory_id))["metadata"] == {"k": 1}
    # An expiry set by an update is undone, and a filter sees the restored metadata.
    await amem.update(memory_id, "I am allergic to peanuts", expires_at="30d")
    assert "expires_at" in await amem.get(memory_id)
    await amem.restore(memory_id)
    restored = await amem.get(memory_id)
    assert "expires_at" not in restored and restored["metadata"] == {"k": 1}
    found = await amem.get_all(user_id="u", filters={"k": 1})
    assert [m["id"] for m in found["results"]] == [memory_id]
    # Restoring to the version it already is says so and records nothing.
    events = await amem.history(memory_id)
    assert events[-2]["event"] == "UPDATE"  # the one that set the expiry: before it is as now
    assert (await amem.restore(memory_id, event_id=events[-2]["id"]))["event"] == "NONE"
    assert len(await amem.history(memory_id)) == len(events)
