"""Related words: the fusion's first ``DEPTH`` hits re-ordered by BM25 over word pieces, where a
piece of the query also counts, in part, for a piece of like meaning in the memory.

"How many weddings have I attended?" and "We got married in June" share no word BM25 reads.
Here each of the query's content words is cut into MiniLM's word pieces, and a piece of the
memory counts toward it by how close their vectors are (``memorch.models._token_vectors``):
``clip((cosine - FLOOR) / (1 - FLOOR), 0, 1)``, so the same piece counts 1, a piece of like
meaning a part, an unrelated one nothing. Those soft counts go through BM25's saturation and
length normalization (``K1``, ``B``), each piece weighted by its idf among the hits re-ordered
(the signal keeps no index of its own). Each of the first ``DEPTH`` hits is then ordered by
``(1 - share) x fused value + share x its scaled soft BM25`` (``share``: the search weight
``words``); the hits keep the fused values of the places they take, so the order below them is
what it was, and each score is still at most the hit's own evidence (``_calibration``).

How it was chosen: replays of the fusion on both dev files (LanceDB's BM25, the centered int8
vectors, 90 candidates each, no context or threshold). As a fourth list of the fusion over every
candidate (weight 0.5, FLOOR 0.5, picked first), it raised LongMemEval (72 questions) recall@5 /
@10 / @30 from 0.698 / 0.877 / 0.981 to 0.721 / 0.919 / 0.954 and LOCOMO dev from 0.572 / 0.685
/ 0.791 to 0.588 / 0.701 / 0.802: the first 10 gained on both files, LongMemEval's 30 lost.
Re-ordering only the first 30 at share 0.2 kept every first 30 (0.707 / 0.912 / 0.981; LOCOMO
0.582 / 0.695 / 0.791) and reads 30 texts instead of ~160. Around FLOOR 0.5 (0.4 / 0.6) and the
weight (0.5 / 0.75 / 1) every variant raised recall@5 and @10 on both files. idf from the hits
did as well as from the whole scope; without idf LOCOMO lost the gain; a best-match score
without length normalization lowered LongMemEval (long memories match some piece of every query
a little). On by default (``words`` 0.2): through the product it raised LOCOMO dev recall@5 /
@10 by 0.020 / 0.010 and LongMemEval's (72 questions) by 0.032 / 0.021, lowered no figure, and
costs a search ~1.3 ms (docs/search.md "Related words"). A hit it re-orders whose evidence is
under the threshold is set aside (``_calibration.set_aside``).
"""

from __future__ import annotations

import numpy as np

from memorch.models._token_vectors import WordPieces
from memorch.retrieval._calibration import Ranked, content_words, fused_order
from memorch.storage.base import VectorHit

DEPTH = 30
FLOOR = 0.5
K1 = 1.2
B = 0.75


def rerank(query: str, ranked: list[Ranked], texts: dict[str, str], share: float, table: WordPieces) -> list[Ranked]:
    """``ranked`` (fused order) with its first ``DEPTH`` hits re-ordered by their words (module
    docstring); ``texts``: those hits' texts. Each re-ordered hit's explain gets ``words``."""
    block = ranked[:DEPTH]
    hits = word_hits(query, {item.id: texts.get(item.id, "") for item in block}, table)
    if not hits:
        return ranked
    high, low = hits[0].score, hits[-1].score
    scaled = {hit.id: (hit.score - low) / (high - low) if high > low else 0.0 for hit in hits}
    by_id = {item.id: item for item in block}
    for rank, hit in enumerate(hits, start=1):
        entry = {"rank": rank, "soft_bm25": round(hit.score, 6), "scaled": round(scaled[hit.id], 6), "share": share}
        by_id[hit.id].signals["words"] = entry
    slots = [item.score for item in block]
    order = sorted(block, key=lambda item: (-((1 - share) * item.score + share * scaled[item.id]), fused_order(item)))
    for item, slot in zip(order, slots, strict=True):
        item.score = slot
    return order + ranked[DEPTH:]


def word_hits(query: str, texts: dict[str, str], table: WordPieces) -> list[VectorHit]:
    """``texts`` (id -> memory text) scored for ``query``, best first; every text is listed, one
    with no piece near the query's at 0; none when the query has no content word."""
    words = content_words(query)
    if not words or not texts:
        return []
    asked = table.pieces(" ".join(words))
    ids = list(texts)
    bags = table.bags([texts[i] for i in ids])
    lengths = np.array([bag.length for bag in bags], dtype=np.float64)
    if not len(asked) or not lengths.any():
        return [VectorHit(i, 0.0) for i in ids]
    distinct = np.array([len(bag.ids) for bag in bags])
    vocabulary, piece_of = np.unique(np.concatenate([bag.ids for bag in bags]), return_inverse=True)
    near = np.clip((table.cosines(asked, vocabulary) - FLOOR) / (1 - FLOOR), 0.0, 1.0)
    # Soft counts of each asked piece in each candidate: the sum over the candidate's distinct
    # pieces (which lie one candidate after another) of nearness x count, as differences of
    # running sums.
    weighted = near[:, piece_of] * np.concatenate([bag.counts for bag in bags])
    running = np.concatenate([np.zeros((len(asked), 1)), np.cumsum(weighted, axis=1)], axis=1)
    ends = np.cumsum(distinct)
    counts = running[:, ends] - running[:, ends - distinct]
    norm = K1 * (1 - B + B * lengths / lengths.mean())
    saturated = counts * (K1 + 1) / (counts + norm)
    idf = _idf(asked, vocabulary, np.bincount(piece_of, minlength=len(vocabulary)), len(bags))
    score = (idf[:, None] * saturated).sum(0)
    order = np.argsort(-score, kind="stable")
    return [VectorHit(ids[d], float(score[d])) for d in order]


def _idf(asked: np.ndarray, vocabulary: np.ndarray, df: np.ndarray, n: int) -> np.ndarray:
    """BM25's idf of each asked piece among the ``n`` candidates, ``df`` of them holding each
    piece of ``vocabulary`` (exact pieces: a near one does not count)."""
    at = np.minimum(np.searchsorted(vocabulary, asked), len(vocabulary) - 1)
    found = np.where(vocabulary[at] == asked, df[at], 0)
    return np.log(1 + (n - found + 0.5) / (found + 0.5))
