"""The LanceDB index's upkeep on a real table: the ANN index appears past its threshold, is
rebuilt once deltas pile up, and bulk writes hold maintenance until they end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memorch.domain._records import new_record, utc_now
from memorch.storage import vector_maintenance as maintenance
from memorch.storage import vector_versions
from memorch.storage import vectors as lance
from memorch.storage.base import Scope


def records(n: int, seed: int, user: str = "u") -> list:
    rng = np.random.default_rng(seed)
    unit = rng.standard_normal((n, 384)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    now = utc_now()
    return [new_record(f"memory {seed}-{i}", v, Scope(user_id=user), {}, now) for i, v in enumerate(unit)]


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The production thresholds (50k rows) scaled down so a test can cross them in seconds.
    monkeypatch.setattr(maintenance, "ANN_MIN_ROWS", 512)
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 10**9)  # only explicit maintenance in this test
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 10**9)  # nor the pass once writes stop


def test_vector_index_is_built_then_rebuilt_past_its_delta_limit(
    tmp_path: Path, small_thresholds: None, capfd: pytest.CaptureFixture[str]
) -> None:
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    index.upsert(records(600, 0))
    index.maintain_now()
    assert index._vector_index_segments() == 1  # built once past ANN_MIN_ROWS
    counts = []
    for batch in range(1, maintenance.MAX_VECTOR_DELTAS + 2):
        index.upsert(records(20, batch))
        index.maintain_now()
        counts.append(index._vector_index_segments())
    # Each fold of new rows adds a delta; the one past the limit triggers a rebuild.
    assert counts[: maintenance.MAX_VECTOR_DELTAS - 1] == list(range(2, maintenance.MAX_VECTOR_DELTAS + 1))
    assert counts[-1] <= 2
    probe = records(1, 0)[0]
    hits = index.search(probe.embedding, Scope(user_id="u"), 5)
    assert hits[0].score == pytest.approx(1.0, abs=0.02)  # the same vector is found through the index
    index.close()
    # Reading the index's statistics printed LanceDB's Rust WARN about centroids on stderr.
    assert "LANCE_INCLUDE_VECTOR_CENTROIDS" not in capfd.readouterr().err


def test_bulk_writes_hold_the_ann_build_until_they_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "ANN_MIN_ROWS", 100)
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 50)
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    with index.deferred_maintenance():
        for batch in range(4):
            index.upsert(records(60, batch))
            with index._maintaining:  # let a background pass (if one started) finish
                pass
        # Past both thresholds: the routine fold ran (the id index covers the rows), the ANN
        # build did not.
        assert index._table.index_stats("id_idx").num_indexed_rows >= 180
        assert index._vector_index_segments() == 0
    index.close()  # waits for the pass the end of the bulk write started
    assert index._vector_index_segments() == 1


def test_a_bulk_write_ends_with_its_rows_in_the_text_index(tmp_path: Path, small_thresholds: None) -> None:
    """Searches right after an import read indexes only: no flat scan of the last rows, and BM25
    scores that do not depend on when a background pass folds them in."""
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    index._schedule = lambda force=False: None  # type: ignore[method-assign]  # no background pass to wait for
    with index.deferred_maintenance():
        index.upsert(records(120, 0))
        assert index._table.index_stats("memory_idx").num_unindexed_rows == 120  # no routine fold here
    stats = index._table.index_stats("memory_idx")
    assert (stats.num_indexed_rows, stats.num_unindexed_rows) == (120, 0)
    found = index.text_search("memory 0-7", Scope(user_id="u"), 3)
    assert found and found[0].score > 0
    index.close()


@pytest.mark.parametrize(("look_up", "ordered"), [(True, False), (False, False), (True, True)])
def test_a_replace_is_one_delete_and_one_append_and_leaves_exactly_the_ledgers_rows(
    tmp_path: Path, small_thresholds: None, look_up: bool, ordered: bool
) -> None:
    """A flush owing an update, a deletion and an add writes two versions (without looking the
    ids up when told some are there), and afterwards the table holds one row per live memory,
    each with its new text."""
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    kept, edited, gone = records(3, 0)
    index.upsert([kept, edited, gone])
    looked_up: list[int] = []
    present = index._present
    index._present = lambda ids: looked_up.append(len(ids)) or present(ids)  # type: ignore[method-assign]
    edited.memory = "memory 0-1, edited"
    [added] = records(1, 1)
    before = index._table.version
    order = [gone.id, added.id, edited.id] if ordered else None  # the changes' order, as a flush gives it
    index.replace([edited, added], [gone.id], look_up=look_up, order=order)
    assert index._table.version - before == 2  # one delete, one append
    assert looked_up == ([3] if look_up else [])
    rows = index._table.to_arrow().select(["id", "memory"]).to_pylist()
    assert sorted((r["id"], r["memory"]) for r in rows) == sorted((r.id, r.memory) for r in (kept, edited, added))
    with pytest.raises(ValueError, match="order"):  # a flush's ids and its order must agree
        index.replace([edited], [], order=[edited.id, kept.id])
    index.replace([edited], [edited.id], order=[edited.id, edited.id])  # repeated: written once
    assert index.count() == 3
    index.close()


def test_an_import_ends_with_every_row_it_wrote_folded_into_the_indexes(tmp_path: Path) -> None:
    """Its last rows (fewer than a flush batch, owed for ``index_flush_delay``) included: an
    import of 600 (a batch of 512, then 88) leaves nothing owed and nothing unindexed when it
    returns."""
    from memorch import Memory, MemoryConfig

    with Memory(MemoryConfig(data_dir=tmp_path / "data", embedder="static", index_flush_delay=5.0)) as memory:
        memory.import_memories([{"memory": f"imported fact number {i}", "user_id": "u"} for i in range(600)])
        store = memory.async_memory.engine.store
        table = memory.async_memory.engine.components.vectors._table
        assert store.unindexed_changes() == []
        assert table.count_rows() == 600
        assert table.index_stats("memory_idx").num_unindexed_rows == 0


def _loaded_indexes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the indexes LanceDB is asked to load whole, in order (a spy on the table)."""
    from lancedb.table import LanceTable

    loaded: list[str] = []
    original = LanceTable.prewarm_index

    def spy(table: LanceTable, name: str) -> None:
        loaded.append(name)
        original(table, name)

    monkeypatch.setattr(LanceTable, "prewarm_index", spy)
    return loaded


