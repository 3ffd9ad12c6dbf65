"""Old LanceDB versions are pruned by the background maintenance: the version count stays
bounded while writes go on, the data and search stay intact, and a second process searching
the same directory during the pruning never fails."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from memorch.domain._records import new_record, utc_now
from memorch.storage import vector_maintenance as maintenance
from memorch.storage import vector_versions
from memorch.storage import vectors as lance
from memorch.storage.base import Scope

HOLD_S = 1.0  # the production hold (10 s) scaled down so the test crosses it in seconds


def versions_on_disk(lance_dir: Path) -> int:
    """The table's versions, counted as manifest files: ``Table.list_versions`` reads each
    manifest it listed, and fails when a background prune deletes one in between."""
    return len(list((lance_dir / "memories.lance" / "_versions").glob("*.manifest")))


def records(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    unit = rng.standard_normal((n, 384)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    now = utc_now()
    return [new_record(f"memory {seed}-{i}", v, Scope(user_id="u"), {}, now) for i, v in enumerate(unit)]


@pytest.fixture
def explicit_maintenance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 10**9)  # only maintain_now runs maintenance
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 10**9)


def test_versions_stay_bounded_and_data_intact(tmp_path: Path, explicit_maintenance: None) -> None:
    index = lance.LanceVectorIndex(tmp_path / "lance", 384, version_hold_s=HOLD_S)
    kept = records(50, 0)
    index.upsert(kept)
    remaining = []
    for round_ in range(5):
        for i in range(40):  # 40 single-row writes, and a replacement (a delete and an append)
            index.upsert([records(1, 1000 + round_ * 100 + i)[0]])
        index.upsert([kept[round_]])
        time.sleep(HOLD_S + 0.2)
        index.maintain_now()
        remaining.append(len(index._table.list_versions()))
    made = index._table.version
    assert made > 5 * 41  # an upsert of a new id is one append
    # What remains is the last burst's tail (within the margin) and maintenance's own versions:
    # the same after every round, not growing with the writes.
    assert max(remaining) <= 41 + 15, (remaining, made)  # one burst plus maintenance's own
    assert remaining[-1] <= remaining[0] + 10, remaining
    assert index.count() == 50 + 200
    assert index.all_ids() >= {r.id for r in kept}
    hit = index.search(kept[7].embedding, Scope(user_id="u"), 3)[0]
    assert hit.id == kept[7].id and hit.score == pytest.approx(1.0, abs=1e-3)
    text = index.text_search("memory 0-7", Scope(user_id="u"), 5)
    assert kept[7].id in [h.id for h in text]
    index.close()


def test_recent_versions_are_kept_while_another_process_has_the_directory(
    tmp_path: Path, explicit_maintenance: None
) -> None:
    from memorch.storage.vector_versions import Attachment

    index = lance.LanceVectorIndex(tmp_path / "lance", 384, version_hold_s=60.0)
    other = Attachment(tmp_path / "lance")  # another process's mark: the hold applies
    for i in range(10):
        index.upsert(records(1, i))
    before = len(index._table.list_versions())
    index.maintain_now()
    # Nothing was replaced more than the hold ago: every version is still there (plus maintenance's).
    assert len(index._table.list_versions()) >= before
    other.close()
    index.close()


# A second process searches the directory in a loop while this one writes and prunes; it prints
# how many searches ran and the errors it met.
READER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from memorch.storage.vectors import LanceVectorIndex
    from memorch.storage.base import Scope

    index = LanceVectorIndex(sys.argv[1], 384)
    probe = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
    print("ready", flush=True)
    searches, errors, misses = 0, [], 0
    deadline = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < deadline:
        try:
            hits = index.search(probe, Scope(user_id="u"), 3)
            index.text_search("memory", Scope(user_id="u"), 3)
            misses += not hits or hits[0].id != sys.argv[4]
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(repr(exc)[:300])
        searches += 1
    print(json.dumps({"searches": searches, "errors": errors, "misses": misses}), flush=True)
    """
)


