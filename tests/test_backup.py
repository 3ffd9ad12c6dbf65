"""memorch backup / restore-backup: a consistent ledger snapshot under concurrent writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from memorch import AsyncMemory, Memory, MemoryConfig, ValidationError
from memorch.maintenance._backup import LEDGER, backup, restore
from memorch.storage.history import SQLiteLedger


def _config(path: Path) -> MemoryConfig:
    return MemoryConfig(data_dir=path, graph="off", embedder="static")


async def test_backup_under_concurrent_writes_restores_every_acknowledged_memory(tmp_path: Path) -> None:
    source = _config(tmp_path / "live")
    acknowledged: list[str] = []
    stop = threading.Event()
    started = threading.Event()

    def writer() -> None:
        with Memory(source) as memory:
            n = 0
            while not stop.is_set() and n < 400:
                result = memory.add(f"fact number {n} about the garden", user_id="alice", infer=False)
                acknowledged.append(result["results"][0]["id"])
                n += 1
                if n == 20:
                    started.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(60)
        before = list(acknowledged)  # acknowledged before the backup started
        ledger = SQLiteLedger(source.data_dir / LEDGER)  # a second connection, as the CLI opens it
        try:
            manifest = backup(ledger, tmp_path / "snap")
        finally:
            ledger.close()
    finally:
        stop.set()
        thread.join(60)
    assert manifest["memories"] >= len(before)
    saved = json.loads((tmp_path / "snap" / "backup.json").read_text())
    assert saved["memories"] == manifest["memories"] and saved["memorch_version"]
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == ["backup.json", LEDGER]  # no index copied

    fresh = _config(tmp_path / "fresh")
    result = await restore(fresh, tmp_path / "snap")
    assert result["memories"] == manifest["memories"] and result["kept"] is None
    memory = AsyncMemory(fresh)
    try:
        listed = {m["id"] for m in (await memory.get_all(user_id="alice", limit=1000))["results"]}
        assert set(before) <= listed
        assert len(listed) == manifest["memories"]  # whole commits only: nothing half-present
        found = await memory.search("fact number 7 about the garden", user_id="alice", limit=3)
        assert found["results"][0]["memory"] == "fact number 7 about the garden"
    finally:
        await memory.close()


async def test_restore_refuses_a_directory_with_memories_unless_forced(tmp_path: Path) -> None:
    snap_from, target = _config(tmp_path / "a"), _config(tmp_path / "b")
    for config, text in ((snap_from, "Alice likes tea"), (target, "Bob likes coffee")):
        memory = AsyncMemory(config)
        await memory.add(text, user_id="u")
        await memory.close()
    ledger = SQLiteLedger(snap_from.data_dir / LEDGER)
    backup(ledger, tmp_path / "snap")
    ledger.close()
    with pytest.raises(ValidationError) as refused:
        await restore(target, tmp_path / "snap")
    assert refused.value.error_code == "RESTORE_WOULD_REPLACE"
    result = await restore(target, tmp_path / "snap", force=True)
    assert Path(result["kept"]).name.startswith(f"{LEDGER}.before-restore-")
    memory = AsyncMemory(target)
    try:
        texts = [m["memory"] for m in (await memory.get_all(user_id="u"))["results"]]
        assert texts == ["Alice likes tea"]
        assert (await memory.search("tea", user_id="u"))["results"][0]["memory"] == "Alice likes tea"
    finally:
        await memory.close()
    with pytest.raises(ValidationError) as again:
        backup(SQLiteLedger(target.data_dir / LEDGER), tmp_path / "snap")
    assert again.value.error_code == "BACKUP_EXISTS"


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORCH_")}
    env.update(MEMORCH_DATA_DIR=str(data_dir), MEMORCH_GRAPH="off", MEMORCH_EMBEDDER="static")
    return subprocess.run(
        [sys.executable, "-m", "memorch", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_round_trip(tmp_path: Path) -> None:
    # The commands under test (backup, restore-backup) run as the CLI; the memories are added and
    # searched in this process (each CLI launch imports LanceDB, ~10 s on a loaded 2-core machine).
    live, fresh, snap = tmp_path / "live", tmp_path / "fresh", tmp_path / "snap"
    with Memory(_config(live)) as memory:
        memory.add("I keep bees on the roof", user_id="alice", infer=False)
    made = _cli("backup", str(snap), "--json", data_dir=live)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["memories"] == 1
    with Memory(_config(fresh)) as memory:
        memory.add("Bob has a boat", user_id="bob", infer=False)
    refused = _cli("restore-backup", str(snap), data_dir=fresh)
    assert refused.returncode == 1 and "RESTORE_WOULD_REPLACE" in refused.stderr and "Traceback" not in refused.stderr
    done = _cli("restore-backup", str(snap), "--force", data_dir=fresh)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "the replaced ledger is kept as" in said and "`memorch forget` does not reach it" in said
    with Memory(_config(fresh)) as memory:
        found = memory.search("bees", user_id="alice")
    assert found["results"][0]["memory"] == "I keep bees on the roof"


def test_a_restore_is_refused_while_another_process_has_the_ledger_open(tmp_path: Path) -> None:
    """restore-backup --force under a running server moved its ledger aside and unlinked its WAL:
    the server went on acknowledging writes that no ledger kept (a newcomer's trial, 2026-12-07).
    A data directory whose memories are all deleted was replaced without --force: their history
    restores them, so it counts as holding memories."""
    live, snap = tmp_path / "live", tmp_path / "snap"
    mistyped = _cli("backup", str(snap), data_dir=tmp_path / "liev")  # made an empty store, backed it up
    assert mistyped.returncode == 1 and "NOTHING_TO_BACK_UP" in mistyped.stderr
    assert not (tmp_path / "liev").exists() and not snap.exists()
    with Memory(_config(live)) as memory:
        memory.add("I keep bees on the roof", user_id="alice", infer=False)
    assert _cli("backup", str(snap), data_dir=live).returncode == 0
    with Memory(_config(live)) as memory:
        gone = memory.add("Bob has a boat", user_id="bob", infer=False)["results"][0]["id"]
        refused = _cli("restore-backup", str(snap), "--force", data_dir=live)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "DATA_DIR_IN_USE" in refused.stderr and "stop every memorch process" in refused.stderr
        assert memory.get(gone)["memory"] == "Bob has a boat"  # still this process's ledger
        memory.delete_all(user_id="alice")
        memory.delete(gone)
    assert not list(live.glob("memorch.db.before-restore-*"))
    deleted_only = _cli("restore-backup", str(snap), data_dir=live)
    assert deleted_only.returncode == 1 and "RESTORE_WOULD_REPLACE" in deleted_only.stderr
    assert "0 memories and 4 history events" in " ".join(deleted_only.stderr.split())
    assert _cli("restore-backup", str(snap), "--force", data_dir=live).returncode == 0
    with Memory(_config(live)) as memory:
        assert [m["memory"] for m in memory.get_all(user_id="alice")["results"]] == ["I keep bees on the roof"]
