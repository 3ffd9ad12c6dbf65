"""The score's absolute scale: what a hit's similarity and BM25 mean as evidence of relevance.

The order of a search comes from fusion (``memorch.retrieval._search``); the score each hit
carries comes from here. Each signal is put on a fixed scale, then combined (docstring of
``_search`` for the whole argument):

- vector: ``(cosine - chance) / (ceiling - chance)``, clipped to [0, 1]. ``chance`` is the median
  cosine between the query and ``CHANCE_SENTENCES`` (unrelated everyday sentences): "no closer
  than unrelated sentences are". ``ceiling`` is how close a text about exactly the query's topic
  can get to a query this short: a one-word query sits far from every sentence, including the one
  that answers it (all-MiniLM-L6-v2: a sentence's best single content word has median cosine 0.59
  to the sentence, its best two consecutive ones 0.77, three 0.86). Both are measured on the embedder
  itself, once per model, from the same sentences (``EXCERPT_WORDS``), never from benchmark data:
  with ``ceiling`` fixed at 1, "job" scored 0.25 against "I work as a nurse" where "what is my
  job?" scored 0.40, and keyword searches came back empty at the default threshold.
- text: ``bm25 / (bm25 + half)``, a saturating transform (BM25 has no upper bound); ``half`` is
  ``TEXT_HALF`` for a query of ``TEXT_HALF_WORDS`` content words or more, proportionally less for
  a shorter one (``text_half``).
- time (when the query names one, ``_when``): ``TIME_EVIDENCE`` times the hit's min-max place
  among the memories created in that span, times the share of candidates outside the span.
- evidence = ``1 - (1 - vector)(1 - text)(1 - time)``; a hit's score is the lowest evidence
  among it and every hit above it, so scores never rise down the list, except where a lifted hit
  under the threshold shows its own evidence (``calibrate``, ``set_aside``).
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memorch.storage.base import VectorHit

# BM25 score at which the text signal alone counts as relevance 0.5. Chosen on two LOCOMO
# conversations (conv-26, conv-30) from 5, 10, 20, 40, 80 by AUROC, then reported on the other
# three (docs/search.md). BM25's IDF grows with the log of the table's size, so in a much
# smaller or larger store the text signal weighs a little less or more; the vector scale does not
# depend on the store.
TEXT_HALF = 40.0
# ... for a query of this many content words or more (LOCOMO's questions: median 5, mean 5.4).
# BM25 sums over the query's words, so a shorter query's best match scores less: a one-word
# query's half is a fifth (8), as the vector scale's ceiling is lower for a short query. With 40
# for every query, keyword searches lost 0.07-0.08 of recall@10 to the threshold on LOCOMO dev
# (bench/keyword_queries.py; docs/search.md "Short queries"). Longer queries keep 40: their
# BM25 can sum more words, but a hit rarely matches more than a few.
TEXT_HALF_WORDS = 5
# What being said in the time a query names counts as evidence, for the span's memory closest in
# meaning (the others in proportion, by their min-max place in the span's list): "what did we
# talk about yesterday?" is about yesterday more than about any words, and its best matches from
# then must pass the default threshold (0.3); a memory from then that also matches the words
# scores higher still.
TIME_EVIDENCE = 0.5

# Unrelated everyday sentences (no benchmark data): their mean pairwise cosine is the embedder's
# chance level, the similarity that means "nothing in common".
CHANCE_SENTENCES = (
    "I am allergic to shellfish",
    "The train to the airport leaves every twenty minutes",
    "My daughter started learning the violin",
    "We repainted the kitchen a pale green last spring",
    "How do I reset the router password?",
    "The quarterly report is due on Friday",
    "She ran her first marathon in under four hours",
    "Our cat refuses to eat dry food",
    "What time does the pharmacy close on Sundays?",
    "He collects vintage fountain pens",
    "The museum has a new exhibit on ancient Egypt",
    "I prefer tea without sugar",
    "The basement flooded after the storm",
    "Remind me to renew my passport in March",
    "They adopted a rescue dog named Biscuit",
    "The lecture covered the history of the printing press",
    "My landlord raised the rent by five percent",
    "I usually go hiking in the mountains in autumn",
    "Which laptop has the longest battery life?",
    "Grandma's recipe uses cardamom and orange zest",
    "The football match was postponed because of snow",
    "I am learning to speak Japanese",
    "The dentist appointment moved to next Tuesday",
    "We planted tomatoes and basil on the balcony",
)

# Query lengths (content words) at which the ceiling is measured; between two, it is
# interpolated; past the last, the last holds.
EXCERPT_WORDS = (1, 2, 3, 4, 6)
# Words that carry no topic: left out when counting a query's words and cutting excerpts.
_FUNCTION_WORDS = """a an the i me my we our you your he him his she her it its they them their am is are
was were be been do does did to of in on at by for from with about as and or but if so what which who
whom when where why how that this these those there here any some all every have has had can could
will would should may might must not no"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
# The bundled MiniLM's ceilings, as ``measure_ceilings`` gives them (tests/test_relevance.py
# measures them again and compares): measuring costs a first search ~360 embeddings, seconds on a
# busy laptop, for numbers that only change with the model.
BUNDLED_CEILINGS = {
    "local/all-MiniLM-L6-v2": {1: 0.5855, 2: 0.7425, 3: 0.8299, 4: 0.9062, 6: 0.9280},
    "local/all-MiniLM-L6-v2-int8": {1: 0.5825, 2: 0.7309, 3: 0.8209, 4: 0.8934, 6: 0.9173},
}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_scales: dict[str, tuple[np.ndarray, dict[int, float]]] = {}
_scale_lock = threading.Lock()


