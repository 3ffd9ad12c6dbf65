"""Memories that expire (issue 27 item 2): ``expires_at`` on add and update (an ISO time or a
duration), a default per scope, facts inferred from a time-bound add carrying it, reads that stop
returning a memory from its expiry on (before any maintenance), and maintenance purging it the
way ``delete(purge=True)`` does: no byte of it left under the data directory."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from mcp import Client

from memorch import AsyncMemory, Memory, MemoryConfig
from memorch.domain._records import new_record, utc_now
from memorch.errors import ConfigurationError, MemoryNotFoundError, ValidationError
from memorch.serve._app import build_server
from memorch.storage.base import Change, Scope
from memorch.storage.expiry import stamp
from memorch.storage.history import SQLiteLedger
from memorch.storage.ledger import Ledger

from .conftest import fake_llm_config
from .fake_llm import FakeLLM
from .test_ledger_backends import ledger  # noqa: F401 - the SQLite and PostgreSQL ledgers, one test each
from .test_purge import occurrences, token

SHORT_S = 3.0  # a memory's life in the tests that wait for it (a loaded 2-core machine needs room)


async def warm(memory: AsyncMemory) -> None:
    """Open every store and load the embedder first (seconds on a loaded machine), and let the
    process's own first sweep (at its first operation) pass, so a short expiry starts after."""
    await memory.add("warm-up", user_id="warm", infer=False)
    await memory.search("warm", user_id="warm")
    await memory.engine.sweeper.close()


async def until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.05)


async def test_an_expired_memory_is_hidden_at_once_then_purged_to_the_last_byte(
    amem: AsyncMemory, config: MemoryConfig
) -> None:
    word, other = token(), token()
    await warm(amem)
    kept = (await amem.add("I keep bees on the roof", user_id="u"))["results"][0]["id"]
    for i in range(8):
        await amem.add(f"Filler memory number {i} about the garden", user_id="u")
    later = (await amem.add(f"My gym locker is {other}", user_id="u", expires_at="1h"))["results"][0]
    deadline = time.monotonic() + SHORT_S
    added = await amem.add(f"I am staying at hotel {word} until Friday", user_id="u", expires_at=f"{SHORT_S:.0f}s")
    doomed = added["results"][0]["id"]
    assert added["expires_at"] > utc_now()
    assert (await amem.get(doomed))["expires_at"] == added["expires_at"]  # readable until then
    assert (await amem.get(later["id"]))["expires_at"] > added["expires_at"]
    before = datetime.now(UTC).isoformat()
    await until(deadline)

    # From the expiry on, before any maintenance: no read returns it.
    assert all(r["id"] != doomed for r in (await amem.search(f"hotel {word}", user_id="u", threshold=0))["results"])
    assert doomed not in {r["id"] for r in (await amem.get_all(user_id="u"))["results"]}
    with pytest.raises(MemoryNotFoundError) as gone:
        await amem.get(doomed)
    assert gone.value.error_code == "MEMORY_EXPIRED" and gone.value.suggestion
    with pytest.raises(MemoryNotFoundError):
        await amem.update(doomed, "I moved to another hotel")
    assert doomed not in {r["id"] for r in (await amem.get_all(user_id="u", as_of=before))["results"]}
    exported = config.data_dir.parent / "export.jsonl"
    await amem.export_memories(exported, user_id="u")
    assert word not in exported.read_text()
    exported.unlink()
    assert occurrences(config.data_dir, [word]), "the test must see the text before maintenance"

    async def writes() -> None:
        for i in range(5):
            await amem.add(f"Another memory {i} written during maintenance", user_id="u")

    async def reads() -> None:
        for _ in range(5):
            await amem.search("garden", user_id="u")
            await amem.get_all(user_id="u")

    swept, *_ = await asyncio.gather(amem.maintain(), writes(), reads(), reads())
    assert swept["expired"] == 1 and swept["expired_ids"] == [doomed]
    assert occurrences(config.data_dir, [word, "staying at hotel"]) == []
    events = await amem.history(doomed)
    assert [(e["event"], e["old_memory"], e["new_memory"]) for e in events] == [("PURGE", None, None)]
    assert events[0]["reason"].startswith("expired")  # type: ignore[typeddict-item]
    with pytest.raises(MemoryNotFoundError) as purged:
        await amem.restore(doomed)
    assert purged.value.error_code == "MEMORY_PURGED"

    # Nothing else changed: the memory that expires later and the others are all there.
    assert (await amem.get(later["id"]))["memory"] == f"My gym locker is {other}"
    assert len((await amem.get_all(user_id="u", limit=100))["results"]) == 1 + 8 + 1 + 5
    assert (await amem.maintain())["expired"] == 0  # nothing left to do
    await amem.update(kept, "I keep bees in the garden")
    assert [e["event"] for e in await amem.history(kept)] == ["ADD", "UPDATE"]
    assert (await amem.restore(kept))["memory"] == "I keep bees on the roof"
    old = await amem.search("bees", user_id="u", as_of=before, threshold=0)
    assert old["results"][0]["id"] == kept and old["results"][0]["memory"] == "I keep bees on the roof"


