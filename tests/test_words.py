"""Related words (``retrieval._words``): BM25 over word pieces, where a piece of the query counts
in part for a piece of like meaning. A related word counts less than the same word and more than
an unrelated one, and in a real search the first hits are re-ordered by it only when ``words``
has a share, which changes their order and never lifts a score over the hit's own evidence. The
pieces are cut as the model's tokenizer cuts them."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from memorch import AsyncMemory, MemoryConfig
from memorch.models._minilm import WEIGHTS_DIR
from memorch.models._token_vectors import MAX_PIECES, TABLE, WordPieces, word_pieces
from memorch.retrieval._calibration import Ranked, VectorScale, calibrate
from memorch.retrieval._words import word_hits
from memorch.storage.base import VectorHit

BENCH = Path(__file__).resolve().parents[1] / "bench"
SENTENCES = [
    "Caroline: I've been researching adoption agencies this week!",
    "Café naïve résumé — déjà vu, Zürich and São Paulo",
    "user: Can you recommend a good 35mm f/2 lens (Canon EF)? I'm on a budget_plan...",
    "中文字符 and 日本語 mixed with English",
    "tabs\tnew\nlines   and  spaces; commas, periods. questions? exclamations!",
    "supercalifragilisticexpialidocious antidisestablishmentarianism " + "x" * 150,
    "zero\u200bwidth and soft\u00adhyphen characters",
    " ".join(["word"] * 400),  # longer than the window
]


@pytest.mark.parametrize("text", SENTENCES)
def test_the_pieces_are_the_tokenizers(text: str) -> None:
    tokenizer = Tokenizer.from_file(str(WEIGHTS_DIR / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    expected = tokenizer.encode(text, add_special_tokens=False).ids[:MAX_PIECES]
    assert word_pieces().pieces(text).tolist() == expected


def test_a_symbol_stands_alone_where_the_tokenizer_keeps_it_with_its_neighbours() -> None:
    """The one known difference: "€50" is "€" "50" here, "€" "##50" for the tokenizer."""
    table = word_pieces()
    assert table.pieces("€50").tolist() == table.pieces("€ 50").tolist()


def test_a_text_is_read_to_the_embedders_window_and_kept() -> None:
    table = word_pieces()
    long_text = " ".join(["wedding"] * 400)
    assert len(table.pieces(long_text)) == MAX_PIECES
    (bag,) = table.bags([long_text])
    assert bag.length == MAX_PIECES and bag.counts.tolist() == [MAX_PIECES]
    assert table.bags([long_text])[0] is bag  # kept for the next search
    assert table.pieces("Café naïve").tolist() == table.pieces("cafe naive").tolist()  # the tokenizer's rules


def test_a_related_word_counts_less_than_the_same_word_and_more_than_none() -> None:
    texts = {
        "same": "I went to three weddings this spring",
        "related": "We got married in June and the bride wore blue",
        "other": "The printer on the third floor is out of toner",
    }
    hits = word_hits("how many weddings did I attend?", texts, word_pieces())
    assert [h.id for h in hits] == ["same", "related", "other"]
    scores = {h.id: h.score for h in hits}
    assert scores["same"] > scores["related"] > scores["other"] == 0.0


def test_every_candidate_is_listed_and_a_query_of_function_words_lists_none() -> None:
    texts = {"a": "I play the cello", "b": "", "c": "Lisbon is my favourite city"}
    assert {h.id for h in word_hits("cello lessons", texts, word_pieces())} == {"a", "b", "c"}
    assert word_hits("what is it?", texts, word_pieces()) == []
    assert word_hits("cello", {}, word_pieces()) == []
    assert [h.score for h in word_hits("cello", {"b": ""}, word_pieces())] == [0.0]


def test_the_shipped_vectors_are_what_the_script_makes_of_the_model() -> None:
    """``_weights/word_pieces.npy`` (bench/make_word_pieces.py): one int8 row per vocabulary piece,
    recorded in NOTICE, and the cosines between pieces are those the int8 model gives now."""
    spec = importlib.util.spec_from_file_location("make_word_pieces", BENCH / "make_word_pieces.py")
    assert spec is not None and spec.loader is not None
    make_word_pieces = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_word_pieces)
    shipped = np.load(WEIGHTS_DIR / TABLE)
    vocabulary = Tokenizer.from_file(str(WEIGHTS_DIR / "tokenizer.json")).get_vocab_size()
    assert shipped.dtype == np.int8 and shipped.shape == (vocabulary, make_word_pieces.COMPONENTS)
    digest = hashlib.sha256((WEIGHTS_DIR / TABLE).read_bytes()).hexdigest()
    assert f"word_pieces.npy sha256: {digest}" in (WEIGHTS_DIR / "NOTICE").read_text()
    made = make_word_pieces.projected(make_word_pieces.piece_vectors(), make_word_pieces.COMPONENTS)
    sample = np.random.default_rng(0).choice(vocabulary, 300, replace=False)
    table = word_pieces()
    assert table is word_pieces()  # one per process
    again = WordPieces(made).cosines(sample, sample)
    # The int8 model rounds apart on CPUs with and without AVX-512 VNNI (onnxruntime's kernels
    # differ), and the projection's axes move with it: where the table was made (VNNI) the
    # largest difference is under 0.02; on an AVX2-only machine (2026-12-07) mean 0.013, 99th
    # percentile 0.048, largest 0.11. A table from another model or stale by a model change is
    # off by far more on every pair.
    apart = np.abs(table.cosines(sample, sample) - again)
    assert apart.mean() < 0.025 and np.percentile(apart, 99) < 0.1


def test_related_pieces_are_closer_than_unrelated_ones() -> None:
    table = word_pieces()
    pieces = np.array(table.pieces("wedding married bride printer"))
    cosines = table.cosines(pieces, pieces)
    assert np.allclose(np.diag(cosines), 1.0, atol=1e-5)
    wedding, married, bride, printer = range(4)
    assert cosines[wedding, bride] > cosines[wedding, printer]
    assert cosines[wedding, married] > cosines[married, printer]


FACTS = (
    "I went to three weddings this spring",
    "We got married in June and the bride wore blue",
    "The printer on the third floor is out of toner",
    "My sister lives in Lisbon and teaches maths",
    "I play the cello on Sundays",
)


async def test_a_search_reorders_its_first_hits_only_when_words_has_a_share(config: MemoryConfig) -> None:
    question = "how many weddings did I attend?"
    assert config.search_weights["words"] == 0.2  # on by default
    async with AsyncMemory(config.with_overrides(search_weights={"words": 0})) as plain:
        for text in FACTS:
            await plain.add(text, user_id="u", infer=False)
        before = await plain.search(question, user_id="u", explain=True, threshold=0)
    assert all("words" not in hit["explain"] for hit in before["results"])

    async with AsyncMemory(config.with_overrides(search_weights={"words": 1.0})) as only_words:
        after = await only_words.search(question, user_id="u", explain=True, threshold=0)
    words = {hit["memory"]: hit["explain"]["words"] for hit in after["results"]}
    assert sorted(hit["memory"] for hit in after["results"]) == sorted(hit["memory"] for hit in before["results"])
    scaled = [words[hit["memory"]]["scaled"] for hit in after["results"]]
    assert scaled == sorted(scaled, reverse=True)  # share 1: the words alone order them (ties: fused order)
    assert after["results"][0]["memory"] == "I went to three weddings this spring"
    assert all(entry["share"] == 1.0 and entry["soft_bm25"] >= 0 for entry in words.values())
    # The fused values keep their places; a score is still at most the hit's own evidence.
    assert [h["explain"]["fusion"]["fused"] for h in after["results"]] == [
        h["explain"]["fusion"]["fused"] for h in before["results"]
    ]
    for hit in after["results"]:
        assert hit["score"] <= hit["explain"]["fusion"]["evidence"] + 1e-9


@pytest.mark.parametrize("moved_by", ["words", None])
def test_a_weak_hit_moved_up_by_its_words_does_not_cut_the_hits_after_it(moved_by: str | None) -> None:
    """Under the threshold, a hit the re-ordering moved up is left out like one context lifted;
    a hit ranked there by the fusion alone still lowers the scores after it (scores never rise
    down the list)."""
    lifted = {moved_by: {"rank": 1}} if moved_by else {}
    weak = Ranked("weak", 0.9, {"vector": {"similarity": 0.1}, **lifted})
    strong = Ranked("strong", 0.8, {"vector": {"similarity": 0.7}})
    hits = {"vector": [VectorHit("strong", 0.7), VectorHit("weak", 0.1)]}
    scored = calibrate([weak, strong], hits, VectorScale(chance=0.05, ceiling=0.75), min_score=0.3)
    evidence = {item.id: item.signals["fusion"]["evidence"] for item in scored}
    assert evidence["weak"] < 0.3 < evidence["strong"]
    scores = {item.id: item.score for item in scored}
    assert scores["strong"] == pytest.approx(evidence["strong"] if moved_by else evidence["weak"], abs=1e-6)