def test_after_a_fold_the_text_and_scope_indexes_are_loaded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first BM25 query of each question after a LongMemEval import took 10-25 ms loading
    the pages it needed, 6-10 ms with the new version's indexes loaded as the import ends (and
    once the index is idle, not after each fold while writes go on). The vector index and the
    id index are left to the reads, and so is what passes the budget."""
    monkeypatch.setattr(maintenance, "ANN_MIN_ROWS", 100)
    monkeypatch.setattr(maintenance, "OPTIMIZE_EVERY", 50)
    loaded = _loaded_indexes(monkeypatch)
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    with index.deferred_maintenance():
        index.upsert(records(120, 0))
        assert loaded == []  # not during the bulk write: its next fold replaces them
    index.close()  # the ANN build the bulk write's end started, then its cache refresh
    assert index._vector_index_segments() == 1
    assert loaded[:5] == list(maintenance.PREWARM_ORDER)
    vector_indexes = [i.name for i in index._table.list_indices() if i.columns == ["vector"]]
    assert vector_indexes and not {*vector_indexes, "id_idx"} & set(loaded)

    loaded.clear()
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 10**9)  # the idle pass comes when called here
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    index.upsert(records(60, 1))  # past OPTIMIZE_EVERY: the writer folds, a pass follows
    with index._maintaining:  # that pass ended
        pass
    assert loaded == []  # writes go on: their next fold replaces the indexes
    index._schedule(force=True)  # what the watch does once the index is idle
    with index._maintaining:
        pass
    assert loaded[:5] == list(maintenance.PREWARM_ORDER)

    loaded.clear()
    sizes = {i.name: i.size_bytes for i in index._table.list_indices()}
    scope_indexes = maintenance.PREWARM_ORDER[1:]
    room = sum(sizes[name] for name in scope_indexes) * maintenance.PREWARM_CACHE_FACTOR
    assert sizes["memory_idx"] * maintenance.PREWARM_CACHE_FACTOR > room
    monkeypatch.setattr(maintenance, "PREWARM_BUDGET_BYTES", room)
    index._prewarm()
    assert loaded == list(scope_indexes)  # the full-text index alone would pass the budget
    index.close()


def test_a_failed_prewarm_costs_nothing_but_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from lancedb.table import LanceTable

    def refuse(table: LanceTable, name: str) -> None:
        raise RuntimeError("cache refused")

    monkeypatch.setattr(LanceTable, "prewarm_index", refuse)
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    with index.deferred_maintenance():
        index.upsert(records(120, 0))
    assert "loading the LanceDB indexes into the cache failed" in caplog.text
    assert index.text_search("memory 0-7", Scope(user_id="u"), 3)
    assert index._table.index_stats("memory_idx").num_unindexed_rows == 0  # the pass went on
    index.close()


def test_a_rebuilds_staging_copy_is_not_loaded_into_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It is closed and swapped in as soon as it is built: nothing searches it."""
    from memorch.storage.rebuild import build_vectors

    loaded = _loaded_indexes(monkeypatch)
    built = build_vectors(tmp_path / "lance", 384, [records(120, 0)], 120, lambda done: None)
    assert built == 120 and loaded == []
    index = lance.LanceVectorIndex(tmp_path / "lance", 384)
    assert index.count() == 120
    index.close()
