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
(``engine._nearest``) gives its exact mean, with the hits' vectors, under the lock its search
took; any other scope's mean and vectors come from the ledger (``engine._centroids``). A hit
whose embedding is gone by then (deleted meanwhile) is dropped: the search would drop it anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memorch.engine._nearest import Centered
from memorch.storage.base import Scope, VectorHit

if TYPE_CHECKING:
    from memorch.engine._centroids import Centroids
    from memorch.storage.ledger import Ledger

CENTERING = 0.2


def from_ledger(hits: list[VectorHit], scope: Scope, centroids: Centroids, ledger: Ledger) -> Centered:
    """What ``centered`` needs of hits the index found: the scope's centre and their vectors."""
    return Centered(hits, centroids.of(scope), ledger.embeddings_of([hit.id for hit in hits]))


def centered(found: Centered) -> list[VectorHit]:
    """The hits re-ordered by centered similarity, each carrying it as ``order`` (unchanged when
    the scope has no centre)."""
    hits = [hit for hit in found.hits if hit.id in found.vectors]
    if found.centre is None or not hits:
        return hits
    closeness = np.stack([found.vectors[hit.id] for hit in hits]) @ found.centre
    out = [
        VectorHit(hit.id, hit.score, hit.score - CENTERING * float(near))
        for hit, near in zip(hits, closeness, strict=True)
    ]
    return sorted(out, key=lambda hit: (-hit.ordering, hit.id))
