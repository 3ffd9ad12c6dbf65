"""Fragments in search (``memorch.retrieval._fragments``): a memory of a word or two ("ok",
"thanks!") is measured against what a word or two of unrelated text scores for the query, so a
keyword search finds the fact, not the filler, and one about nothing stored comes back empty.
Real stores and the bundled embedder, in a temporary directory (a newcomer's trial, 2026-12-07:
`job` returned "ok" at the Siemens fact's score, `dog` and `football` returned "ok")."""

from __future__ import annotations

import pytest

from memorch import AsyncMemory
from memorch.retrieval._fragments import discount, fragment_words
from memorch.storage.base import VectorHit

FACTS = [
    "I work as a software engineer at Siemens",
    "My sister Ana lives in Berlin",
    "I am vegetarian",
    "I play the cello on Sundays",
]
FILLER = ["ok", "thanks!", "yes please", "lol"]


@pytest.fixture
async def chatty(amem: AsyncMemory) -> AsyncMemory:
    """A store of a user's facts and the filler a chat stored verbatim keeps."""
    for text in FACTS + FILLER:
        await amem.add(text, user_id="u", infer=False)
    return amem


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ok", 1),
        ("thanks!", 1),
        ("yes please", 2),
        ("  Berlin ", 1),
        ("I am vegetarian", 0),
        ("", 0),
        ("  ", 0),
        # Emoji and punctuation are filler too; other scripts' words are what spaces separate.
        ("👍", 1),
        ("😂😂", 1),
        ("??", 1),
        ("…", 1),
        ("नमस्ते दोस्त", 2),
        ("감사합니다", 1),
    ],
)
def test_a_fragment_is_a_word_or_two(text: str, words: int) -> None:
    assert fragment_words(text) == words


def test_a_run_of_text_without_spaces_is_no_fragment() -> None:
    # CJK is written without spaces: a sentence is one "word" to the pattern, but not short.
    assert fragment_words("我在西门子做软件工程师已经五年了住在柏林") == 0
    assert fragment_words("柏林") == 2  # two characters are a fragment, as two words are


def test_the_discount_moves_a_fragment_below_what_it_outranked() -> None:
    hits = [VectorHit("ok", 0.30, 0.28), VectorHit("fact", 0.32, 0.27), VectorHit("other", 0.10, 0.05)]
    out = discount(hits, {"ok": 1}, {1: 0.2, 2: 0.1})
    assert [h.id for h in out] == ["fact", "ok", "other"]
    assert out[1].score == pytest.approx(0.10) and out[1].order == pytest.approx(0.08)
    assert out[0] is hits[1]  # a sentence keeps its values


async def test_a_keyword_finds_the_fact_not_the_filler(chatty: AsyncMemory) -> None:
    found = await chatty.search("job", user_id="u")
    texts = [r["memory"] for r in found["results"]]
    assert texts[0] == FACTS[0]
    assert not set(texts) & set(FILLER)


async def test_a_keyword_about_nothing_stored_comes_back_empty(chatty: AsyncMemory) -> None:
    for reaction in ("👍", "😂😂"):  # a review: reactions answered "football" at 0.39 as "ok" had
        await chatty.add(reaction, user_id="u", infer=False)
    found = await chatty.search("football", user_id="u")
    assert found["results"] == []
    assert found["below_threshold"]["count"] > 0  # it says weaker matches exist
    # "dog" finds "I am vegetarian" (a weak association of the model's, 0.33), never the filler
    # ("ok" scored 0.49 before).
    dog = {r["memory"] for r in (await chatty.search("dog", user_id="u"))["results"]}
    assert not dog & {*FILLER, "👍", "😂😂"}


async def test_explain_names_the_fragments_excess(chatty: AsyncMemory) -> None:
    found = await chatty.search("job", user_id="u", threshold=0, explain=True)
    by_text = {r["memory"]: r["explain"] for r in found["results"]}
    assert by_text["ok"]["vector"]["fragment_excess"] > 0.1
    assert "fragment_excess" not in by_text[FACTS[0]]["vector"]


async def test_a_fragment_on_the_topic_is_still_found(amem: AsyncMemory) -> None:
    for text in ["cello", "ok", "I am vegetarian"]:
        await amem.add(text, user_id="u", infer=False)
    found = await amem.search("music", user_id="u")
    assert [r["memory"] for r in found["results"]][:1] == ["cello"]
    assert found["results"][0]["score"] >= 0.3