def test_a_reader_in_another_process_searches_through_pruning(tmp_path: Path, explicit_maintenance: None) -> None:
    index = lance.LanceVectorIndex(tmp_path / "lance", 384, version_hold_s=HOLD_S)
    anchor = records(1, 0)[0]
    index.upsert([anchor, *records(30, 1)])
    index.maintain_now()
    run_s = 6.0
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            READER,
            str(tmp_path / "lance"),
            json.dumps(anchor.embedding.tolist()),
            str(run_s),
            anchor.id,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        pruned_rounds, seed, end = 0, 100, time.monotonic() + run_s - 0.5
        while time.monotonic() < end:
            for _ in range(10):
                seed += 1
                index.upsert(records(1, seed))
            before = len(index._table.list_versions())
            index.maintain_now()  # compaction rewrites the fragments the reader may be reading
            pruned_rounds += len(index._table.list_versions()) < before
            time.sleep(0.2)
        result = json.loads(reader.stdout.readline())
        assert reader.wait(timeout=60) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
    index.close()
    assert pruned_rounds >= 2
    assert result["errors"] == []
    assert result["searches"] > 20 and result["misses"] == 0


def test_files_no_version_references_are_deleted_by_one_pass_at_a_time(
    tmp_path: Path, explicit_maintenance: None
) -> None:
    """A compaction that loses its commit leaves its rewritten files behind (93 % of the
    directory after a soak). The prune deletes such files while it holds the writers' lock, and
    only while no other process runs a pass on the same directory (``lance-maintain.lock``)."""
    import os

    from filelock import FileLock

    writers = FileLock(str(tmp_path / "index.lock"))
    index = lance.LanceVectorIndex(tmp_path / "lance", 384, version_hold_s=HOLD_S, writers_lock=lambda: writers)
    kept = records(30, 3)
    index.upsert(kept)
    data = tmp_path / "lance" / "memories.lance" / "data"
    source = next(data.iterdir())
    orphan = data / ("0" * 8 + "-orphan-" + source.name)  # what a lost compaction leaves
    orphan.write_bytes(source.read_bytes())
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    for i in range(5):
        index.upsert([records(1, 500 + i)[0]])
    time.sleep(HOLD_S + 0.2)

    with FileLock(str(tmp_path / "lance-maintain.lock")):  # another process's pass is running
        index.maintain_now()
    assert orphan.exists(), "a pass ran while another held the directory's maintenance lock"

    index.maintain_now()
    assert not orphan.exists(), "the unreferenced file was kept"
    assert index.count() == 35
    hit = index.search(kept[4].embedding, Scope(user_id="u"), 1)[0]
    assert hit.id == kept[4].id


def _data_bytes(lance_dir: Path) -> int:
    return sum(f.stat().st_size for f in (lance_dir / "memories.lance" / "data").iterdir())


