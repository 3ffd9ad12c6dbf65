"""Repair never destroys the last good copy (issue 14, part 6).

Each test damages a real data directory the way a user's could be damaged (a corrupt or deleted
graph, a deleted or broken LanceDB directory, a truncated ledger) and checks that every memory
is still found afterwards, or that memorch refuses with a typed error naming the way back.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memorch import Memory, MemoryConfig, StorageError
from memorch.cli._main import app
from memorch.maintenance._backup import backup, restore_ledger
from memorch.storage import rebuild
from memorch.storage.history import SQLiteLedger
from memorch.storage.rebuild import stored_row_count
from memorch.storage.vectors import TABLE, LanceVectorIndex

N = 30
STAMP = "2026-11-25T10:00:00+00:00"


def _config(path: Path, graph: str = "on") -> MemoryConfig:
    return MemoryConfig(data_dir=path, graph=graph, embedder="static", graph_flush_delay=0)


def _items(n: int = N) -> list[dict[str, object]]:
    """Export-format items: each memory carries one relation, so the graph has something."""
    items = []
    for i in range(n):
        text = f"fact {i}: person{i} keeps llamas on the hill number {i}"
        items.append(
            {
                "id": str(uuid.uuid4()),
                "memory": text,
                "user_id": "alice",
                "created_at": STAMP,
                "updated_at": STAMP,
                "relations": [{"source": f"person{i}", "relationship": "keeps", "destination": f"llama{i % 5}"}],
                "history": [{"id": str(uuid.uuid4()), "event": "ADD", "new_memory": text, "created_at": STAMP}],
            }
        )
    return items


def _seed(config: MemoryConfig, n: int = N) -> None:
    with Memory(config) as memory:
        memory.import_memories(_items(n))
        memory.flush_graph()


def _found(memory: Memory) -> int:
    return len(memory.search("llamas on the hill", user_id="alice", limit=100, threshold=0)["results"])


def test_reindex_with_a_corrupt_graph_rebuilds_it_and_keeps_search(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    _seed(config)
    graph = config.data_dir / "graph.kuzu"
    graph.write_bytes(b"\xff" * 4096 + graph.read_bytes()[4096:])  # a broken header
    with Memory(config) as memory:
        assert memory.reindex()["memories"] == N
        assert _found(memory) == N
        assert memory.stats()["relations"] == N
    assert not list(config.data_dir.glob("*.rebuild*")) and not list(config.data_dir.glob("*.old"))


def test_a_failing_graph_rebuild_keeps_the_old_graph_and_the_new_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path / "data")
    _seed(config)

    def no_space(self: object, work: object) -> None:
        raise StorageError("the Kuzu graph failed (No space left on device)", error_code="GRAPH_ERROR")

    monkeypatch.setattr(rebuild.GraphProcess, "apply", no_space, raising=False)
    with Memory(config) as memory:
        with pytest.raises(StorageError) as caught:
            memory.reindex()
        assert caught.value.error_code == "REINDEX_FAILED"
        assert "graph" in caught.value.message and "kept its previous copy" in caught.value.message
        assert _found(memory) == N  # the vector index was rebuilt regardless
        stats = memory.stats()
        assert stats["relations"] == N and stats["pending_index"] == 0  # the old graph answers


def test_an_incomplete_vector_rebuild_is_not_swapped_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path / "data", graph="off")
    _seed(config)
    original = LanceVectorIndex.append

    def drops_one(self: LanceVectorIndex, records: list[object]) -> None:
        original(self, records[:-1])  # type: ignore[arg-type]

    monkeypatch.setattr(LanceVectorIndex, "append", drops_one)
    with Memory(config) as memory:
        with pytest.raises(StorageError) as caught:
            memory.reindex()
        assert caught.value.details == {"vector index": "REBUILD_INCOMPLETE"}
        assert _found(memory) == N
    assert not (config.data_dir / "lance.rebuild").exists()


def test_a_deleted_vector_index_is_reported_then_rebuilt_on_open(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", graph="off")
    _seed(config)
    shutil.rmtree(config.data_dir / "lance")
    with Memory(config) as memory:
        checks = {c["name"]: c for c in memory.doctor()}
        assert not checks["vector index (LanceDB)"]["ok"]
        assert "INDEX_BEHIND" in checks["vector index (LanceDB)"]["detail"]
        assert _found(memory) == N  # the first search rebuilt it from the ledger (no model call)
        checks = {c["name"]: c for c in memory.doctor()}
        assert checks["vector index (LanceDB)"]["ok"]


def test_doctor_counts_queued_index_writes_apart(tmp_path: Path) -> None:
    """Index rows still queued in the ledger (a write's ``index_flush_delay``, or a process that
    stopped first) are named as such, not as "as many as the ledger's memories"."""
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="static", index_flush_delay=5.0)
    with Memory(config) as memory:
        memory.add("I play the violin", user_id="alice", infer=False)
        checks = {c["name"]: c for c in memory.doctor()}
        assert "0 vectors and 1 queued in the ledger" in checks["vector index (LanceDB)"]["detail"]
        assert "1 memory, 1 index write queued" in checks["ledger (SQLite)"]["detail"]
    with Memory(config) as memory:  # closing wrote it
        checks = {c["name"]: c for c in memory.doctor()}
        assert "1 vector, as many as the ledger's memories" in checks["vector index (LanceDB)"]["detail"]


def test_a_broken_lance_manifest_is_repaired_by_reindex(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", graph="off")
    _seed(config)
    for manifest in (config.data_dir / "lance").glob("*/_versions/*"):
        manifest.write_text("garbage")
    env = {"MEMORCH_DATA_DIR": str(config.data_dir), "MEMORCH_GRAPH": "off", "MEMORCH_EMBEDDER": "static"}
    shown = CliRunner().invoke(app, ["stats"], env=env)
    assert shown.exit_code == 1 and "VECTOR_STORE_OPEN_FAILED" in shown.stderr
    assert f"memories                     {N}" in shown.stdout and "problems" not in shown.stdout
    with Memory(config) as memory:
        with pytest.raises(StorageError):
            memory.search("llamas", user_id="alice")
        assert not {c["name"]: c for c in memory.doctor()}["vector index (LanceDB)"]["ok"]
        # The ledger's counts still come, the index's failure beside them (stats failed whole).
        stats = memory.stats()
        assert stats["memories"] == N and [p["error_code"] for p in stats["problems"]] == ["VECTOR_STORE_OPEN_FAILED"]
        assert "memorch reindex" in stats["problems"][0]["suggestion"]
        # A write still goes to the ledger (the only copy that matters), its index work queued.
        added = memory.add("Alice also keeps two alpacas", user_id="alice", infer=False)["results"][0]
        assert added["event"] == "ADD" and memory.get(added["id"])["memory"] == "Alice also keeps two alpacas"
        assert memory.stats()["pending_index"] >= 1
        with pytest.raises(StorageError):
            memory.search("alpacas", user_id="alice")  # a search still says the index is broken
        assert memory.reindex()["memories"] == N + 1
        assert memory.stats()["problems"] == []
        assert _found(memory) == N + 1  # every memory of the scope, at threshold 0
        assert memory.search("alpacas", user_id="alice")["results"][0]["id"] == added["id"]


def test_a_purge_with_a_broken_index_is_finished_by_the_reindex(tmp_path: Path) -> None:
    """A purge the broken index stops is said as half done, and the reindex (the repair its
    error names) is not stopped by it: it rebuilds, then finishes the purge."""
    from .test_purge import occurrences

    config = _config(tmp_path / "data", graph="off")
    _seed(config)
    with Memory(config) as memory:
        secret = memory.add("My bank PIN is QX4471ZK", user_id="alice", infer=False)["results"][0]["id"]
        memory.search("bank PIN", user_id="alice")  # its row written
    for manifest in (config.data_dir / "lance").glob("*/_versions/*"):
        manifest.write_text("garbage")
    with Memory(config) as memory:
        with pytest.raises(StorageError) as failed:
            memory.delete(secret, purge=True)
        assert failed.value.details["purged_in_ledger"] == [secret]
        assert "done in the ledger" in failed.value.message
        assert [e["event"] for e in memory.history(secret)] == ["PURGE"]
        assert memory.reindex()["memories"] == N
        assert memory.stats()["pending_index"] == 0  # the purge finished too
        assert _found(memory) == N
    assert occurrences(config.data_dir, ["QX4471ZK", "qx4471zk"]) == []


def test_a_deleted_graph_is_rebuilt_from_the_ledger(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    _seed(config)
    (config.data_dir / "graph.kuzu").unlink()
    with Memory(config) as memory:
        assert not {c["name"]: c for c in memory.doctor()}["graph (Kuzu)"]["ok"]
        assert _found(memory) == N  # opening queued the graph again
        assert memory.stats()["relations"] == N


@pytest.mark.parametrize("first", ["graph", "doctor"])
def test_a_deleted_graph_is_rebuilt_whatever_is_asked_first(tmp_path: Path, first: str) -> None:
    """`memorch graph` as the first command after graph.kuzu was deleted created an empty graph
    that was never rebuilt (and doctor then said ok): a newcomer's trial."""
    config = _config(tmp_path / "data")
    _seed(config)
    (config.data_dir / "graph.kuzu").unlink()
    with Memory(config) as memory:
        if first == "doctor":
            assert not {c["name"]: c for c in memory.doctor()}["graph (Kuzu)"]["ok"]
        assert memory.graph("person1", user_id="alice")["relations"]
        assert memory.stats()["relations"] == N
        assert {c["name"]: c for c in memory.doctor()}["graph (Kuzu)"]["ok"]


