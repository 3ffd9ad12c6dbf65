"""The same operations in the same order give the same search results, however the writes'
index flushes fell in time. A memory's LanceDB row is written a moment after its add, in groups
that depend on timing (``index_flush_delay``, a search's flush); LanceDB scores rows it has not
folded into its full-text index against the folded rows' statistics, so where folds fall among
the rows decides BM25 scores. The writer folds at fixed row counts, splitting a group there
(``storage/vector_maintenance.py``); before, two back-to-back LOCOMO runs differed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.storage import vector_maintenance, vector_versions
from memorch.storage.vectors import first_without_arbitrary_ties
from tests.data.redaction_corpus import shared_bench

FOLD_EVERY = 25


def _conversation() -> tuple[list[str], list[str]]:
    sample = json.loads((shared_bench() / "locomo_dev.json").read_text(encoding="utf-8"))[0]
    chat = sample["conversation"]
    sessions = sorted(k for k in chat if k.startswith("session_") and k.count("_") == 1)
    turns = [f"{t['speaker']}: {t['text']}" for k in sessions for t in chat[k]][:140]
    return turns, [qa["question"] for qa in sample["qa"]][:15]


async def _searched_after(data: Path, flush_delay: float, search_every: int) -> list[list[tuple[str, float, float]]]:
    """Add the turns one by one, update and delete some (a search every ``search_every`` writes
    flushes what is owed: one more way to group the same writes), then search every question."""
    turns, questions = _conversation()
    memory = AsyncMemory(MemoryConfig(data_dir=data, graph="off", index_flush_delay=flush_delay))
    try:
        ids = []
        for number, text in enumerate(turns, start=1):
            ids.append((await memory.add(text, user_id="alice", infer=False))["results"][0]["id"])
            if search_every and number % search_every == 0:
                await memory.search(questions[number % len(questions)], user_id="alice")
        # A search writes what is owed: each change below meets a written row (a memory changed
        # twice before its row is written is written once, which moves the folds after it).
        await memory.search(questions[0], user_id="alice")
        # Changes: an update rewrites a row (its old one deleted, the new one appended), a
        # deletion removes one, interleaved; folds fall among them in their order.
        for number, memory_id in enumerate(ids[:60], start=1):
            if number % 3 == 0:
                await memory.update(memory_id, f"{turns[number - 1]} (said again later)")
            elif number % 7 == 0:
                await memory.delete(memory_id)
            if search_every and number % search_every == 0:
                await memory.search(questions[number % len(questions)], user_id="alice")
        results = []
        for query in questions:
            found = await memory.search(query, user_id="alice", threshold=0.0, explain=True, limit=20)
            results.append(
                [(r["memory"], r["score"], r["explain"].get("text", {}).get("bm25", 0.0)) for r in found["results"]]
            )
        return results
    finally:
        await memory.close()


async def test_the_same_writes_give_the_same_results_however_their_flushes_were_grouped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_maintenance, "OPTIMIZE_EVERY", FOLD_EVERY)  # several folds in 140 adds and 26 changes
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 10**9)  # a pause lets the store settle: none here
    one_by_one = await _searched_after(tmp_path / "a", 0.0, 0)  # a flush per add
    timed = await _searched_after(tmp_path / "b", 1.0, 0)  # a flush a second (or at a search)
    searched = await _searched_after(tmp_path / "c", 1.0, 7)  # and a search's flush every 7 adds
    assert any(bm25 for hits in one_by_one for _, _, bm25 in hits)  # full-text scores are compared
    for query, a, b, c in zip(_conversation()[1], one_by_one, timed, searched, strict=True):
        assert a == b == c, query


def test_a_tie_the_limit_would_split_is_left_out_whole() -> None:
    """Which rows of a tie make a query's cut depends on where LanceDB keeps them or on their
    (random) ids; so a tie at the cut goes whole, and one that may run past the rows LanceDB
    returned (it returned all it was asked for) goes too, unless nothing else is left."""
    rows = [("d", 0.9), ("c", 0.5), ("b", 0.5), ("a", 0.5), ("e", 0.7)]
    assert first_without_arbitrary_ties(rows, 3, 10, lower_first=False) == [("d", 0.9), ("e", 0.7)]
    assert first_without_arbitrary_ties(rows, 5, 10, lower_first=False) == [
        ("d", 0.9),
        ("e", 0.7),
        ("a", 0.5),
        ("b", 0.5),
        ("c", 0.5),
    ]
    assert first_without_arbitrary_ties(rows, 5, 5, lower_first=False) == [("d", 0.9), ("e", 0.7)]
    distances = [("x", 0.1), ("y", 0.3), ("z", 0.3)]
    assert first_without_arbitrary_ties(distances, 2, 13, lower_first=True) == [("x", 0.1)]
    assert first_without_arbitrary_ties([("b", 1.0), ("a", 1.0)], 1, 2, lower_first=False) == [("a", 1.0)]
    # What comes back is always a prefix of the order: nothing below a tie left out.
    steps = [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.7), ("e", 0.6), ("f", 0.6), ("g", 0.6), ("h", 0.5)]
    assert first_without_arbitrary_ties(steps, 3, 20, lower_first=False) == [("a", 0.9), ("b", 0.8)]
    assert first_without_arbitrary_ties(steps, 4, 20, lower_first=False) == steps[:4]
    assert first_without_arbitrary_ties(steps, 5, 8, lower_first=False) == steps[:4]  # the .6 tie may go on


def test_a_fold_that_fails_waits_for_the_next_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed fold restarts the count: the next writes are not cut into one-row appends, each
    with an optimize of its own."""
    from memorch.storage.vectors import LanceVectorIndex
    from tests.test_versions import records

    monkeypatch.setattr(vector_maintenance, "OPTIMIZE_EVERY", 5)
    monkeypatch.setattr(vector_versions, "IDLE_PASS_S", 10**9)
    index = LanceVectorIndex(tmp_path / "lance", 384)
    attempts = []

    def failing(**_: object) -> None:
        attempts.append(1)
        raise OSError("disk full")

    monkeypatch.setattr(index._table, "optimize", failing)
    before = len(index._table.list_versions())
    index.upsert(records(50, 0))
    assert index.count() == 50
    assert len(attempts) == 10  # one attempt every 5 rows, as if it had worked
    assert len(index._table.list_versions()) - before == 10  # ten appends of 5 rows, not 46 of one
    index.close()
