"""A purge a crash interrupted is finished by the next process (forget means gone, also after
kill -9): the ledger's part of a purge commits first, then every LanceDB version that held the
text, the graph file and the ledger's free pages and WAL are cleaned. A stop in between leaves a
``purged`` outbox row, and the next process's first operation finishes the purge (the expiry
sweep, ``Store.owed_purges``) before its ``close`` returns; without it the older LanceDB
versions and the ledger's free pages kept the text until a maintenance pass happened to prune
them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.errors import StorageError
from memorch.storage.vectors import LanceVectorIndex

from .conftest import fake_llm_config
from .fake_llm import FakeLLM
from .test_purge import occurrences, token

# Killed before the index part of the purge, or after it and before the ledger's files are
# scrubbed: (module, class, method) replaced by a SIGKILL in the victim.
KILL_POINTS = {
    "before_the_index_part": ("memorch.storage.vectors", "LanceVectorIndex", "purge"),
    "before_the_scrub": ("memorch.storage.history", "SQLiteLedger", "scrub"),
}

VICTIM = """
import asyncio, importlib, os, signal, sys
from memorch import AsyncMemory, MemoryConfig

module, cls, attr, data_dir, first, second = sys.argv[1:]
setattr(getattr(importlib.import_module(module), cls), attr, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))

async def main():
    memory = AsyncMemory(MemoryConfig(data_dir=data_dir, graph="off"))
    doomed = (await memory.add(f"My locker code is {first}", user_id="u"))["results"][0]["id"]
    await memory.update(doomed, f"My locker code is {second} since Monday")
    await memory.add("I keep bees on the roof", user_id="u")
    await memory.search("locker code", user_id="u")  # every row written to LanceDB
    print(doomed, flush=True)
    await memory.delete(doomed, purge=True)

asyncio.run(main())
"""


def owed_purges(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "memorch.db") as conn:
        return conn.execute("SELECT count(*) FROM index_outbox WHERE target = 'purged'").fetchone()[0]


@pytest.mark.parametrize("kill_at", sorted(KILL_POINTS))
async def test_a_purge_killed_midway_is_finished_by_the_next_process(tmp_path: Path, kill_at: str) -> None:
    data_dir, first, second = tmp_path / "data", token(), token()
    victim = subprocess.run(
        [sys.executable, "-c", VICTIM, *KILL_POINTS[kill_at], str(data_dir), first, second],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    doomed = victim.stdout.strip()
    # The ledger's part committed: the memory is purged there, and its text is still in the files.
    assert owed_purges(data_dir) == 1
    assert occurrences(data_dir, [first, second]), "the test must see the text the crash left"

    memory = AsyncMemory(MemoryConfig(data_dir=data_dir, graph="off"))
    try:
        listed = await memory.get_all(user_id="u")  # the first operation: the sweep starts
        assert [r["memory"] for r in listed["results"]] == ["I keep bees on the roof"]
        assert [e["event"] for e in await memory.history(doomed)] == ["PURGE"]
    finally:
        await memory.close()  # waits for the sweep
    assert occurrences(data_dir, [first, second, "My locker code"]) == []
    assert owed_purges(data_dir) == 0
    assert os.listdir(data_dir)  # the store is still there


async def test_a_purge_whose_index_part_failed_is_finished_graph_file_included(
    tmp_path: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vector part fails (a full disk): the caller is told, and the graph's own queued work
    is drained meanwhile (the relations go, the Kuzu file keeps the entities' names). The next
    sweep finishes the purge: the LanceDB versions, and the graph file rebuilt without them."""
    person, place = token(), token()
    config = fake_llm_config(tmp_path, fake, graph="on", llm_api_key="k")
    memory = AsyncMemory(config)
    try:
        fake.push(
            {
                "memory": [{"event": "ADD", "text": f"{person} hides in {place}"}],
                "relations": [
                    {
                        "fact": 0,
                        "source": person,
                        "source_type": "person",
                        "relationship": "hides_in",
                        "destination": place,
                        "destination_type": "place",
                    }
                ],
            }
        )
        doomed = (await memory.add(f"{person} hides in {place}", user_id="g"))["results"][0]["id"]
        await memory.add("Ann lives in Rome", user_id="g", infer=False)
        await memory.flush_graph()
        await memory.search("hides", user_id="g")  # every row written to LanceDB

        def full_disk(*args: object, **kwargs: object) -> None:
            raise StorageError("No space left on device", error_code="VECTOR_WRITE_FAILED")

        with monkeypatch.context() as patch:
            patch.setattr(LanceVectorIndex, "purge", full_disk)
            with pytest.raises(StorageError):
                await memory.delete(doomed, purge=True)
        assert [e["event"] for e in await memory.history(doomed)] == ["PURGE"]  # the ledger's part held
        await memory.flush_graph()
        assert (await memory.graph(person, user_id="g"))["relations"] == []
        assert occurrences(config.data_dir, [person, place]), "the test must see the text left behind"

        await memory.maintain()
    finally:
        await memory.close()
    assert occurrences(config.data_dir, [person, place]) == []
    assert owed_purges(config.data_dir) == 0


async def test_a_shared_ledgers_sweep_finishes_every_owed_purge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With replicas (a PostgreSQL ledger) a sweep claims the owed purges a batch at a time until
    none is left: one batch per sweep left the rest's text in LanceDB's files until the next
    hourly sweep, and the one after."""
    from memorch.engine import _purge

    from .pg_helpers import fresh_schema

    with fresh_schema() as url:
        config = MemoryConfig(data_dir=tmp_path / "replica", graph="off", ledger_url=url)
        memory = AsyncMemory(config)
        secrets = [token() for _ in range(5)]
        try:
            ids = [
                (await memory.add(f"The vault code is {secret}", user_id="u", infer=False))["results"][0]["id"]
                for secret in secrets
            ]
            await memory.search("vault code", user_id="u")  # every row written to LanceDB

            def full_disk(*args: object, **kwargs: object) -> None:
                raise StorageError("No space left on device", error_code="VECTOR_WRITE_FAILED")

            with monkeypatch.context() as patch:
                patch.setattr(LanceVectorIndex, "purge", full_disk)
                for memory_id in ids:
                    with pytest.raises(StorageError):
                        await memory.delete(memory_id, purge=True)
            assert len(occurrences(config.data_dir, secrets)) >= len(secrets), "the test must see the texts left"
            monkeypatch.setattr(_purge, "REPLAY_BATCH", 2)  # five owed purges: three claims
            assert memory.engine.store.purge_is_owed()

            await memory.maintain()
            assert not memory.engine.store.purge_is_owed()
        finally:
            await memory.close()
        assert occurrences(config.data_dir, secrets) == []