def test_doctor_finds_an_empty_graph_beside_a_ledger_of_relations(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    _seed(config)
    (config.data_dir / "graph.kuzu").unlink()
    with Memory(config.with_overrides(graph="off")) as memory:
        memory.add("nothing to relate", user_id="bob", infer=False)
    from memorch.storage.graph import KuzuGraph

    assert KuzuGraph(config.data_dir / "graph.kuzu", config.data_dir / "graph.lock").counts()["relations"] == 0
    with Memory(config) as memory:
        check = {c["name"]: c for c in memory.doctor()}["graph (Kuzu)"]
        assert not check["ok"] and "empty" in check["detail"], check
        memory.reindex()
        assert {c["name"]: c for c in memory.doctor()}["graph (Kuzu)"]["ok"]


def test_a_truncated_ledger_is_refused_and_restored_from_a_backup(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", graph="off")
    _seed(config)
    ledger = SQLiteLedger(config.data_dir / "memorch.db")
    backup(ledger, tmp_path / "snap")
    ledger.close()
    (config.data_dir / "memorch.db").write_bytes(b"")
    with Memory(config) as memory:
        for attempt in (lambda: memory.search("llamas", user_id="alice"), memory.stats, memory.reindex):
            with pytest.raises(StorageError) as caught:
                attempt()
            assert caught.value.error_code == "LEDGER_BEHIND_INDEX"
            assert "restore-backup" in (caught.value.suggestion or "")
            assert caught.value.details == {"ledger_memories": 0, "index_rows": N}
    assert stored_row_count(config.data_dir / "lance", TABLE) == N  # the last copy is still there
    restore_ledger(config, tmp_path / "snap", force=True)
    with Memory(config) as memory:
        assert memory.reindex()["memories"] == N
        assert _found(memory) == N


def test_reindex_force_accepts_a_smaller_ledger(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", graph="off")
    _seed(config)
    (config.data_dir / "memorch.db").write_bytes(b"")
    with Memory(config) as memory:
        assert memory.reindex(force=True)["memories"] == 0
        assert _found(memory) == 0
        memory.add("a fresh start", user_id="alice", infer=False)
    assert stored_row_count(config.data_dir / "lance", TABLE) == 1