@dataclass
class Ranked:
    id: str
    score: float
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)


def fused_order(item: Ranked) -> tuple[float, float, str]:
    """The sort key of a search's order: fused value; ties to the closer meaning, then the id."""
    return (-item.score, -item.signals.get("vector", {}).get("similarity", 0.0), item.id)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in FUNCTION_WORDS]


def text_half(query: str) -> float:
    """The BM25 score at which the text signal alone means relevance 0.5 for this query."""
    words = min(max(1, len(content_words(query))), TEXT_HALF_WORDS)
    return TEXT_HALF * words / TEXT_HALF_WORDS


def unit_rows(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def _windows() -> list[tuple[int, int, list[str], int]]:
    """Every run of n consecutive content words of every reference sentence, per n in
    ``EXCERPT_WORDS`` (the whole sentence when it has fewer): (n, sentence, words, start)."""
    out = []
    for n in EXCERPT_WORDS:
        for i, sentence in enumerate(CHANCE_SENTENCES):
            words = content_words(sentence)
            out += [(n, i, words, j) for j in range(max(1, len(words) - n + 1))]
    return out


def measure_ceilings(embedder: Any, sentences: np.ndarray) -> dict[int, float]:
    """The ceiling per query length for ``embedder``: over the reference sentences (``sentences``:
    their unit vectors), the median of the best cosine between a sentence and any n consecutive
    content words of it (how close n words that name a topic as well as n words can get to a
    sentence on it). ~360 short texts to embed."""
    windows = [(n, i, " ".join(words[j : j + n])) for n, i, words, j in _windows()]
    vectors = unit_rows(embedder.embed([text for _, _, text in windows]))
    cosines = (vectors * sentences[[i for _, i, _ in windows]]).sum(1)
    best: dict[tuple[int, int], float] = {}
    for (n, i, _), cosine in zip(windows, cosines, strict=True):
        best[n, i] = max(best.get((n, i), -1.0), float(cosine))
    return {n: float(np.median([best[n, i] for i in range(len(CHANCE_SENTENCES))])) for n in EXCERPT_WORDS}


def reference(embedder: Any) -> tuple[np.ndarray, dict[int, float]]:
    """Per embedder model, once per process: the unit vectors of ``CHANCE_SENTENCES`` and the
    ceilings, the bundled model's from ``BUNDLED_CEILINGS`` and any other model's measured (the
    embedding cache keeps those texts' vectors for the next process)."""
    model = embedder.model_id
    with _scale_lock:
        if model in _scales:
            return _scales[model]
    sentences = unit_rows(embedder.embed(list(CHANCE_SENTENCES)))
    ceilings = BUNDLED_CEILINGS.get(model) or measure_ceilings(embedder, sentences)
    with _scale_lock:
        _scales[model] = (sentences, ceilings)
    return sentences, ceilings


@dataclass(frozen=True)
class VectorScale:
    """Where a query's cosines mean nothing (``chance``) and everything (``ceiling``)."""

    chance: float
    ceiling: float

    def relevance(self, similarity: Any) -> Any:
        """Of a cosine, or of an array of them (elementwise)."""
        if isinstance(similarity, float):  # a search scores ~150 hits one by one: no numpy call
            return min(max((similarity - self.chance) / (self.ceiling - self.chance), 0.0), 1.0)
        return np.clip((similarity - self.chance) / (self.ceiling - self.chance), 0.0, 1.0)


def _ceiling(ceilings: dict[int, float], words: int) -> float:
    lengths = sorted(ceilings)
    if words <= lengths[0]:
        return ceilings[lengths[0]]
    for low, high in itertools.pairwise(lengths):
        if words <= high:
            return ceilings[low] + (ceilings[high] - ceilings[low]) * (words - low) / (high - low)
    return ceilings[lengths[-1]]


def vector_scale(embedder: Any, query: str, query_vector: np.ndarray) -> VectorScale:
    """The query's scale: ``chance`` is the median cosine between it and ``CHANCE_SENTENCES``
    (the median, so one reference sentence on the query's topic does not move it; per query,
    because it varies with the embedder and the query's length); ``ceiling`` the embedder's
    measured ceiling for a query of this many content words."""
    sentences, ceilings = reference(embedder)
    vector = np.asarray(query_vector, dtype=np.float32)
    cosines = sentences @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
    # Clamped: a negative or near-1 level would make the scale meaningless.
    chance = float(min(max(np.median(cosines), 0.0), 0.9))
    ceiling = _ceiling(ceilings, max(1, len(content_words(query))))
    return VectorScale(chance, max(ceiling, chance + 0.05))


def calibrate(
    ranked: list[Ranked],
    signals: dict[str, list[VectorHit]],
    scale: VectorScale,
    min_score: float = 0.0,
    half: float = TEXT_HALF,
    time_factor: float = 0.0,
) -> list[Ranked]:
    """Replace each fused value by absolute relevance, keeping the fused order (module docstring).
    A hit lifted by context, time, related words or diversity (``set_aside``) whose own evidence
    is under ``min_score`` (the search's ``Cut.answer``) keeps that evidence as its score and does
    not lower the scores below it: it is there for its neighbour, its time or its words, so the threshold
    leaves it out, or (under the default, between ``Cut.each`` and ``Cut.answer``) returns it at
    its own evidence, without cutting the hits after it.
    ``half``: the query's ``text_half``; ``time_factor``: the time signal's weight factor (the
    share of candidates outside the span the query names), which scales its evidence too."""
    vector_hits = signals.get("vector") or []
    floor = min((h.score for h in vector_hits), default=scale.chance)
    running = 1.0  # the lowest evidence so far down the list
    for item in ranked:
        value = _evidence(item, floor, scale, half, time_factor)
        aside = set_aside(item, value, min_score)
        score = value if aside else min(running, value)
        running = running if aside else score
        item.signals["fusion"] = {"fused": round(item.score, 6), "evidence": round(value, 6), "score": round(score, 6)}
        item.score = score
    return ranked


LIFTS = ("context", "time", "words", "diversity")


def set_aside(item: Ranked, score: float, min_score: float) -> bool:
    """Whether a hit scoring ``score`` is there only for its neighbour, its time, its words or
    what it adds: lifted by context (``_context``), by the time the query names (``_when``),
    re-ordered by related words (``_words``) or for diversity (``_diversity``), and under
    ``min_score``. It does not lower the scores after it (a weak hit moved up would otherwise cut
    every hit after it); ``_search._first`` gives it no place when the threshold leaves it out."""
    return any(lift in item.signals for lift in LIFTS) and score < min_score


def _evidence(item: Ranked, floor: float, scale: VectorScale, half: float, time_factor: float) -> float:
    """A hit's own evidence: ``1 - (1 - vector)(1 - text)(1 - time)``; each signal's calibrated
    relevance is written into its explain entry."""
    vector, time = item.signals.get("vector"), item.signals.get("time")
    # A memory only the time signal found has its cosine there (the same similarity).
    similarity = vector["similarity"] if vector else time["similarity"] if time else floor
    v = scale.relevance(float(similarity))
    text = item.signals.get("text")
    t = text["bm25"] / (text["bm25"] + half) if text and text["bm25"] > 0 else 0.0
    when = TIME_EVIDENCE * time_factor * time["scaled"] if time else 0.0
    if vector:
        vector["relevance"] = round(v, 6)
    if text:
        text["relevance"] = round(t, 6)
    if time:
        time["relevance"] = round(when, 6)
    return 1.0 - (1.0 - v) * (1.0 - t) * (1.0 - when)
