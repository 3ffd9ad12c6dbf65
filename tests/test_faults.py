"""Faults of the machine under the data directory (issue 14, part 5): a read-only directory, a
full disk, an engine that aborts. Each gives a typed error or keeps working, and nothing
acknowledged is lost.

A read-only directory is made for real: ``chmod`` for a normal user, a read-only bind mount for
root (whom permissions do not stop). A full disk is a small tmpfs when the test runs as root and
may mount one; otherwise ``ENOSPC`` is injected where the engines report it (SQLite's own
"database or disk is full", an ``OSError`` from LanceDB).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memorch import Memory, MemoryConfig, StorageError
from memorch.storage.graph_process import GraphProcess

STAMP = "2026-11-25T10:00:00+00:00"


def _config(path: Path, graph: str = "on") -> MemoryConfig:
    return MemoryConfig(data_dir=path, graph=graph, embedder="static", graph_flush_delay=0)


def _items(n: int, first: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(first, first + n):
        text = f"fact {i}: person{i} keeps llamas on the hill number {i}"
        out.append(
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
    return out


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORCH_")}
    env.update(MEMORCH_DATA_DIR=str(data_dir), MEMORCH_EMBEDDER="static")
    return subprocess.run(
        [sys.executable, "-m", "memorch", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@pytest.fixture
def read_only() -> Iterator[Any]:
    """Makes a directory read-only for this process; undone at teardown."""
    undo: list[list[str]] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555)
            undo.append(["chmod", "755", str(path)])
        elif _mount("--bind", str(path), str(path)):
            undo.append(["umount", "--lazy", str(path)])
            assert _mount("-o", "remount,ro,bind", str(path))
        else:
            pytest.skip("running as root without permission to mount: no way to make a directory read-only")

    yield make
    for command in reversed(undo):
        subprocess.run(command, check=False)


# -- read-only data directory ------------------------------------------------------------------


def test_a_read_only_data_directory_serves_every_read_and_refuses_writes(tmp_path: Path, read_only: Any) -> None:
    config = _config(tmp_path / "data")
    with Memory(config) as memory:
        memory.import_memories(_items(10))
        memory.flush_graph()
        one = memory.get_all(user_id="alice")["results"][0]["id"]
    read_only(config.data_dir)
    before = sorted(p.name for p in config.data_dir.iterdir())
    with Memory(config) as memory:
        assert len(memory.search("llamas on the hill", user_id="alice", limit=50, threshold=0)["results"]) == 10
        assert len(memory.get_all(user_id="alice")["results"]) == 10
        assert memory.get(one)["id"] == one
        stats = memory.stats()
        assert (stats["memories"], stats["relations"]) == (10, 10)
        assert memory.export_memories(tmp_path / "out.jsonl")["memories"] == 10
        checks = {c["name"]: c for c in memory.doctor()}
        assert "READ_ONLY" in checks["data directory"]["detail"] and not checks["data directory"]["ok"]
        assert [n for n, c in checks.items() if not c["ok"]] == ["data directory"], checks
        for write in (
            lambda: memory.add("a new fact", user_id="alice", infer=False),
            lambda: memory.update(one, "changed"),
            lambda: memory.delete(one),
            memory.reindex,
        ):
            with pytest.raises(StorageError) as caught:
                write()
            assert caught.value.error_code == "READ_ONLY"
            assert "read-only" in caught.value.message
    assert sorted(p.name for p in config.data_dir.iterdir()) == before


def test_the_cli_on_a_read_only_directory(tmp_path: Path, read_only: Any) -> None:
    config = _config(tmp_path / "data", graph="off")
    with Memory(config) as memory:
        memory.add("I keep llamas on the hill", user_id="alice", infer=False)
    read_only(config.data_dir)
    found = _run(config.data_dir, "search", "llamas", "--user-id", "alice", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["memory"] == "I keep llamas on the hill"
    refused = _run(config.data_dir, "add", "another fact", "--user-id", "alice")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error [READ_ONLY]") and len(refused.stderr.strip().splitlines()) == 1


# -- full disk ------------------------------------------------------------------------------------


class _FullDisk:
    """A SQLite connection on a disk with no space: every write fails as SQLite reports it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COMMIT")):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_adds_on_a_full_disk_fail_cleanly_and_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path / "data", graph="off")
    with Memory(config) as memory:
        kept = [memory.add(f"kept fact {i} about llamas", user_id="alice", infer=False) for i in range(5)]
        ledger = memory.async_memory.engine.components.ledger
        real = ledger._conn
        ledger._conn = _FullDisk(real)  # type: ignore[assignment]
        for i in range(3):
            with pytest.raises(StorageError) as caught:
                memory.add(f"fact {i} written while the disk is full", user_id="alice", infer=False)
            assert caught.value.error_code == "LEDGER_ERROR" and "full" in caught.value.message
        ledger._conn = real  # space is back

        # LanceDB runs out next: the ledger commit stands, the index write is owed and replayed.
        def no_space(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        table = memory.async_memory.engine.components.vectors._table  # the engine itself fails, as LanceDB would
        monkeypatch.setattr(table, "add", no_space)
        late = memory.add("added while the index disk is full", user_id="alice", infer=False)
        memory.async_memory.engine.store.index_owed()  # its rows' write fails (logged); the work stays owed
        # The next write tries the owed work first, fails again, and still commits.
        later = memory.add("added later while the index disk is still full", user_id="alice", infer=False)
        with pytest.raises(StorageError) as refused:  # a search would miss them: it says so
            memory.search("index disk is full", user_id="alice")
        assert refused.value.error_code == "VECTOR_WRITE_FAILED"
        monkeypatch.undo()
        assert memory.stats()["pending_index"] == 0
        listed = {m["id"] for m in memory.get_all(user_id="alice", limit=100)["results"]}
        assert listed == {r["results"][0]["id"] for r in [*kept, late, later]}
        for added in (late, later):
            found = memory.search(added["results"][0]["memory"], user_id="alice", limit=3)["results"]
            assert found[0]["id"] == added["results"][0]["id"]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB filesystem of its own (root only)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)):
        pytest.skip("needs root and mount for a real full disk; the injected ENOSPC test covers the rest")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=False)


