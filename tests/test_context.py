"""Context in search (``memorch.retrieval._context``): a hit brings along what was said next to it,
in the order it was said (an import keeps its items' order), without raising anyone's score."""

from __future__ import annotations

from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.retrieval._calibration import Ranked, VectorScale, calibrate

CONVERSATION = [
    "Anna: I finally booked the trip to Japan!",
    "Ben: Nice, which cities are you going to?",
    "Anna: Two weeks in April, leaving from Boston.",
    "Ben: My sister moved to Berlin last year.",
    "Anna: Does she like the weather there?",
    "Ben: She says the winters are long and grey.",
    "Anna: I bought new running shoes yesterday.",
    "Ben: I have been learning to bake sourdough bread.",
]


async def rank_of(config: MemoryConfig, text: str, context: float) -> tuple[int, dict]:
    async with AsyncMemory(config.with_overrides(search_weights={"context": context})) as memory:
        found = await memory.search("Anna's trip to Japan", user_id="u", limit=8, threshold=0, explain=True)
    texts = [r["memory"] for r in found["results"]]
    return texts.index(text), found["results"][texts.index(text)]


async def test_an_answer_said_next_to_the_hit_moves_up_with_context(tmp_path: Path) -> None:
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off")
    async with AsyncMemory(config) as memory:
        result = await memory.import_memories([{"memory": text} for text in CONVERSATION], user_id="u")
        assert result["imported"] == len(CONVERSATION)
        listed = await memory.get_all(user_id="u", limit=20)
    # The import kept the conversation's order (newest first in a list).
    assert [m["memory"] for m in listed["results"]] == CONVERSATION[::-1]
    answer = "Ben: Nice, which cities are you going to?"
    without, _ = await rank_of(config, answer, 0.0)
    with_context, hit = await rank_of(config, answer, 0.3)
    assert with_context < without
    assert hit["explain"]["context"]["of"]  # lifted by a hit said next to it
    # Its score is still its own evidence, not the hit's.
    assert hit["score"] <= hit["explain"]["fusion"]["evidence"]


def test_a_lifted_memory_under_the_threshold_does_not_lower_the_others() -> None:
    scale = VectorScale(chance=0.0, ceiling=1.0)
    hit = Ranked("hit", 1.0, {"vector": {"similarity": 0.9}})
    lifted = Ranked("next", 0.8, {"vector": {"similarity": 0.1}, "context": {"of": "hit", "lift": 0.3}})
    other = Ranked("other", 0.5, {"vector": {"similarity": 0.6}})
    scored = calibrate([hit, lifted, other], {"vector": []}, scale, min_score=0.3)
    # The lifted one keeps its own evidence (the threshold leaves it out); the one after it keeps 0.6.
    assert [(r.id, round(r.score, 6)) for r in scored] == [("hit", 0.9), ("next", 0.1), ("other", 0.6)]
    # Without a threshold it stays, and the scores below it never rise above its own.
    kept = calibrate([Ranked(r.id, s, r.signals) for r, s in ((hit, 1.0), (lifted, 0.8), (other, 0.5))], {}, scale)
    assert [r.id for r in kept] == ["hit", "next", "other"] and kept[2].score == pytest.approx(0.1)


FACTS = [
    "I live in Berlin with my wife Anna.",
    "I am allergic to peanuts.",
    "My mother lives in Munich.",
    "I play guitar in a small band.",
    "I work as a software engineer at Siemens.",
    "My daughter Mia is seven years old.",
    "My dog is a beagle called Bruno.",
    "I drink oat milk in my coffee.",
    "I drive a Volkswagen Golf.",
    "My brother Tom lives in Hamburg.",
]
LIVING = {"I live in Berlin with my wife Anna.", "My mother lives in Munich.", "My brother Tom lives in Hamburg."}


@pytest.mark.parametrize("query", ["Where do I live?", "Where does my family live?"])
async def test_facts_told_one_after_another_do_not_lift_each_other(amem: AsyncMemory, query: str) -> None:
    """A user's unrelated facts, added one by one, are each other's neighbours in time: only a
    neighbour alike in meaning is lifted (a newcomer's trial: "I am allergic to peanuts" ranked
    above "My mother lives in Munich" for "Where do I live?")."""
    for fact in FACTS:
        await amem.add(fact, user_id="u", infer=False)
    found = (await amem.search(query, user_id="u", limit=5, threshold=0, explain=True))["results"]
    assert {hit["memory"] for hit in found[:3]} == LIVING, [(h["memory"], h["explain"].get("context")) for h in found]


async def test_a_fact_told_next_to_the_answer_is_not_lifted_unless_alike(amem: AsyncMemory) -> None:
    """A second trial: "My birthday is on March 14", told just before "I drive a blue Volkswagen
    Golf" (cosine ~0.15 between them with the int8 model, over the 0.15 bar of then), came second
    for "what car do I drive?", lifted as the car's context."""
    facts = [
        "My wife Sofia is a teacher",
        "We have two kids, Leo (7) and Mia (4)",
        "My birthday is on March 14",
        "I drive a blue Volkswagen Golf",
        "I'm learning Japanese on Duolingo",
    ]
    for fact in facts:
        await amem.add(fact, user_id="u", infer=False)
    found = (await amem.search("what car do I drive?", user_id="u", threshold=0, explain=True))["results"]
    car = found[0]
    assert car["memory"] == "I drive a blue Volkswagen Golf"
    birthday = next(hit for hit in found if hit["memory"] == "My birthday is on March 14")
    # Not the car's context. (It may be the kids' line's: cosine 0.258-0.260 with the int8 model
    # on AVX-512 VNNI cores, over the bar, with a lift of ~0.001.)
    assert birthday["explain"].get("context", {}).get("of") != car["id"]
