"""Durability: memories survive restarts and crashes; owed index work is replayed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._records import deletion, new_record
from memorch.engine._store import VECTORS
from memorch.storage.base import Change, Scope


async def test_memories_survive_a_restart(config: MemoryConfig) -> None:
    first = AsyncMemory(config)
    memory_id = (await first.add("I am allergic to peanuts", user_id="r"))["results"][0]["id"]
    await first.update(memory_id, "I am allergic to peanuts and kiwis")
    await first.close()

    second = AsyncMemory(config)
    assert (await second.get(memory_id))["memory"] == "I am allergic to peanuts and kiwis"
    assert (await second.search("fruit allergy", user_id="r"))["results"][0]["id"] == memory_id
    assert [e["event"] for e in await second.history(memory_id)] == ["ADD", "UPDATE"]
    await second.close()


async def test_pending_index_work_is_replayed(config: MemoryConfig) -> None:
    """A write that reached the ledger but not LanceDB (a crash in between) is indexed on start."""
    first = AsyncMemory(config)
    kept = (await first.add("I keep bees in my garden", user_id="p"))["results"][0]["id"]
    doomed = (await first.add("I collect stamps", user_id="p"))["results"][0]["id"]
    await first.engine.index_sync.flush()  # their rows are written a moment after the adds
    components = first.engine.components
    vector = components.embedder.embed(["My sister lives in Oslo"])[0]
    scope = Scope(user_id="p")
    record = new_record("My sister lives in Oslo", vector, scope, {}, "2026-01-01T00:00:00+00:00")
    # Ledger-only writes, as if the process died before touching the index:
    components.ledger.apply([Change("ADD", record)], [VECTORS])
    components.ledger.apply([deletion(components.ledger.get(doomed))], [VECTORS])
    assert set(components.ledger.pending(VECTORS)) == {record.id, doomed}
    assert record.id not in components.vectors.all_ids() and doomed in components.vectors.all_ids()
    await first.close()

    fresh = AsyncMemory(config)  # the first thing after a crash is a read-only command
    assert (await fresh.stats())["pending_index"] == 0
    await fresh.close()

    second = AsyncMemory(config)
    hits = (await second.search("where does my sister live?", user_id="p", limit=1, threshold=0))["results"]
    assert hits[0]["id"] == record.id
    assert doomed not in second.engine.components.vectors.all_ids()
    assert kept in second.engine.components.vectors.all_ids()
    assert second.engine.components.ledger.pending(VECTORS) == []
    await second.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from memorch import AsyncMemory, MemoryConfig

    async def main():
        memory = AsyncMemory(MemoryConfig(data_dir=sys.argv[1], graph="off"))
        for i in range(1000):
            result = await memory.add(f"fact number {i}: item {i * 7919 % 1000} is kept in box {i}", user_id="crash")
            print(result["results"][0]["id"], flush=True)  # acknowledged

    asyncio.run(main())
    """
)


async def test_kill_minus_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acknowledged: list[str] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while len(acknowledged) < 25 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acknowledged) >= 25, "the writer did not get going"

    memory = AsyncMemory(MemoryConfig(data_dir=data, graph="off"))
    stored = {r["id"] for r in (await memory.get_all(user_id="crash", limit=1000))["results"]}
    assert set(acknowledged) <= stored
    # Every stored memory is searchable (the index caught up) and no orphan vector remains.
    await memory.search("box", user_id="crash")
    assert memory.engine.components.vectors.all_ids() == stored
    last = acknowledged[-1]
    text = (await memory.get(last))["memory"]
    assert (await memory.search(text, user_id="crash", limit=1))["results"][0]["id"] == last
    await memory.close()
    json.dumps(sorted(stored))  # ids are plain strings


async def test_an_index_worker_never_clears_a_newer_change(config: MemoryConfig) -> None:
    """A worker that read a memory before a later change must leave that change queued."""
    memory = AsyncMemory(config)
    memory_id = (await memory.add("version one", user_id="o"))["results"][0]["id"]
    ledger = memory.engine.components.ledger
    record = ledger.get(memory_id)
    ledger.apply([Change("UPDATE", record, old_memory="version one")], [VECTORS])
    stale = ledger.outbox_tokens(VECTORS, [memory_id])  # a worker reads the queue...
    ledger.apply([Change("UPDATE", record, old_memory="version one")], [VECTORS])  # ...a newer change lands
    ledger.clear_pending(VECTORS, stale)  # the worker finishes with what it saw
    assert ledger.pending(VECTORS) == [memory_id]
    ledger.clear_pending(VECTORS, ledger.outbox_tokens(VECTORS, [memory_id]))
    assert ledger.pending(VECTORS) == []
    await memory.close()
