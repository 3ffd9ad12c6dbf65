"""Diversity: the first hits re-ordered so that a hit saying again what a hit above it said gives
way to one that says something else (maximal marginal relevance, Carbonell and Goldstein 1998).

A question about a long history is often answered by several memories told apart ("how many
weddings have I been to?", "what did I buy for the trip?"), and the turns that answer it best are
often near copies of each other (three turns of one conversation about the same wedding). Read
down the fused order, each of the first ``DEPTH`` hits is taken in turn by its fused value less
``redundancy`` times its greatest cosine to a hit already taken (the ``diversity`` weight of
``MEMORCH_SEARCH_WEIGHTS``, 0 turns it off). The hits keep the fused values of the places they
take, as for related words, so the order below them and every score rule stay as they were.

Only a query of ``MIN_WORDS`` content words or more: a query of a word or two ("painting",
"job interview") names a topic, and the memories about it are alike because they are what it asks
for. Measured (replays of the product's search on both dev files, int8 vectors, 2026-12-07):
LongMemEval's 72 dev questions turn recall@5 / @10 / @30 0.693 / 0.905 / 0.982 -> 0.728 / 0.905 /
0.982, session recall_any@5 0.958 -> 0.972, multi-session recall@10 0.736 -> 0.778; LOCOMO dev
questions 0.629 / 0.737 / 0.839 -> 0.630 / 0.742 / 0.839. Over 0.05-0.5 (``DEPTH`` 30): 0.1-0.2
gave the same gains, 0.3 lost LongMemEval's recall@10 (0.891), 0.5 more; a depth of 10 kept
LOCOMO's recall@10 at 0.737, 50 lost its recall@30. For LOCOMO's key nouns as queries (one or two
words, before the gate) it cost 0.004-0.010 at 10, hence ``MIN_WORDS``.
"""

from __future__ import annotations

import numpy as np

from memorch.retrieval._calibration import Ranked, content_words

DEPTH = 30
MIN_WORDS = 3


def asks_for_more_than_a_topic(query: str) -> bool:
    return len(content_words(query)) >= MIN_WORDS


def diversify(ranked: list[Ranked], vectors: dict[str, np.ndarray], redundancy: float) -> list[Ranked]:
    """``ranked`` (best first) with its first ``DEPTH`` hits re-ordered (module docstring);
    ``vectors``: their embeddings (unit length). A hit without one keeps its place; each hit
    moved up gets ``diversity: {rank, redundancy}`` in its explain (its greatest cosine to a hit
    placed above it): only those are lifted (``LIFTS``), as for related words."""
    block = ranked[:DEPTH]
    movable = [place for place, item in enumerate(block) if item.id in vectors]
    if redundancy <= 0 or len(movable) < 2:
        return ranked
    items = [block[place] for place in movable]
    matrix = np.stack([vectors[item.id] for item in items])
    alike = matrix @ matrix.T
    values = np.array([item.score for item in items])
    closest = np.zeros(len(items))  # each hit's greatest cosine to the hits taken so far
    left = list(range(len(items)))
    taken: list[int] = []
    while left:
        gains = values[left] - redundancy * np.maximum(closest[left], 0.0)
        pick = left.pop(int(np.argmax(gains)))  # a tie goes to the earlier hit: the fused order
        if pick > len(taken):  # it takes a place above its own
            items[pick].signals["diversity"] = {"rank": len(taken) + 1, "redundancy": round(float(closest[pick]), 6)}
        taken.append(pick)
        closest = np.maximum(closest, alike[pick])
    slots = [item.score for item in items]
    reordered = list(block)
    for place, pick, slot in zip(movable, taken, slots, strict=True):
        items[pick].score = slot
        reordered[place] = items[pick]
    return reordered + ranked[DEPTH:]
