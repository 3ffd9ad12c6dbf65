"""Fusion weighs each similarity signal by how far its best candidates stand out from its list
(``retrieval._search.peak``): the fused value of every hit of a real search is the weighted mean
of its scaled values, under the weights that search's own lists give, and a list with one clear
best counts for more than a flat one."""

from __future__ import annotations

import pytest

from memorch import AsyncMemory
from memorch.retrieval._search import PEAK_FLOOR, PEAK_TOP, fuse, peak
from memorch.storage.base import VectorHit
from tests.test_relevance import FACTS as RELEVANCE_FACTS

FACTS = (
    *RELEVANCE_FACTS,
    "We adopted a rescue dog named Biscuit",
    "The cello teacher moved our lesson to Saturday this week",
    "Ana sent photos of the Porto riverside",
)


def test_peak_is_zero_for_a_flat_list_and_largest_for_one_outlier() -> None:
    assert peak([0.5] * 20) == 0.0
    assert peak([1.0] + [0.0] * 30) == pytest.approx(1 - 1 / PEAK_TOP)
    assert peak([1.0, 0.9, 0.8, 0.7] + [0.0] * 20) < peak([1.0, 0.2, 0.1, 0.1] + [0.0] * 20)
    assert peak([3.0]) == pytest.approx(1 - 1 / PEAK_TOP)  # the one match there is stands out most


def test_a_peaked_list_outweighs_a_flat_one() -> None:
    """The same two memories, each first in one list: the list whose best stands out wins."""
    clear = [VectorHit("a", 10.0), *(VectorHit(f"x{i}", 1.0) for i in range(20)), VectorHit("b", 0.5)]
    flat = [VectorHit("b", 0.80), *(VectorHit(f"y{i}", 0.79 - i * 0.001) for i in range(20)), VectorHit("a", 0.5)]
    assert fuse({"vector": flat, "text": clear}, {"vector": 1.0, "text": 1.0})[0].id == "a"
    assert fuse({"vector": clear, "text": flat}, {"vector": 1.0, "text": 1.0})[0].id == "a"


async def test_a_search_fuses_with_the_weights_its_own_lists_give(amem: AsyncMemory) -> None:
    for text in FACTS:
        await amem.add(text, user_id="alice", infer=False)
    for query in ("cello", "where does Ana live?", "what should I not eat"):
        found = await amem.search(query, user_id="alice", threshold=0.0, explain=True, limit=len(FACTS))
        hits = [r["explain"] for r in found["results"]]
        weights = {}
        for name in ("vector", "text"):
            values = [h[name]["centered" if name == "vector" else "bm25"] for h in hits if name in h]
            if values:
                weights[name] = PEAK_FLOOR + peak(values)
                assert all(h[name]["weight"] == pytest.approx(weights[name], abs=1e-4) for h in hits if name in h)
        for h in (h for h in hits if "context" not in h):  # a neighbour's lift is context's (test_context)
            mean = sum(weights[n] * h[n]["scaled"] for n in weights if n in h) / sum(weights.values())
            assert h["fusion"]["fused"] == pytest.approx(mean, abs=1e-5), query
        assert len(set(weights.values())) == len(weights), query  # the lists differ, so do their weights


async def test_the_one_memory_holding_a_rare_word_comes_first(amem: AsyncMemory) -> None:
    """600 tickets alike but for their numbers: "ticket 1253" finds ticket 1253 first. The text
    signal's one hit weighed least (a list of one had no spread, so peak 0), and the numbers'
    meaning put 1252 or 1251 above it for 12 of 30 numbers (a newcomer's trial)."""
    issues = ("cannot log in", "invoice is wrong", "app crashes on start", "password reset email missing")
    items = [{"memory": f"Support ticket {1000 + i}: customer says {issues[i % 4]}"} for i in range(600)]
    await amem.import_memories(items, user_id="ops")
    for number in range(1003, 1600, 23):
        found = await amem.search(f"ticket {number}", user_id="ops", limit=3)
        assert found["results"][0]["memory"].startswith(f"Support ticket {number}:"), number
