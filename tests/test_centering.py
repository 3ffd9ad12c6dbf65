"""The vector signal orders its candidates by centered similarity (``retrieval._centering``):
the cosine to the query less CENTERING times the cosine to the scope's mean embedding. Checked
against vectors computed here from the ledger's embeddings, for a scope held in memory and for
one too large to hold (the ledger's mean), which must rank alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.engine import _nearest
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


async def test_generic_memories_lose_their_lead_to_the_specific_one(amem: AsyncMemory) -> None:
    """Centering moves a memory close to everything down against one close to the query only:
    the plain cosine's order and the centered order differ exactly as the arithmetic says."""
    await _fill(amem)
    moved = 0
    for query in QUERIES:
        hits = await _ranked(amem, query)
        by_cosine = [h["id"] for h in sorted(hits, key=lambda h: -h["explain"]["vector"]["similarity"])]
        by_rank = [h["id"] for h in sorted(hits, key=lambda h: h["explain"]["vector"]["rank"])]
        moved += by_cosine != by_rank
    assert moved, "centering changed no order on these queries: the test no longer tests it"


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
    finally:
        await held.close()
        await large.close()
