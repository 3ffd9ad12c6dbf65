"""The threshold: a caller's is a floor for every hit; the default decides whether a search has
an answer (its best hit at 0.3) and then keeps the hits after it down to half of that
(``memorch.retrieval._cut``)."""

from __future__ import annotations

import pytest

from memorch import Memory
from memorch.retrieval._calibration import Ranked, VectorScale, calibrate
from memorch.retrieval._cut import TAIL_SHARE, Cut
from memorch.retrieval._search import _first
from memorch.storage.base import VectorHit

HABITS = (
    "I am allergic to peanuts",
    "My doctor said I should cut down on sugar",
    "I live in Lisbon",
    "My sister is called Ana",
    "We had dinner at a Thai place on Friday",
    "I ran a half marathon in April",
    "I bought a new bike for commuting",
)


def test_a_given_threshold_is_a_floor_for_every_hit_and_the_default_has_a_tail() -> None:
    assert Cut.of(0.4, 0.3) == Cut(0.4, 0.4)
    assert Cut.of(0.0, 0.3) == Cut(0.0, 0.0)
    assert Cut.of(None, 0.3) == Cut(0.3, 0.3 * TAIL_SHARE) == Cut(0.3, 0.15)
    default = Cut(0.3, 0.15)
    assert default.split([]) == ([], [], 0.3)
    # no hit at 0.3: no answer, every hit counted under 0.3
    assert default.split([0.29, 0.2, 0.1]) == ([], [0.29, 0.2, 0.1], 0.3)
    # an answer: the hits from 0.15 up, wherever they rank; those under 0.15 counted under it
    assert default.split([0.2, 0.5, 0.1, 0.16]) == ([0, 1, 3], [0.1], 0.15)
    assert Cut(0.3, 0.3).split([0.5, 0.2]) == ([0], [0.2], 0.3)
    assert Cut(0.0, 0.0).split([0.0]) == ([0], [], 0.0)


@pytest.mark.parametrize("lifted_evidence", [0.1, 0.2])
def test_a_weak_lifted_first_hit_neither_empties_the_answer_nor_lowers_the_hits_after_it(
    lifted_evidence: float,
) -> None:
    """A hit related words moved to the top with its own evidence under 0.3 (above or under the
    tail's 0.15) is there for its words: the strong hit after it keeps its score, and the answer
    is not empty."""
    scale = VectorScale(chance=0.0, ceiling=1.0)  # relevance = similarity
    weak = Ranked("weak", 0.9, {"vector": {"similarity": lifted_evidence}, "words": {"rank": 1}})
    strong = Ranked("strong", 0.8, {"vector": {"similarity": 0.6}, "words": {"rank": 2}})
    hits = {"vector": [VectorHit("strong", 0.6), VectorHit("weak", lifted_evidence)]}
    cut = Cut.of(None, 0.3)
    scored = _first(calibrate([weak, strong], hits, scale, cut.answer), 10, cut.each)
    assert [item.id for item in scored] == ["weak", "strong"]
    scores = [item.score for item in scored]
    assert scores == pytest.approx([lifted_evidence, 0.6])
    kept, below, floor = cut.split(scores)
    assert [scored[i].id for i in kept] == (["weak", "strong"] if lifted_evidence >= 0.15 else ["strong"])
    assert below == ([] if lifted_evidence >= 0.15 else [pytest.approx(lifted_evidence)])
    assert floor == 0.15


def test_the_default_keeps_weaker_hits_after_a_match_and_nothing_without_one(mem: Memory) -> None:
    for text in HABITS:
        mem.add(text, user_id="u", infer=False)
    every = {r["memory"]: r["score"] for r in mem.search("exercise", user_id="u", threshold=0)["results"]}
    default = mem.search("exercise", user_id="u")
    kept = [r["memory"] for r in default["results"]]
    assert kept[0] == "I ran a half marathon in April" and every[kept[0]] >= 0.3
    # the commuting bike scores under 0.3 on its own, and comes with the marathon by default ...
    assert 0.15 <= every["I bought a new bike for commuting"] < 0.3
    assert "I bought a new bike for commuting" in kept
    assert all(r["score"] >= 0.15 for r in default["results"])
    assert default["below_threshold"]["threshold"] == 0.15
    assert all(every[text] < 0.15 for text in set(HABITS) - set(kept))
    # ... but not when the caller asks for 0.3 on every hit
    strict = mem.search("exercise", user_id="u", threshold=0.3)
    # (The sugar fact scores 0.29-0.31 with the int8 model, by the CPU's int8 instructions.)
    assert [r["memory"] for r in strict["results"]] == [text for text in kept if every[text] >= 0.3]
    assert "I bought a new bike for commuting" not in {r["memory"] for r in strict["results"]}
    assert strict["below_threshold"]["threshold"] == 0.3

    # A search whose best hit is under 0.3 has no answer, though a hit scores over 0.15.
    weak = {r["memory"]: r["score"] for r in mem.search("sports", user_id="u", threshold=0)["results"]}
    assert 0.15 <= max(weak.values()) < 0.3
    none = mem.search("sports", user_id="u")
    assert none["results"] == []
    assert none["below_threshold"] == {"count": len(HABITS), "best_score": max(weak.values()), "threshold": 0.3}


def test_a_search_as_of_a_time_applies_the_same_cut(mem: Memory) -> None:
    for text in HABITS:
        mem.add(text, user_id="u", infer=False)
    now = "2999-01-01T00:00:00Z"
    every = {r["memory"]: r["score"] for r in mem.search("exercise", user_id="u", threshold=0, as_of=now)["results"]}
    kept = [r["memory"] for r in mem.search("exercise", user_id="u", as_of=now)["results"]]
    assert kept == [text for text, score in sorted(every.items(), key=lambda x: -x[1]) if score >= 0.15]
    assert max(every.values()) >= 0.3
    weak = mem.search("sports", user_id="u", threshold=0, as_of=now)["results"]
    assert weak and weak[0]["score"] < 0.3
    none = mem.search("sports", user_id="u", as_of=now)
    assert none["results"] == [] and none["below_threshold"]["threshold"] == 0.3
    assert none["below_threshold"]["count"] == len(HABITS)
