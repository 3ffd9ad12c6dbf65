"""Context: a search's best hits bring along what was said next to them.

In a conversation the turn that answers a question is often not the one that names its topic:
"What did Caroline research?" is answered by "Researching adoption agencies" two lines after
"Caroline: I've been thinking about adoption". So the ``ANCHORS`` best hits of a search (in fused
order) lift the memories created just before and after them in the same scope
(``LedgerCore.neighbours``: ``PER_SIDE`` on each side, within ``WINDOW_S``, alike enough in
meaning: ``COHERENCE``): each moves the
share ``context`` (a search weight) of the way from its own fused value up to its anchor's, never
past it; a neighbour no signal returned joins the candidates with its own similarity, read from
its stored embedding, and a fused value of 0.

Chosen by replaying the same signals offline on LOCOMO dev and on LongMemEval dev questions (one
to three neighbours a side, shares 0.2 to 0.5, 10 to 30 anchors; docs/search.md#context). Adding
the share of the anchor's value instead (0.3 x the anchor's fused value) did slightly better on
LOCOMO (recall@10 0.727 against 0.714) but cost LongMemEval's multi-session questions half their
evidence at 10: there the best hits sit in one or two sessions, every one of them a neighbour of
another, so the whole cluster rose together over the evidence at its edge. Moving a neighbour
toward its anchor leaves hits already near the anchor's level where they are.

Context moves a memory up the order, never its score: a lifted memory's score is its own
evidence (``_calibration``), since being said next to a hit does not make a memory relevant (a
user's unrelated facts, told one after another, are each other's neighbours too). One whose own
evidence is under the search's threshold does not lower the scores of the hits below it, and is
left out, or returned at its own evidence above the default's tail (``calibrate``, ``_cut``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from memorch.engine._components import Components
from memorch.retrieval._calibration import Ranked, fused_order
from memorch.storage.base import Scope

ANCHORS = 10
PER_SIDE = 2
# Two memories are each other's context when created within this long of each other: the turns of
# one conversation, the facts of one add; not two facts told days apart.
WINDOW_S = 30 * 60.0
# ... and when they are about something alike: a neighbour is lifted only if its embedding's
# cosine to the anchor's is at least this. A user's facts told one after another are each other's
# neighbours too, and "I am allergic to peanuts" (cosine ~0.05 to "I live in Berlin") rose over
# "My brother lives in Hamburg" for "where does my family live?" (a newcomer's trial, 2026-12).
# Replays of both dev files (product search, int8 vectors): LOCOMO dev recall@5/10/30 and
# LongMemEval's 72 questions unchanged at 0.15 (0.636 / 0.744 / 0.842; 0.707 / 0.898 / 0.982);
# 0.25 cost LOCOMO 0.001 at 10, 0.35 LongMemEval 0.014 at 10. Raised to 0.25 when a second trial
# found 0.15 too low for the int8 vectors of short personal facts: "My birthday is on March 14"
# (0.154 to "I drive a blue Volkswagen Golf", told next) came second for "what car do I drive?",
# and "I am allergic to peanuts" is 0.174 to "I live in Berlin". Replayed again (2026-12-07, the
# stores of this day's runs): LongMemEval 72 unchanged (0.693 / 0.905 / 0.982), LOCOMO dev
# questions 0.629 / 0.737 / 0.841 -> 0.629 / 0.737 / 0.839.
COHERENCE = 0.25


def with_context(
    components: Components,
    scope: Scope,
    ranked: list[Ranked],
    vector: np.ndarray,
    weight: float,
    visible: Callable[[str], bool],
) -> list[Ranked]:
    """``ranked`` (every fused candidate, best first) with the anchors' neighbours lifted (module
    docstring), in the new order. ``visible``: whether a memory may be returned by this search
    (its filter; the ledger already leaves out expired memories)."""
    if weight <= 0 or not ranked:
        return ranked
    anchors = ranked[:ANCHORS]
    found = components.ledger.neighbours(scope, [a.id for a in anchors], PER_SIDE, WINDOW_S)
    vectors = components.ledger.embeddings_of(sorted({a.id for a in anchors} | {i for n in found.values() for i in n}))
    near = {a.id: _alike(a.id, found.get(a.id, ()), vectors) for a in anchors}
    by_id = {r.id: r for r in ranked}
    for other in sorted({i for n in near.values() for i in n if i not in by_id and visible(i)}):
        joined = Ranked(other, 0.0)
        joined.signals["vector"] = {"similarity": round(float(np.dot(vectors[other], vector)), 6)}
        by_id[other] = joined
        ranked.append(joined)
    # Every candidate passed the filter and every one joining was checked, so the ones in
    # ``by_id`` are exactly the neighbours that may be lifted; scores change only after this loop.
    lift: dict[str, tuple[float, str]] = {}
    for anchor in anchors:
        for other in near[anchor.id]:
            gain = weight * (anchor.score - by_id[other].score) if other in by_id else 0.0
            if gain > lift.get(other, (0.0, ""))[0]:
                lift[other] = (gain, anchor.id)
    for other, (gain, anchor_id) in lift.items():
        by_id[other].score += gain
        by_id[other].signals["context"] = {"of": anchor_id, "lift": round(gain, 6)}
    return sorted(ranked, key=fused_order)


def _alike(anchor: str, neighbours: Sequence[str], vectors: dict[str, np.ndarray]) -> list[str]:
    """The neighbours whose embedding's cosine to the anchor's is at least ``COHERENCE``."""
    mine = vectors.get(anchor)
    if mine is None:
        return []
    return [i for i in neighbours if i in vectors and float(np.dot(mine, vectors[i])) >= COHERENCE]
