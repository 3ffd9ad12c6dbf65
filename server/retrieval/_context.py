"""Context: a search's best hits bring along what was said next to them.

In a conversation the turn that answers a question is often not the one that names its topic:
"What did Caroline research?" is answered by "Researching adoption agencies" two lines after
"Caroline: I've been thinking about adoption". So the ``ANCHORS`` best hits of a search (in fused
order) lift the memories created just before and after them in the same scope
(``LedgerCore.neighbours``: ``PER_SIDE`` on each side, within ``WINDOW_S``) by the search weight
``context`` times the anchor's fused value; a neighbour no signal returned joins the candidates
with its own similarity, read from its stored embedding.

Measured on LOCOMO dev (``bench/locomo.py``; offline over the same signals first, one to three
neighbours a side, weights 0.2 to 0.5, 10 to 30 anchors): two a side lifted by 0.3 of the anchor
moved recall@10 from 0.657 to 0.725 and recall@30 from 0.783 to 0.836; anchors past the top 10
changed recall@10 by less than 0.002. The LongMemEval figures are in docs/search.md.

Context moves a memory up the order, never its score: a lifted memory's score is its own
evidence (``_calibration``), since being said next to a hit does not make a memory relevant (a
user's unrelated facts, told one after another, are each other's neighbours too). One whose own
evidence is under the search's threshold is left out and does not lower the scores of the hits
below it (``calibrate``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from memorch.engine._components import Components
from memorch.retrieval._calibration import Ranked, fused_order
from memorch.storage.base import Scope

ANCHORS = 10
PER_SIDE = 2
# Two memories are each other's context when created within this long of each other: the turns of
# one conversation, the facts of one add; not two facts told days apart.
WINDOW_S = 30 * 60.0


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
    near = components.ledger.neighbours(scope, [a.id for a in anchors], PER_SIDE, WINDOW_S)
    lift: dict[str, tuple[float, str]] = {}
    for anchor in anchors:
        for other in near.get(anchor.id, ()):
            if other != anchor.id and visible(other) and weight * anchor.score > lift.get(other, (0.0, ""))[0]:
                lift[other] = (weight * anchor.score, anchor.id)
    by_id = {r.id: r for r in ranked}
    for record in components.ledger.get_many([i for i in lift if i not in by_id]):
        joined = Ranked(record.id, 0.0)
        if record.embedding is not None:
            joined.signals["vector"] = {"similarity": round(float(np.dot(record.embedding, vector)), 6)}
        by_id[record.id] = joined
        ranked.append(joined)
    for other, (value, anchor_id) in lift.items():
        if other in by_id:
            item = by_id[other]
            item.score += value
            item.signals["context"] = {"of": anchor_id, "lift": round(value, 6)}  # type: ignore[dict-item]
    return sorted(ranked, key=fused_order)
