"""Diversity in search (``memorch.retrieval._diversity``): among the first hits, one that says
again what a hit above it said gives way to one that says something else; a one- or two-word
query (a topic) is left in its order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.errors import ConfigurationError
from memorch.retrieval._calibration import Ranked
from memorch.retrieval._diversity import DEPTH, diversify

SARAH = [
    "I went to my college roommate Sarah's wedding in June, it was beautiful.",
    "Sarah's wedding in June had such a beautiful ceremony by the lake.",
    "At Sarah's wedding in June the ceremony by the lake was beautiful and I cried.",
]
TOM = "The wedding of my cousin Tom in Boston was last October; the reception was fun."
OTHERS = [
    "I bought a new blender for smoothies.",
    "My dog loves long walks in the park.",
    "I started learning Spanish on an app.",
    "I need to renew my passport before the summer.",
]


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_a_copy_of_a_hit_above_gives_way_and_the_places_keep_their_values() -> None:
    ranked = [Ranked("a", 0.9), Ranked("a-again", 0.85), Ranked("b", 0.8), Ranked("c", 0.2)]
    vectors = {"a": unit(1, 0, 0), "a-again": unit(1, 0.05, 0), "b": unit(0, 1, 0), "c": unit(0, 0, 1)}
    reordered = diversify(ranked, vectors, 0.15)
    assert [r.id for r in reordered] == ["a", "b", "a-again", "c"]
    # The order below is told by the places' values, which never rise down the list.
    assert [r.score for r in reordered] == [0.9, 0.85, 0.8, 0.2]
    # Only the hit moved up is marked (lifted): the others are where fusion put them or lower.
    assert reordered[1].signals["diversity"]["rank"] == 2
    assert reordered[1].signals["diversity"]["redundancy"] == 0.0  # b is unlike a
    assert not any("diversity" in reordered[i].signals for i in (0, 2, 3))


def test_nothing_moves_without_the_weight_and_a_hit_without_a_vector_keeps_its_place() -> None:
    vectors = {"a": unit(1, 0), "a-again": unit(1, 0.01), "b": unit(0, 1)}
    ranked = [Ranked("a", 0.9), Ranked("a-again", 0.85), Ranked("pending", 0.84), Ranked("b", 0.8)]
    assert [r.id for r in diversify(list(ranked), vectors, 0.0)] == ["a", "a-again", "pending", "b"]
    moved = diversify(list(ranked), vectors, 0.15)
    assert [r.id for r in moved] == ["a", "b", "pending", "a-again"]
    assert "diversity" not in moved[2].signals


def test_only_the_first_hits_are_re_ordered() -> None:
    ranked = [Ranked(f"m{i}", 1.0 - i / 100) for i in range(DEPTH + 5)]
    vectors = {r.id: unit(1, 0) for r in ranked}  # all alike: the penalty is the same for all
    vectors["m0"] = unit(0, 1)
    reordered = diversify(ranked, vectors, 0.15)
    assert [r.id for r in reordered] == [r.id for r in ranked]
    assert not any("diversity" in r.signals for r in reordered)  # none moved up
    vectors["m1"] = vectors["m0"]  # now m2 (unlike m0 and m1 alike) passes m1, and m34 stays
    reordered = diversify(ranked, vectors, 0.15)
    assert [r.id for r in reordered[:3]] == ["m0", "m2", "m1"] and reordered[-1].id == f"m{DEPTH + 4}"
    assert [r.id for r in reordered if "diversity" in r.signals] == ["m2"]


@pytest.fixture
async def weddings(tmp_path: Path) -> MemoryConfig:
    """Three tellings of one wedding, another wedding, unrelated facts; told months apart (so no
    context between them)."""
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off")
    items = [*SARAH, TOM, *OTHERS]
    async with AsyncMemory(config) as memory:
        await memory.import_memories(
            [{"memory": text, "created_at": f"2025-{i + 1:02d}-01T10:00:00Z"} for i, text in enumerate(items)],
            user_id="u",
        )
    return config


async def ranks(config: MemoryConfig, query: str, diversity: float | None = None) -> list[dict]:
    if diversity is not None:
        config = config.with_overrides(search_weights={"diversity": diversity})
    async with AsyncMemory(config) as memory:
        found = await memory.search(query, user_id="u", limit=5, explain=True)
    return found["results"]


async def test_a_question_finds_the_other_wedding_before_more_tellings_of_the_first(weddings: MemoryConfig) -> None:
    question = "How many weddings have I attended?"
    plain = [r["memory"] for r in await ranks(weddings, question, diversity=0.0)]
    assert plain.index(TOM) == 3  # after every telling of Sarah's wedding
    # In a store this small the fused values lie far apart, so a full weight shows the effect.
    found = await ranks(weddings, question, diversity=1.0)
    texts = [r["memory"] for r in found]
    assert texts.index(TOM) == 1 and set(texts[:4]) == {*SARAH, TOM}
    tom = found[1]
    assert tom["explain"]["diversity"]["rank"] == 2 and tom["explain"]["diversity"]["redundancy"] > 0
    assert tom["score"] <= tom["explain"]["fusion"]["evidence"]
    assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)
    assert [r["memory"] for r in found if "diversity" in r["explain"]] == [TOM]  # the one moved up
    # On by default (in this small store the default weight moves nothing).
    assert MemoryConfig(data_dir=weddings.data_dir).search_weights["diversity"] == 0.15


async def test_a_topic_of_a_word_or_two_keeps_its_order(weddings: MemoryConfig) -> None:
    for query in ("weddings", "wedding ceremony"):
        found = await ranks(weddings, query)
        assert [r["memory"] for r in found] == [r["memory"] for r in await ranks(weddings, query, diversity=0.0)]
        assert not any("diversity" in r["explain"] for r in found)


def test_diversity_is_a_share_of_at_most_one() -> None:
    with pytest.raises(ConfigurationError, match="diversity is a share, at most 1"):
        MemoryConfig(search_weights={"diversity": 2})