def test_stats_on_a_really_full_disk_is_one_line_never_an_abort(tmpfs: Path) -> None:
    config = _config(tmpfs / "data")
    with Memory(config) as memory:
        memory.import_memories(_items(50))
        memory.flush_graph()
    free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
    with open(tmpfs / "filler", "wb") as filler:
        filler.write(b"\0" * max(0, free - 1024 * 1024))
    acknowledged = 50
    with Memory(_config(tmpfs / "data")) as memory:
        try:
            memory.import_memories(_items(30, first=50))  # its graph work stays queued in the ledger
            acknowledged += 30
        except StorageError as exc:  # the ledger ran out first: then nothing of it was acknowledged
            assert exc.error_code == "LEDGER_ERROR"
    result = _run(config.data_dir, "stats", "--json")
    assert result.returncode in (0, 1), result.stderr  # -6 / 134 was Kuzu aborting the process
    if result.returncode:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error ["), result.stderr
    (tmpfs / "filler").unlink()
    conn = sqlite3.connect(f"file:{config.data_dir / 'memorch.db'}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM memories").fetchone()[0] == acknowledged
    finally:
        conn.close()


def test_doctor_on_a_disk_with_no_space_left_says_disk_full(tmpfs: Path) -> None:
    """Every byte taken: doctor names the full disk (it said DATA_DIR_UNUSABLE, "set
    MEMORCH_DATA_DIR to a writable directory", of a directory that is writable), in one line."""
    config = _config(tmpfs / "data", graph="off")
    with Memory(config) as memory:
        memory.import_memories(_items(5))
    with open(tmpfs / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    result = _run(config.data_dir, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)} if result.stdout else {}
    disk = checks.get("data directory", {})
    assert disk.get("ok") is False and disk["detail"].startswith("[DISK_FULL] no space left"), result.stdout
    assert disk["detail"].endswith("Suggestion: free disk space in MEMORCH_DATA_DIR")


# -- an engine that aborts ----------------------------------------------------------------------


def test_a_graph_engine_abort_is_a_typed_error_and_the_next_call_recovers(tmp_path: Path) -> None:
    graph = GraphProcess(tmp_path / "graph.kuzu", tmp_path / "graph.lock")
    try:
        assert graph.counts() == {"entities": 0, "relations": 0}
        child = graph._child
        assert child is not None
        # The child aborts while it serves a call, as Kuzu does on a full disk: stopped, asked,
        # then sent SIGABRT (held until it continues).
        os.kill(child.pid, signal.SIGSTOP)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                graph.counts()
            except StorageError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGABRT)
        os.kill(child.pid, signal.SIGCONT)
        caller.join(30)
        assert len(errors) == 1
        caught = errors[0]
        assert isinstance(caught, StorageError) and caught.error_code == "GRAPH_ERROR"
        assert caught.details["exit_code"] == -signal.SIGABRT
        assert graph.counts() == {"entities": 0, "relations": 0}  # a new child took over
    finally:
        graph.close()


def test_a_read_only_ledger_of_an_earlier_version_reads_its_history(tmp_path: Path) -> None:
    """A ledger written before a column was added cannot be migrated when read-only: the column
    reads as NULL (what the migration would store), so history, as_of and export still work."""
    import sqlite3

    from memorch.storage.readonly import ReadOnlyLedger

    config = _config(tmp_path / "data", graph="off")
    with Memory(config) as memory:
        kept = memory.add("I keep bees", user_id="alice", infer=False)["results"][0]["id"]
        gone = memory.add("I drink green tea", user_id="alice", infer=False)["results"][0]["id"]
        memory.delete(gone)
    path = config.data_dir / "memorch.db"
    with sqlite3.connect(path) as conn:  # as the previous version left it
        conn.execute("ALTER TABLE history DROP COLUMN metadata")
    ledger = ReadOnlyLedger(path)
    try:
        assert [e.event for e in ledger.history(gone)] == ["ADD", "DELETE"]
        assert ledger.history(gone)[-1].metadata is None and ledger.get(kept) is not None
    finally:
        ledger.close()
