"""Two processes on one data directory (two assistant windows): a memory one process has
stored is found by the other's search within a second, with no write of its own in between."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from memorch import Memory, MemoryConfig

VISIBLE_WITHIN_S = 1.0
GIVE_UP_S = 10.0

# Process B: opens the store, searches once (so its LanceDB table is open at that version),
# then, told when A's add was acknowledged, searches until it finds the new memory.
READER = textwrap.dedent(
    """
    import json, sys, time
    from memorch import Memory, MemoryConfig

    memory = Memory(MemoryConfig(data_dir=sys.argv[1], graph="off"))
    query, user = sys.argv[2], sys.argv[3]
    first = memory.search(query, user_id=user, threshold=0.0)["results"]
    print(json.dumps({"ready": [r["memory"] for r in first]}), flush=True)
    acked, text = json.loads(sys.stdin.readline())
    while time.time() - acked < float(sys.argv[4]):
        found = [r["memory"] for r in memory.search(query, user_id=user, threshold=0.0)["results"]]
        if text in found:
            print(json.dumps({"found_after": time.time() - acked}), flush=True)
            break
        time.sleep(0.02)
    else:
        print(json.dumps({"found_after": None}), flush=True)
    memory.close()
    """
)


def test_a_write_in_one_process_is_searched_in_another(tmp_path: Path) -> None:
    # The writer would write its vector rows only 5 s later (or before its own next search):
    # the other process's search writes them (Store.searchable), so it finds the memory at once.
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", index_flush_delay=5.0)
    text = "The launch code word is marmalade"
    with Memory(config) as a:
        a.add("I keep bees on the roof", user_id="u", infer=False)
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(config.data_dir), "launch code word marmalade", "u", str(GIVE_UP_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            ready = json.loads(reader.stdout.readline())
            assert text not in ready["ready"]
            a.add(text, user_id="u", infer=False)
            reader.stdin.write(json.dumps([time.time(), text]) + "\n")
            reader.stdin.flush()
            answer = json.loads(reader.stdout.readline())
            assert reader.wait(timeout=60) == 0
        finally:
            if reader.poll() is None:
                reader.kill()
    assert answer["found_after"] is not None, "the other process never found the new memory"
    assert answer["found_after"] < VISIBLE_WITHIN_S


def test_a_write_starts_from_the_latest_version_not_the_process_view(tmp_path: Path) -> None:
    """Process B's view of the table may be up to FRESHNESS_S old. A delete evaluated against
    that view would miss the row A appended since, and the row would outlive its memory (the
    next open then refuses with LEDGER_BEHIND_INDEX); an update would keep A's row beside B's."""
    import dataclasses

    import numpy as np

    from memorch.domain._records import new_record, utc_now
    from memorch.storage.base import Scope
    from memorch.storage.vectors import LanceVectorIndex

    def record(text: str, memory_id: str | None = None) -> object:
        made = new_record(text, np.ones(4, dtype=np.float32) / 2, Scope("u"), {}, utc_now())
        return made if memory_id is None else dataclasses.replace(made, id=memory_id)

    a = LanceVectorIndex(tmp_path / "lance", 4)
    a.upsert([record("seed")])
    b = LanceVectorIndex(tmp_path / "lance", 4, freshness_s=3600)  # a view that never refreshes itself
    assert b.count() == 1
    added, kept = record("added by A"), record("kept by A")
    a.upsert([added, kept])
    b.delete([added.id])
    b.upsert([record("edited by B", kept.id)])
    rows = LanceVectorIndex(tmp_path / "lance", 4)._table.to_arrow().select(["id", "memory"]).to_pylist()
    assert added.id not in [r["id"] for r in rows]
    assert [r["memory"] for r in rows if r["id"] == kept.id] == ["edited by B"]
    for index in (a, b):
        index.close()


def test_a_search_never_waits_behind_another_process_writing_the_index(tmp_path: Path) -> None:
    """Another process (here: another instance on the same directory) owes rows while a third
    party holds the index lock (a long flush or a reindex): the search answers at once, finding
    the new memory through the embeddings it holds from the ledger (the vector signal; the text
    index gets the row once the lock is free)."""
    from filelock import FileLock

    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", index_flush_delay=5.0)
    with Memory(config) as writer, Memory(config) as reader:
        reader.search("anything", user_id="u")  # opened and ready before the write
        writer.add("The spare key is under the blue flowerpot", user_id="u", infer=False)
        busy = FileLock(str(config.data_dir / "index.lock"))
        with busy:
            started = time.monotonic()
            found = reader.search("where is the spare key", user_id="u", threshold=0.0)["results"]
            assert time.monotonic() - started < 5.0, "the search waited for the index lock"
            assert [r["memory"] for r in found] == ["The spare key is under the blue flowerpot"]
            assert reader.async_memory.engine.components.vectors.count() == 0  # its index row is not written yet
        found = reader.search("where is the spare key", user_id="u", threshold=0.0)["results"]
        assert [r["memory"] for r in found] == ["The spare key is under the blue flowerpot"]
        assert reader.async_memory.engine.components.vectors.count() == 1
