"""History retention (issue 27 item 2): with ``MEMORCH_HISTORY_RETENTION``, maintenance removes
the text of history events older than that, except what a memory says now, leaving the events
themselves (kind and times) so the timeline stays honest; no byte of a removed text is left under
the data directory. Memories changed within the retention keep their history, restore and
``as_of``. Also: a process runs that maintenance by itself, without being asked."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._records import new_record, replaced, utc_now
from memorch.errors import ValidationError
from memorch.models._embeddings import text_hash
from memorch.storage.base import Change, Scope
from memorch.storage.expiry import RETENTION_REASON, stamp
from memorch.storage.ledger import Ledger

from .test_ledger_backends import ledger  # noqa: F401 - the SQLite and PostgreSQL ledgers, one test each
from .test_purge import occurrences, token

RETENTION = timedelta(days=30)


async def test_old_history_text_is_removed_to_the_last_byte(tmp_path: Path) -> None:
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", history_retention="30d")
    old, current, deleted = token(), token(), token()
    async with AsyncMemory(config) as memory:
        changed = (await memory.add(f"My parking spot is {old}", user_id="u"))["results"][0]["id"]
        await memory.update(changed, f"My parking spot is {current}")
        gone = (await memory.add(f"My old alarm code is {deleted}", user_id="u"))["results"][0]["id"]
        await memory.delete(gone)
        steady = (await memory.add("I keep bees on the roof", user_id="u"))["results"][0]["id"]
        await asyncio.sleep(0.01)
        cutoff = datetime.now(UTC)  # everything above is older than the retention at cutoff + RETENTION
        await asyncio.sleep(0.01)
        recent = (await memory.add("I like tea", user_id="u"))["results"][0]["id"]
        await memory.update(recent, "I like green tea")
        between = datetime.now(UTC).isoformat()
        await memory.update(recent, "I like green tea with mint")
        await memory.search("parking", user_id="u")  # every row written to the index
        assert occurrences(config.data_dir, [old, deleted]), "the test must see the texts before maintenance"

        async def writes() -> None:
            for i in range(5):
                await memory.add(f"Another memory {i} written during maintenance", user_id="u")

        async def reads() -> None:
            for _ in range(5):
                await memory.search("parking spot", user_id="u")
                await memory.get_all(user_id="u")

        swept, *_ = await asyncio.gather(memory.engine.maintain(cutoff + RETENTION), writes(), reads(), reads())
        assert swept["expired"] == 0 and swept["history_events_cleared"] == 5  # ADD+UPDATE, ADD+DELETE, ADD
        assert occurrences(config.data_dir, [old, deleted]) == []

        # What the memories say now stays, and is found.
        hits = (await memory.search("parking spot", user_id="u", threshold=0))["results"]
        assert hits[0]["id"] == changed and hits[0]["memory"] == f"My parking spot is {current}"
        events = await memory.history(changed)
        assert [(e["event"], e["old_memory"], e["new_memory"]) for e in events] == [
            ("ADD", None, None),
            ("UPDATE", None, f"My parking spot is {current}"),
        ]
        assert all(e["reason"] == RETENTION_REASON for e in events)  # type: ignore[typeddict-item]
        for memory_id in (changed, gone):
            with pytest.raises(ValidationError) as refused:
                await memory.restore(memory_id)
            assert refused.value.error_code == "HISTORY_EXPIRED" and refused.value.suggestion
        assert [(e["event"], e["old_memory"], e["new_memory"]) for e in await memory.history(gone)] == [
            ("ADD", None, None),
            ("DELETE", None, None),
        ]
        assert (await memory.history(steady))[0]["new_memory"] == "I keep bees on the roof"
        now = await memory.get_all(user_id="u", as_of=datetime.now(UTC).isoformat(), limit=100)
        assert {steady, changed} <= {r["id"] for r in now["results"]} and gone not in {r["id"] for r in now["results"]}

        # Changed within the retention: history, restore and as_of as before.
        assert [e["new_memory"] for e in await memory.history(recent)] == [
            "I like tea",
            "I like green tea",
            "I like green tea with mint",
        ]
        then = await memory.get_all(user_id="u", as_of=between)
        assert {r["id"]: r["memory"] for r in then["results"]}[recent] == "I like green tea"
        assert (await memory.restore(recent))["memory"] == "I like green tea"
        again = await memory.engine.maintain(cutoff + RETENTION)
        assert again["history_events_cleared"] == 0  # done once


def test_the_ledgers_strip_history(ledger: Ledger) -> None:  # noqa: F811 - the fixture imported above
    """Both ledgers: events before the cutoff lose every text but the memory's current one, their
    relations and reason; the cache forgets the texts removed; later events are untouched."""
    scope, vector = Scope(user_id="u"), np.ones(4, dtype=np.float32) / 2
    first = new_record("Old text", vector, scope, {}, utc_now())
    relation = {"source": "A", "source_type": "", "relationship": "knows", "destination": "B", "destination_type": ""}
    ledger.apply([Change("ADD", first, relations=(relation,))], ["vectors"])
    second = replaced(first, "Current text", vector, None)
    ledger.apply([Change("UPDATE", second, old_memory=first.memory, relations=())], ["vectors"])
    time.sleep(0.001)
    cutoff = utc_now()
    time.sleep(0.001)
    third = replaced(second, "Newest text", vector, None)
    ledger.apply([Change("UPDATE", third, old_memory=second.memory)], ["vectors"])
    ledger.cache_vectors("m", {text_hash(t): vector for t in ("Old text", "Current text", "Newest text")})

    done = ledger.strip_history(cutoff, text_hash)
    assert done.events == 2 and done.memory_ids == [first.id] and done.relations is True
    events = ledger.history(first.id)
    assert [(e.old_memory, e.new_memory) for e in events] == [
        (None, None),
        (None, None),  # "Current text" is no longer current: the newest event keeps it, within retention
        ("Current text", "Newest text"),
    ]
    assert [e.reason for e in events[:2]] == [RETENTION_REASON] * 2 and events[1].relations_before is None
    cached = ledger.cached_vectors("m", [text_hash(t) for t in ("Old text", "Current text", "Newest text")])
    assert set(cached) == {text_hash("Newest text")}  # what a memory says now stays
    assert ledger.strip_history(cutoff, text_hash).events == 0

    # A deletion's record of the metadata goes with its text.
    gone = new_record("Deleted text", vector, scope, {"topic": "private"}, utc_now())
    ledger.apply([Change("ADD", gone)], ["vectors"])
    ledger.apply([Change("DELETE", gone, old_memory=gone.memory)], ["vectors"])
    assert ledger.history(gone.id)[-1].metadata == {"topic": "private"}
    time.sleep(0.001)
    ledger.strip_history(utc_now(), text_hash)
    assert [e.metadata for e in ledger.history(gone.id)] == [None, None]


async def test_a_process_sweeps_by_itself(tmp_path: Path) -> None:
    """No call to ``maintain``: the first operation of a process starts a sweep, which purges a
    memory that expired while no process ran."""
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off")
    word = token()
    async with AsyncMemory(config) as memory:
        added = await memory.add(f"Visiting {word} until tonight", user_id="u", expires_at="1s")
        memory_id = added["results"][0]["id"]
        await memory.engine.sweeper.close()  # the first sweep ran before the expiry: nothing to purge
    await asyncio.sleep(max(0.0, datetime.fromisoformat(added["expires_at"]).timestamp() - time.time()) + 0.05)
    async with AsyncMemory(config) as memory:
        assert (await memory.get_all(user_id="u"))["results"] == []
        await memory.engine.sweeper.close()
        assert [e["event"] for e in await memory.history(memory_id)] == ["PURGE"]
    assert occurrences(config.data_dir, [word]) == []


def test_retention_is_checked(tmp_path: Path) -> None:
    from memorch.errors import ConfigurationError

    for bad in ("90", "90 days", "0d", "-1d", "1y"):
        with pytest.raises(ConfigurationError):
            MemoryConfig(data_dir=tmp_path, history_retention=bad)
    assert MemoryConfig(data_dir=tmp_path, history_retention="12w").retention == timedelta(weeks=12)
    assert MemoryConfig(data_dir=tmp_path).retention is None
    assert stamp(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000+00:00"  # naive: UTC