def test_alone_a_pass_keeps_one_copy_while_reads_go_on(tmp_path: Path, explicit_maintenance: None) -> None:
    """A process alone on the directory prunes every version replaced before the pass (after
    its own earlier reads end), so the data files hold about one copy of the table; a thread
    searching throughout never meets a removed file. With another process attached (its file
    in lance-attached/ locked) the production hold applies and the old copies stay."""
    import threading

    from filelock import FileLock

    from memorch.storage.vector_versions import Attachment

    writers = FileLock(str(tmp_path / "index.lock"))
    stale = tmp_path / "lance-attached" / "999999-dead.lock"  # left by a process that died
    stale.parent.mkdir()
    stale.touch()
    index = lance.LanceVectorIndex(tmp_path / "lance", 384, writers_lock=lambda: writers)  # 10 s hold
    anchor = records(1, 0)[0]
    index.upsert([anchor, *records(200, 1)])
    index.maintain_now()
    one_copy = _data_bytes(tmp_path / "lance")
    errors: list[str] = []
    searches = 0
    stop = threading.Event()

    def search_throughout() -> None:
        nonlocal searches
        while not stop.is_set():
            try:
                hits = index.search(anchor.embedding, Scope(user_id="u"), 3)
                index.text_search("memory", Scope(user_id="u"), 3)
                if not hits or hits[0].id != anchor.id:
                    errors.append(f"missed the anchor: {hits}")
            except Exception as exc:  # noqa: BLE001 - the test reports every failure
                errors.append(repr(exc)[:300])
            searches += 1

    reader = threading.Thread(target=search_throughout)
    reader.start()
    try:
        for round_ in range(4):
            for i in range(20):
                index.upsert(records(1, 1000 + 100 * round_ + i))
            index.maintain_now()  # each pass rewrites the whole table
        alone_bytes = _data_bytes(tmp_path / "lance")
        other = Attachment(tmp_path / "lance")  # another process opens the directory
        try:
            for round_ in range(4):
                for i in range(20):
                    index.upsert(records(1, 5000 + 100 * round_ + i))
                index.maintain_now()
            held_bytes = _data_bytes(tmp_path / "lance")
        finally:
            other.close()
    finally:
        stop.set()
        reader.join()
        index.close()
    assert errors == [] and searches > 20
    assert not stale.exists(), "a dead process's mark kept the directory shared"
    assert alone_bytes < 1.6 * one_copy, (alone_bytes, one_copy)
    assert held_bytes > 3 * one_copy, (held_bytes, one_copy)
    assert not list((tmp_path / "lance-attached").iterdir()), "close() leaves its mark behind"


def test_caches_full_of_replaced_versions_start_over(
    tmp_path: Path, explicit_maintenance: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LanceDB's caches keep replaced versions' entries until full; once they hold more than
    ``CACHE_RENEW_FACTOR`` times the table's data, maintenance starts a new connection with
    empty caches, and the index answers as before."""
    from memorch.storage import vector_connection

    monkeypatch.setattr(vector_connection, "CACHE_RENEW_MIN_BYTES", 0)
    monkeypatch.setattr(vector_connection, "CACHE_RENEW_FACTOR", 10**6)  # not yet
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    kept = records(40, 7)
    index.upsert(kept)
    for round_ in range(3):  # every pass replaces the table; every search loads the new version
        index.upsert(records(5, 100 + round_))
        index.maintain_now()
        for record in kept[:10]:
            index.search(record.embedding, Scope(user_id="u"), 3)
            index.text_search(record.memory, Scope(user_id="u"), 3)
    full = index._connection.session
    index.maintain_now()
    assert index._connection.session is full  # under the bound: kept
    monkeypatch.setattr(vector_connection, "CACHE_RENEW_FACTOR", 0.5)
    assert full.size_bytes > 0.5 * index._table.stats()["total_bytes"]
    index.maintain_now()
    assert index._connection.session is not full and index._connection.session.size_bytes < full.size_bytes
    hit = index.search(kept[3].embedding, Scope(user_id="u"), 1)[0]
    assert hit.id == kept[3].id
    assert kept[5].id in [h.id for h in index.text_search(kept[5].memory, Scope(user_id="u"), 3)]
    assert index.count() == 40 + 15
    index.close()


def test_a_burst_is_followed_by_one_pass_once_writes_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a burst, with no further write, one more pass folds the burst's last rows into the
    indexes and (alone on the directory) leaves one copy of the table; then nothing runs."""
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 10**9)  # no pass during the burst
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 0.5)
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    for i in range(12):
        index.upsert(records(1, 300 + i))
    assert versions_on_disk(tmp_path / "lance") > 12
    data = tmp_path / "lance" / "memories.lance" / "data"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (versions_on_disk(tmp_path / "lance") > 4 or len(list(data.iterdir())) > 1):
        time.sleep(0.2)
    settled = versions_on_disk(tmp_path / "lance")
    assert settled <= 4, settled  # the pass's compaction and index fold, nothing older
    assert len(list(data.iterdir())) == 1  # one copy of the table, its 12 fragments compacted
    time.sleep(1.5)
    assert versions_on_disk(tmp_path / "lance") == settled  # one pass per burst, not one per interval
    assert index.count() == 12
    index.close()


