"""The vector signal orders its candidates by centered similarity (``retrieval._centering``):
the cosine to the query less CENTERING times the cosine to the scope's mean embedding. Checked
against vectors computed here from the ledger's embeddings, for a scope held in memory and for
one too large to hold (the ledger's mean), which must rank alike."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.engine import _centroids, _nearest
from memorch.retrieval._centering import CENTERING
from memorch.storage.base import Scope

TEXTS = (
    "I am allergic to peanuts",
    "My favourite city is Lisbon",
    "I play the cello on Sundays",
    "My sister Ana lives in Porto",
    "I work as a nurse at the city hospital",
    "assistant: Here are some general tips that many people find helpful in everyday life.",
    "assistant: Sure! Let me know if there is anything else I can help you with today.",
    "We adopted a rescue dog named Biscuit",
)
QUERIES = ("what should I not eat?", "where does my family live?", "tips", "dog")


async def _fill(memory: AsyncMemory) -> None:
    for text in TEXTS:
        await memory.add(text, user_id="alice", infer=False)
    await memory.add("Bob likes sailing", user_id="bob", infer=False)  # another scope's mean is not Alice's


def _expected(memory: AsyncMemory, query: str) -> dict[str, float]:
    """Each of Alice's memories' centered similarity, from the ledger's embeddings."""
    parts = memory.engine.components
    ids, vectors = parts.ledger.embeddings(Scope(user_id="alice"), 100)
    centre = vectors.astype(np.float64).mean(0)
    centre /= np.linalg.norm(centre)
    q = parts.embedder.embed([query])[0]
    return {i: float(min(1.0, max(0.0, v @ q)) - CENTERING * (v @ centre)) for i, v in zip(ids, vectors, strict=True)}


async def _assert_centered_as_the_ledger_says(memory: AsyncMemory) -> None:
    for query in QUERIES:
        expected = _expected(memory, query)
        for hit in await _ranked(memory, query):
            assert hit["explain"]["vector"]["centered"] == pytest.approx(expected[hit["id"]], abs=1e-4), query


async def _ranked(memory: AsyncMemory, query: str) -> list[dict]:
    found = await memory.search(query, user_id="alice", threshold=0.0, explain=True, limit=len(TEXTS))
    return [r for r in found["results"] if "vector" in r["explain"]]


async def test_the_vector_signal_is_ordered_and_scaled_by_centered_similarity(amem: AsyncMemory) -> None:
    await _fill(amem)
    for query in QUERIES:
        expected = _expected(amem, query)
        hits = sorted(await _ranked(amem, query), key=lambda r: r["explain"]["vector"]["rank"])
        assert len(hits) == len(TEXTS)
        centered = [h["explain"]["vector"]["centered"] for h in hits]
        assert centered == sorted(centered, reverse=True), query  # ranks follow the centered value
        for hit in hits:
            vector = hit["explain"]["vector"]
            assert vector["centered"] == pytest.approx(expected[hit["id"]], abs=1e-4), (query, hit["memory"])
            # The plain cosine stays the similarity the score is calibrated from.
            assert vector["similarity"] - vector["centered"] > 0
        low, high = min(centered), max(centered)
        for hit in hits:
            vector = hit["explain"]["vector"]
            assert vector["scaled"] == pytest.approx((vector["centered"] - low) / (high - low), abs=1e-5)


async def test_a_memory_close_to_everything_loses_its_lead(amem: AsyncMemory) -> None:
    """A pair the plain cosine orders one way and the centered value the other: the memory
    closer to the scope's centre (a generic remark) goes below the one closer to the query only."""
    await _fill(amem)
    swapped = []
    for query in QUERIES:
        hits = sorted(await _ranked(amem, query), key=lambda h: h["explain"]["vector"]["rank"])
        for above, below in itertools.pairwise(hits):
            a, b = above["explain"]["vector"], below["explain"]["vector"]
            if a["similarity"] < b["similarity"] - 1e-4:  # ranked above with a clearly lower cosine
                # ... because it is farther from the centre: its share subtracted is smaller.
                assert a["similarity"] - a["centered"] < b["similarity"] - b["centered"]
                swapped.append((query, above["memory"], below["memory"]))
    assert swapped, "centering reordered nothing here: the test no longer tests it"
    assert any(generic.startswith("assistant:") for _, _, generic in swapped), swapped


async def test_the_centre_follows_adds_updates_and_deletes(amem: AsyncMemory) -> None:
    """The held scope's sum is kept in step with its commits, not summed once."""
    await _fill(amem)
    await _ranked(amem, "tips")  # the scope is held from here on
    added = (await amem.add("assistant: Happy to help with anything else!", user_id="alice", infer=False))["results"]
    listed = (await amem.get_all(user_id="alice", limit=100))["results"]
    cello = next(m["id"] for m in listed if "cello" in m["memory"])
    await amem.update(cello, "I play the viola on Sundays")
    await amem.delete(next(m["id"] for m in listed if "Lisbon" in m["memory"]))
    assert added
    await _assert_centered_as_the_ledger_says(amem)


async def test_a_scope_too_large_to_hold_ranks_as_a_held_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the held rows, the centre comes from the ledger (``Centroids``) and the candidates'
    embeddings from the ledger too: the same order and values as the held scope's."""
    held = AsyncMemory(MemoryConfig(data_dir=tmp_path / "held", graph="off"))
    held.engine.store.nearest_cache()  # made before the limit below
    monkeypatch.setattr(_nearest, "MAX_ROWS", 3)  # Alice's 8 memories no longer fit
    large = AsyncMemory(MemoryConfig(data_dir=tmp_path / "large", graph="off"))
    try:
        await _fill(held)
        await _fill(large)
        alice, probe = Scope(user_id="alice"), np.zeros(384, np.float32)
        assert held.engine.store.nearest_cache().top(probe, alice, 1) is not None
        assert large.engine.store.nearest_cache().top(probe, alice, 1) is None
        for query in QUERIES:
            a, b = await _ranked(held, query), await _ranked(large, query)
            assert [r["memory"] for r in a] == [r["memory"] for r in b], query
            for x, y in zip(a, b, strict=True):
                assert x["explain"]["vector"]["centered"] == pytest.approx(y["explain"]["vector"]["centered"], abs=1e-5)
        # A small scope not held is read again at every search: another replica's add counts at once.
        await large.add("assistant: Glad I could help, have a nice day!", user_id="alice", infer=False)
        await _assert_centered_as_the_ledger_says(large)
    finally:
        await held.close()
        await large.close()


async def test_a_large_scope_keeps_its_centre_a_while_and_reset_drops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_nearest, "MAX_ROWS", 3)
    monkeypatch.setattr(_centroids, "FRESH_ROWS", 2)  # Alice's scope counts as large
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off"))
    try:
        await _fill(memory)
        reads: list[Scope] = []
        ledger = memory.engine.components.ledger
        summed = ledger.embedding_sum
        monkeypatch.setattr(ledger, "embedding_sum", lambda scope, limit: reads.append(scope) or summed(scope, limit))
        for query in QUERIES:
            await _ranked(memory, query)
        assert reads == [Scope(user_id="alice")]  # read once, then kept
        await memory.reset(confirm=True)
        await _fill(memory)
        await _ranked(memory, "tips")
        assert len(reads) == 2  # reset dropped it: the new memories' centre, not the old one's
        await _assert_centered_as_the_ledger_says(memory)
    finally:
        await memory.close()