async def test_bad_expires_at_changes_nothing(amem: AsyncMemory) -> None:
    memory_id = (await amem.add("Lunch with Sam", user_id="u"))["results"][0]["id"]
    counts = await amem.stats()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for bad in ("tomorrow", "7 days", "0d", "-3d", "99999999d", "36501d", "2020-01-01", past, "", 7, True, ["1d"]):
        with pytest.raises(ValidationError) as refused:
            await amem.add("Dinner with Sam", user_id="u", expires_at=bad)  # type: ignore[arg-type]
        assert refused.value.error_code == "INVALID_EXPIRY" and refused.value.suggestion
        with pytest.raises(ValidationError):
            await amem.update(memory_id, "Dinner with Sam", expires_at=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await amem.add("Dinner with Sam", user_id="u", expires_at="never")  # only update removes one
    assert await amem.stats() == counts
    assert (await amem.get(memory_id))["memory"] == "Lunch with Sam"
    assert "expires_at" not in await amem.get(memory_id)


async def test_a_repeated_text_says_its_expiry_and_metadata_were_not_applied(amem: AsyncMemory) -> None:
    """A text already stored, added again with an expiry and metadata, answered NONE with the
    add's `expires_at` beside it: an assistant told the user "forgotten in 7 days" of a memory
    kept for good (a newcomer's trial, 2026-12-07). The answer says what was not applied."""
    first = (await amem.add("I live in Berlin.", user_id="u"))["results"][0]
    again = await amem.add("I live in Berlin!", user_id="u", metadata={"category": "home"}, expires_at="7d")
    assert [r["event"] for r in again["results"]] == ["NONE"] and "expires_at" not in again
    assert again["results"][0]["reason"] == (
        "the same text is already stored; this add's metadata and expiry were not applied (an update changes them)"
    )
    assert (await amem.add("I live in Berlin", user_id="u", metadata={"category": "home"}))["results"][0][
        "reason"
    ].endswith("this add's metadata was not applied (an update changes them)")
    plain = await amem.add("I live in Berlin", user_id="u")
    assert plain["results"][0]["reason"] == "the same text is already stored"
    stored = await amem.get(first["id"])
    assert stored["metadata"] == {} and "expires_at" not in stored
    added = await amem.add("I live in Lisbon now", user_id="u", expires_at="7d")
    assert (
        added["results"][0]["event"] == "ADD"
        and added["expires_at"] == (await amem.get(added["results"][0]["id"]))["expires_at"]
    )


async def test_update_sets_keeps_and_removes_an_expiry(amem: AsyncMemory) -> None:
    memory_id = (await amem.add("The office is closed", user_id="u"))["results"][0]["id"]
    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    set_ = await amem.update(memory_id, "The office is closed", expires_at=when.isoformat())
    assert set_["event"] == "UPDATE"  # the same text, a new expiry: a change
    assert (await amem.get(memory_id))["expires_at"] == stamp(when)
    await amem.update(memory_id, "The office is closed until Monday")
    assert (await amem.get(memory_id))["expires_at"] == stamp(when)  # a new text keeps the expiry
    same = await amem.update(memory_id, "The office is closed until Monday", expires_at=when.isoformat())
    assert same["event"] == "NONE"
    await amem.update(memory_id, "The office is closed until Monday", expires_at="never")
    assert "expires_at" not in await amem.get(memory_id)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    await amem.update(memory_id, "The office is closed until Monday", expires_at=day)
    assert (await amem.get(memory_id))["expires_at"] == f"{day}T23:59:59.999999+00:00"  # a date: its end


async def test_a_default_expiry_per_scope(tmp_path: Path) -> None:
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", default_expiry={"run_id": "2h"})
    async with AsyncMemory(config) as memory:
        session = await memory.add("We are debugging the login page", user_id="u", run_id="r1")
        assert session["expires_at"][:13] == stamp(datetime.now(UTC) + timedelta(hours=2))[:13]
        lasting = await memory.add("My name is Ada", user_id="u")
        assert "expires_at" not in lasting and "expires_at" not in await memory.get(lasting["results"][0]["id"])
        chosen = await memory.add("The build is red", user_id="u", run_id="r1", expires_at="10m")
        assert chosen["expires_at"] < session["expires_at"]  # the add's own wins over the default
        again = await memory.add("We are debugging the login page", user_id="u", run_id="r1")
        assert again["results"][0]["reason"] == "the same text is already stored"  # the default was not asked for
    with pytest.raises(ConfigurationError):
        MemoryConfig(data_dir=tmp_path / "data", default_expiry={"session": "2h"})
    with pytest.raises(ConfigurationError):
        MemoryConfig(data_dir=tmp_path / "data", default_expiry={"run_id": "soon"})


async def test_facts_inferred_from_a_time_bound_add_carry_its_expiry(tmp_path: Path, fake: FakeLLM) -> None:
    place, person = token(), token()
    config = fake_llm_config(tmp_path, fake, graph="on")
    async with AsyncMemory(config) as memory:
        await warm(memory)
        fake.push({"memory": []})
        await memory.add("Hello there", user_id="warm")  # LiteLLM's import (seconds) before the clock starts
        relation = {"fact": 0, "source": person, "relationship": "stays_in", "destination": place}
        fake.push(
            {"memory": [{"event": "ADD", "text": f"{person} stays in {place} this week"}], "relations": [relation]}
        )
        deadline = time.monotonic() + SHORT_S
        added = await memory.add(f"{person} is staying in {place} this week", user_id="g", expires_at=f"{SHORT_S:.0f}s")
        fact = added["results"][0]
        assert fact["event"] == "ADD" and (await memory.get(fact["id"]))["expires_at"] == added["expires_at"]
        assert [r["destination"] for r in (await memory.graph(person, user_id="g"))["relations"]] == [place]
        await until(deadline)
        assert (await memory.graph(person, user_id="g"))["relations"] == []
        found = await memory.search(f"where does {person} stay", user_id="g", threshold=0)
        assert found["results"] == [] and found.get("relations", []) == []
        assert (await memory.maintain())["expired"] == 1
    assert occurrences(config.data_dir, [place, person]) == []


async def test_background_inference_keeps_the_expiry(tmp_path: Path, fake: FakeLLM) -> None:
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    async with AsyncMemory(config) as memory:
        fake.push({"memory": [{"event": "ADD", "text": "The user is in Lisbon this week"}]})
        pending = await memory.add("I'm in Lisbon this week", user_id="u", expires_at="7d")
        assert pending["pending"] is True
        assert (await memory.get(pending["results"][0]["id"]))["expires_at"] == pending["expires_at"]
        await memory.flush_inference()
        [fact] = (await memory.get_all(user_id="u"))["results"]
        assert fact["memory"] == "The user is in Lisbon this week" and fact["expires_at"] == pending["expires_at"]
        assert "_memorch" not in fact["metadata"] or "expires_at" not in fact["metadata"]["_memorch"]


async def test_expiry_over_mcp(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    word = token()
    async with Client(build_server(MemoryConfig(data_dir=data_dir, graph="off"))) as client:
        await client.call_tool("add_memory", {"text": "warm-up"})
        await client.call_tool("search_memories", {"query": "warm"})  # LanceDB opened before the clock starts
        refused = await client.call_tool("add_memory", {"text": "Gone soon", "expires_at": "someday"})
        assert refused.is_error and refused.content[0].text.startswith("[INVALID_EXPIRY]")
        deadline = time.monotonic() + SHORT_S
        added = await client.call_tool("add_memory", {"text": f"Parked on level {word} today", "expires_at": "3s"})
        memory_id = added.structured_content["results"][0]["id"]
        lasting = await client.call_tool("add_memory", {"text": "Dentist on Tuesday", "expires_at": "1d"})
        lasting_id = lasting.structured_content["results"][0]["id"]
        listed = (await client.call_tool("list_memories", {})).structured_content["results"]
        assert {r["id"]: r.get("expires_at") for r in listed}[lasting_id] == lasting.structured_content["expires_at"]
        cleared = await client.call_tool(
            "update_memory", {"memory_id": lasting_id, "text": "Dentist on Tuesday", "expires_at": "never"}
        )
        assert not cleared.is_error
        await until(deadline)
        found = await client.call_tool("search_memories", {"query": f"parked level {word}", "threshold": 0})
        assert memory_id not in {r["id"] for r in found.structured_content["results"]}
        got = await client.call_tool("get_memory", {"memory_id": memory_id})
        assert got.is_error and got.content[0].text.startswith("[MEMORY_EXPIRED]")
        kept = (await client.call_tool("get_memory", {"memory_id": lasting_id})).structured_content
        assert "expires_at" not in kept


def test_the_sync_facade_forwards_expiry(mem: Memory) -> None:
    added = mem.add("Out of office this week", user_id="u", expires_at="7d")
    assert mem.get(added["results"][0]["id"])["expires_at"] == added["expires_at"]
    assert mem.maintain()["expired"] == 0


async def test_export_and_import_keep_the_expiry(amem: AsyncMemory, tmp_path: Path) -> None:
    added = await amem.add("Conference badge pickup at gate B", user_id="u", expires_at="30d")
    path = tmp_path / "out.jsonl"
    await amem.export_memories(path)
    line = json.loads(path.read_text().splitlines()[0])
    assert line["expires_at"] == added["expires_at"]
    async with AsyncMemory(data_dir=tmp_path / "other", graph="off") as other:
        await other.import_memories([line])
        assert (await other.get(line["id"]))["expires_at"] == added["expires_at"]


def test_the_ledgers_hide_expired_memories(ledger: Ledger) -> None:  # noqa: F811 - the fixture imported above
    """Both ledgers: an expired memory is left out of list, the repeat check, ``as_of``, relations
    and export from its expiry on, and ``expired_ids`` names it; a live one is returned with it."""
    scope, vector = Scope(user_id="u"), np.ones(4, dtype=np.float32) / 2
    gone = new_record("Gone text", vector, scope, {}, utc_now())
    gone.expires_at = stamp(datetime.now(UTC) - timedelta(microseconds=1))  # stored as imported, then past
    live = new_record("Live text", vector, scope, {}, utc_now())
    live.expires_at = stamp(datetime.now(UTC) + timedelta(hours=1))
    relation = {"source": "A", "source_type": "", "relationship": "knows", "destination": "B", "destination_type": ""}
    ledger.apply([Change("ADD", gone, relations=(relation,)), Change("ADD", live)], ["vectors"])
    after = utc_now()
    assert ledger.expired_ids(utc_now()) == {gone.id}
    assert [r.id for r in ledger.list(scope, None, 10)] == [live.id]
    assert ledger.list(scope, None, 10)[0].expires_at == live.expires_at
    assert ledger.find_by_hash(scope, gone.hash) is None and ledger.find_by_hash(scope, live.hash) is not None
    assert [e.memory_id for e, _ in ledger.versions_at(scope, after, 10)] == [live.id]
    assert ledger.relations_touching(scope, ["A"], [], 10) == []
    assert [row["id"] for page in ledger.export_pages(scope) for row in page] == [live.id]
    record = ledger.get(gone.id)  # the id still reads (maintenance purges it); the reads above hide it
    assert record is not None and record.expired(utc_now()) and not record.expired(stamp(datetime(2000, 1, 1)))


def test_an_older_sqlite_ledger_gains_the_expiry_column(tmp_path: Path) -> None:
    path = tmp_path / "memorch.db"
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as conn:  # the ledger as versions before expiry made it
        conn.execute("DROP INDEX memories_expiry")
        conn.execute("ALTER TABLE memories DROP COLUMN expires_at")
        conn.execute(
            "INSERT INTO memories (id, memory, hash, user_id, created_at, updated_at)"
            " VALUES ('m1', 'kept through the upgrade', 'h', 'u', '2025-01-01', '2025-01-01')"
        )
    upgraded = SQLiteLedger(path)
    try:
        kept = upgraded.get("m1")
        assert kept is not None and kept.memory == "kept through the upgrade" and kept.expires_at is None
        assert [r.id for r in upgraded.list(Scope(user_id="u"), None, 10)] == ["m1"]
        with upgraded._read() as conn:
            assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'memories_expiry'").fetchone()
    finally:
        upgraded.close()


async def test_a_restored_deletion_keeps_its_expiry_unless_it_passed(amem: AsyncMemory) -> None:
    """Restore brings a deleted memory back with the expiry it had; after that time it stays
    deleted (MEMORY_EXPIRED, nothing written), as a memory that expired undeleted is forgotten."""
    await warm(amem)
    kept = await amem.add("Dentist on Tuesday at nine", user_id="u", expires_at="1h")
    kept_id = kept["results"][0]["id"]
    await amem.delete(kept_id)
    await amem.restore(kept_id)
    assert (await amem.get(kept_id))["expires_at"] == kept["expires_at"]
    plain = (await amem.add("I like plums", user_id="u"))["results"][0]["id"]
    await amem.delete(plain)
    await amem.restore(plain)
    assert "expires_at" not in await amem.get(plain)

    deadline = time.monotonic() + 2
    short = (await amem.add("Parcel locker code 5521", user_id="u", expires_at="2s"))["results"][0]["id"]
    await amem.delete(short)
    await until(deadline)
    events = await amem.history(short)
    with pytest.raises(MemoryNotFoundError) as refused:
        await amem.restore(short)
    assert refused.value.error_code == "MEMORY_EXPIRED" and refused.value.details["memory_id"] == short
    assert await amem.history(short) == events
    with pytest.raises(MemoryNotFoundError):
        await amem.get(short)


async def test_imports_take_an_items_expiry_or_the_scopes_default(tmp_path: Path) -> None:
    exported = {
        "id": "0b7e7a52-3f5c-4d0e-9a59-4c1f2b3d4e5f",
        "memory": "Exported run note",
        "user_id": "u",
        "run_id": "r2",
        "created_at": "2025-01-02T03:04:05+00:00",
        "history": [
            {
                "id": "5d1c0a8e-2b7f-4a51-8e0c-6f3a9b2c1d0e",
                "event": "ADD",
                "new_memory": "Exported run note",
                "created_at": "2025-01-02T03:04:05+00:00",
            }
        ],
    }
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", default_expiry={"run_id": "2h"})
    async with AsyncMemory(config) as memory:
        before = await memory.stats()
        with pytest.raises(ValidationError) as refused:
            await memory.import_memories(
                [{"memory": "fine", "user_id": "u"}, {"memory": "x", "user_id": "u", "expires_at": "soon"}]
            )
        assert refused.value.error_code == "INVALID_EXPIRY" and refused.value.details["item"] == 2
        assert await memory.stats() == before  # a bad item: nothing imported
        items = [
            {"memory": "Session scratch note", "user_id": "u", "run_id": "r1"},
            {"memory": "Lasting fact", "user_id": "u"},
            {"memory": "Own expiry note", "user_id": "u", "run_id": "r1", "expires_at": "10m"},
            exported,
        ]
        assert (await memory.import_memories(items))["imported"] == 4
        listed = {r["memory"]: r.get("expires_at") for r in (await memory.get_all(user_id="u"))["results"]}
    two_hours = stamp(datetime.now(UTC) + timedelta(hours=2))[:13]
    assert listed["Session scratch note"][:13] == listed["Exported run note"][:13] == two_hours
    assert listed["Lasting fact"] is None
    assert listed["Own expiry note"] < listed["Session scratch note"]  # the item's own wins


async def test_delete_all_with_purge_says_expired_ones_apart(amem: AsyncMemory, config: MemoryConfig) -> None:
    """They go with the rest, but were forgotten already: not counted as deleted, not listed
    among the users that hold memories (a newcomer's trial)."""
    await warm(amem)
    secret = token()
    deadline = time.monotonic() + SHORT_S
    await amem.add(f"Door code {secret}", user_id="u", expires_at=f"{SHORT_S:g}s", infer=False)
    kept = (await amem.add("I like rain", user_id="u", infer=False))["results"][0]["id"]
    await amem.add(f"Old code {token()}", user_id="gone", expires_at=f"{SHORT_S:g}s", infer=False)
    await until(deadline)
    assert {u["user_id"] for u in await amem.users()} == {"u", "warm"}
    result = await amem.delete_all(purge=True, user_id="u")
    assert result["deleted"] == 1 and result["ids"] == [kept]
    assert result["message"] == "Purged 1 memory for good, 1 expired one too"
    assert occurrences(config.data_dir, [secret]) == []
