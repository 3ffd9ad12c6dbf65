"""Centering: the vector signal orders its candidates by their similarity to the query less how
close they sit to everything else in the scope.

Why: mean-pooled sentence vectors have hubs. A memory near the centre of its scope (a long
assistant answer, a generic remark) is fairly close to every query, so it outranks the memory
that answers the question only because it is close to all of them. Ranking by
``cosine(query, m) - CENTERING * cosine(m, c)``, where ``c`` is the unit mean of the scope's
embeddings, takes that share out; it is ranking by ``(query - CENTERING * c) . m``, the
cross-lingual "CSLS" correction with the scope's mean standing for each memory's neighbourhood.

Measured on both dev files with the bundled int8 model, the product's fusion with BM25 over the
vector signal's candidates re-ordered this way (replays of the signals, 0.2 chosen from 0.1, 0.15,
0.2, 0.3 on both files at once): LongMemEval turn recall@10 0.836 -> 0.877 (72 questions),
LOCOMO recall@10 0.666 -> 0.682; re-ordering only the candidates the plain cosine fetched is as
good as ranking the whole scope this way. The mean must be the scope's own: a fixed centre (the
other file's mean) lowered LOCOMO to 0.663. docs/search.md has the figures of the product.

Only the order changes: the fusion scales the centered value (``VectorHit.order``), while a
hit's similarity and calibrated score stay the plain cosine's. A scope held in memory
(``engine._nearest``) gives its exact mean; a larger one the mean of its first
``MAX_CENTROID_ROWS`` embeddings, kept ``CENTROID_TTL_S`` (``engine._nearest.Centroids``: a mean
of thousands of memories moves little in a minute).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memorch.engine._nearest import Centroids, unit_mean
from memorch.storage.base import Scope, VectorHit

if TYPE_CHECKING:
    from memorch.engine._nearest import NearestCache
    from memorch.storage.ledger import Ledger

CENTERING = 0.2


def _order(hit: VectorHit) -> float:
    return hit.score if hit.order is None else hit.order


def centered(
    hits: list[VectorHit], scope: Scope, held: NearestCache | None, centroids: Centroids, ledger: Ledger
) -> list[VectorHit]:
    """``hits`` (the vector signal's candidates) re-ordered by centered similarity, each carrying
    it as ``order``. Unchanged when the scope has no centre or a hit's embedding is gone."""
    if not hits:
        return hits
    ids = [hit.id for hit in hits]
    found = held.centering(scope, ids) if held is not None else None
    if found is not None:
        centre, vectors = unit_mean(found[0]), found[1]
    else:
        centre, vectors = centroids.of(scope), ledger.embeddings_of(ids)
    if centre is None or len(vectors) < len(hits):
        return hits
    closeness = np.stack([vectors[i] for i in ids]) @ centre
    out = [
        VectorHit(hit.id, hit.score, hit.score - CENTERING * float(near))
        for hit, near in zip(hits, closeness, strict=True)
    ]
    return sorted(out, key=lambda hit: (-_order(hit), hit.id))
