"""Fragments: a memory of a word or two ("ok", "thanks!", "Berlin") is measured against what a
word or two of unrelated text scores for the query, not against what a sentence scores.

Why: the vector scale's ``chance`` is the query's median cosine to unrelated *sentences*
(``_calibration``), and a word or two sits much closer to a short query than a sentence does,
whatever it says: for ``job`` (int8 MiniLM) unrelated sentences give a median of 0.07 and
unrelated single words 0.31, so "ok" (0.30), "x" (0.32) and "thanks!" (0.29) scored as high as
"I work as a software engineer at Siemens" (0.32), and ``dog`` or ``football`` came back with
"ok" at 0.49 and 0.33 on a store that holds nothing about either (a newcomer's trial,
2026-12-07: messages stored verbatim keep a user's "ok" and "thanks!"). A question is pulled
toward fragments less, but still: "what is my job?" has 0.05 to sentences and 0.21 to words.

So a vector hit whose text is ``MAX_WORDS`` words or fewer (what spaces separate, emoji and
punctuation included; a CJK character counts as one; ``MAX_CHARS`` characters at most) has the
query's *excess* for that length taken off its cosine and its centered value before fusion:
the median cosine between the query and every n consecutive content words of
``CHANCE_SENTENCES``, less the median to the whole sentences (never below 0). "ok" for ``job``
then sits at chance, below the threshold; a fragment that matches the query better than
unrelated words do ("cello" for ``music``: 0.48 against a median of 0.27) keeps what it has
above them. Sentences are left alone: the reference sentences are what their chance already
measures. Explain shows the amount as ``fragment_excess``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np

from memorch.retrieval._calibration import CHANCE_SENTENCES, Ranked, content_words, reference, unit_rows
from memorch.storage.base import VectorHit

MAX_WORDS = 2
MAX_CHARS = 24
# Kana and CJK ideographs: written without spaces, so each counts as a word of its own (a Chinese
# sentence is not one word). Other scripts' words are what spaces separate, emoji and punctuation
# too: "👍" and "??" are filler as "ok" is.
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_excerpts: dict[str, dict[int, np.ndarray]] = {}
_lock = threading.Lock()


def fragment_words(text: str) -> int:
    """How many words ``text`` has when it is a fragment (1 to ``MAX_WORDS``), else 0."""
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_CHARS:
        return 0
    words = sum(max(1, len(_UNSPACED.findall(token))) for token in stripped.split())
    return words if words <= MAX_WORDS else 0


def excerpts(embedder: Any) -> dict[int, np.ndarray]:
    """Per length n up to ``MAX_WORDS``: the unit vectors of every n consecutive content words of
    the reference sentences, embedded once per model and process, at the first search that meets
    a fragment (~140 short texts; the embedding cache keeps them for the next process)."""
    model = embedder.model_id
    with _lock:
        if model in _excerpts:
            return _excerpts[model]
    sentences = [content_words(sentence) for sentence in CHANCE_SENTENCES]
    texts = {
        n: sorted({" ".join(words[i : i + n]) for words in sentences for i in range(len(words) - n + 1)})
        for n in range(1, MAX_WORDS + 1)
    }
    vectors = {n: unit_rows(embedder.embed(texts[n])) for n in texts}
    with _lock:
        _excerpts[model] = vectors
    return vectors


def excess(embedder: Any, query_vector: np.ndarray, sentences: np.ndarray) -> dict[int, float]:
    """Per fragment length: how much closer n words of unrelated text sit to the query than
    unrelated sentences (``sentences``: their unit vectors) do, by medians; never below 0."""
    vector = np.asarray(query_vector, dtype=np.float32)
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    base = float(np.median(sentences @ vector))
    return {n: max(0.0, float(np.median(words @ vector)) - base) for n, words in excerpts(embedder).items()}


def discount(hits: list[VectorHit], lengths: dict[str, int], amounts: dict[int, float]) -> list[VectorHit]:
    """The vector hits with each fragment's cosine and centered value less its length's excess
    (``lengths``: the fragments' word counts by id), re-ordered by what they then rank by."""
    out = []
    for hit in hits:
        cut = amounts.get(lengths.get(hit.id, 0), 0.0)
        if cut:
            hit = VectorHit(hit.id, max(0.0, hit.score - cut), None if hit.order is None else hit.order - cut)
        out.append(hit)
    return sorted(out, key=lambda hit: (-hit.ordering, hit.id))


def discount_fragments(
    signals: dict[str, list[VectorHit]], texts: Any, embedder: Any, query_vector: np.ndarray
) -> dict[str, float]:
    """The vector and time signals (the lists that carry cosines) with their fragments discounted,
    in place; ``texts``: the ledger's ``texts`` (read once, for those lists' ids). Returns each
    discounted hit's amount by id, for explain. Nothing is embedded unless a fragment is found."""
    ids = {hit.id for name in ("vector", "time") for hit in signals.get(name, [])}
    lengths = {i: n for i, text in texts(sorted(ids)).items() if (n := fragment_words(text))}
    if not lengths:
        return {}
    amounts = excess(embedder, query_vector, reference(embedder)[0])
    for name in ("vector", "time"):
        if signals.get(name):
            signals[name] = discount(signals[name], lengths, amounts)
    return {i: amounts[n] for i, n in lengths.items() if amounts.get(n)}


def mark(ranked: list[Ranked], amounts: dict[str, float]) -> None:
    """Explain: each discounted hit's vector entry names the amount (``fragment_excess``)."""
    for item in ranked:
        if item.id in amounts and "vector" in item.signals:
            item.signals["vector"]["fragment_excess"] = round(amounts[item.id], 6)
