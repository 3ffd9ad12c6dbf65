"""What the model is shown for an ``add(infer=True)``: the scope's memories nearest the new
messages (never messages still waiting for inference, never expired ones) and the entity names
they mention, so the model can reuse them (``_plan.prepare``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memorch.domain._records import awaits_inference, utc_now
from memorch.storage.base import MemoryRecord, Scope

if TYPE_CHECKING:
    import numpy as np

    from memorch.engine._store import Store

MAX_CANDIDATES = 30


def candidates_for(store: Store, vectors: np.ndarray, scope: Scope, exclude: set[str]) -> list[MemoryRecord]:
    """Top memories of the scope for any of the new messages, best first, deduplicated.
    Messages still waiting for inference are not facts yet, so they are never offered."""
    scores: dict[str, float] = {}
    for vector in vectors:
        for hit in store.parts.vectors.search(vector, scope, store.config.candidate_limit):
            if hit.id not in exclude:
                scores[hit.id] = max(scores.get(hit.id, 0.0), hit.score)
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)[:MAX_CANDIDATES]
    now = utc_now()  # an expired memory is forgotten: never offered for the model to update
    return [r for r in store.parts.ledger.get_many(ranked) if not is_pending(r) and not r.expired(now)]


def is_pending(record: MemoryRecord) -> bool:
    """Stored as said, waiting for inference (a failed model, or background inference)."""
    return awaits_inference(record.metadata)


def candidate_entities(store: Store, candidates: list[MemoryRecord], limit: int = 50) -> list[str]:
    """Entity names the candidate memories mention, so the model can reuse them."""
    if not store.config.graph_enabled or not candidates:
        return []
    relations = store.parts.ledger.relations_for([c.id for c in candidates])
    names = dict.fromkeys(n for rels in relations.values() for r in rels for n in (r["source"], r["destination"]))
    return list(names)[:limit]