def test_a_bulk_write_ends_with_its_whole_pass_done_and_none_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's pass (fold, compaction, prune) runs in its own thread before it returns, and
    no idle pass follows it: the searches right after an import had shared the cores with one or
    two background passes (the forced one, then the idle one two seconds later)."""
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 10**9)  # no pass during the burst
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 0.5)
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    passes: list[str] = []
    real_pass = index._maintain_pass
    monkeypatch.setattr(index, "_maintain_pass", lambda: (passes.append(threading.current_thread().name), real_pass()))
    with index.deferred_maintenance():
        for i in range(12):
            index.upsert(records(1, 500 + i))
    assert passes == [threading.current_thread().name]  # in the caller's thread, once
    assert not index._maintaining.locked()
    settled = versions_on_disk(tmp_path / "lance")
    assert settled <= 4, settled  # compacted and pruned before returning
    assert len(list((tmp_path / "lance" / "memories.lance" / "data").iterdir())) == 1
    time.sleep(1.5)  # three idle intervals
    assert passes == [threading.current_thread().name]  # no idle pass for a burst already covered
    assert versions_on_disk(tmp_path / "lance") == settled
    index.upsert(records(1, 600))  # a write after it is a new burst: its idle pass comes
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(passes) < 2:
        time.sleep(0.1)
    assert passes[1:] == ["memorch-lance-optimize"]
    assert index.count() == 13
    index.close()


def test_under_continuous_writes_one_fold_in_several_prunes_and_a_forced_pass_always(
    tmp_path: Path, explicit_maintenance: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prune is a second ``optimize`` under the writers' lock: the writer prunes after one of
    its folds in ``PRUNE_EVERY_PASSES``, in its thread, so no row comes between its fold and the
    prune's own optimize (which would fold it); an explicit (forced) pass prunes, and a process
    alone on the directory is left with the current version."""
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 3)  # every upsert below ends with a fold
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    pruned: list[str] = []
    for name in ("prune", "prune_in_writer"):
        real = getattr(index._pruner, name)
        monkeypatch.setattr(index._pruner, name, lambda *args, name=name, real=real: pruned.append(name) or real(*args))
    folds = 2 * vector_versions.PRUNE_EVERY_PASSES + 1  # the last fold does not prune
    kept = []
    for seed in range(folds):
        index.upsert(records(3, seed))  # its fold, and the writer's prune when due, before it returns
        assert index._writes_since_optimize == 0
        kept.append(len(index._table.list_versions()))
    assert pruned == ["prune_in_writer"] * 2
    every = vector_versions.PRUNE_EVERY_PASSES
    assert kept[every - 1] < kept[every - 2] and kept[2 * every - 1] < kept[2 * every - 2], kept
    assert kept[-1] > kept[-2], kept  # the last fold kept its own and its write's versions
    with index._maintaining:  # a background pass after a fold (the ANN index) folds and prunes nothing
        pass
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 10**9)
    index._optimize_interval = 10**9
    index.upsert(records(3, folds))
    index._schedule(force=True)  # as the idle pass and the end of a bulk write ask for one
    with index._maintaining:  # taken before its thread started: held until the pass ends
        pass
    assert pruned[2:] == ["prune"]
    assert index._table.index_stats("memory_idx").num_unindexed_rows == 0  # a forced pass folds what the writer left
    assert index._writes_since_optimize == 3  # and leaves the writer's count alone: its fold points stay put
    index.upsert(records(3, folds + 1))
    index.maintain_now()
    assert pruned[3:] == ["prune"]
    assert len(index._table.list_versions()) <= 3
    assert index.count() == 3 * (folds + 2)
    index.close()
