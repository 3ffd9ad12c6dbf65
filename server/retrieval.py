"""Hybrid retrieval: vector similarity + BM25 full text + graph links, fused by relative score.

Each signal finds candidates on its own (fetching 3x the limit, at least 30); a memory's score
is the weighted mean of its min-max-scaled raw scores, so it lies in [0, 1] and 1 means "the best
of every list". Metadata filters and the scope are pre-filters of every signal.

Why relative score fusion and not reciprocal rank fusion: on LOCOMO dev, RRF (k=60) ranked
below BM25 alone (recall@10 0.583 vs 0.618), because a rank carries no strength: a weak
dense match counted as much as a strong keyword match. Min-max score fusion with equal weights,
a standard default with nothing fitted to the data, reached 0.667 (``bench/locomo.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memorch.storage.base import Scope, VectorHit

from .components import Components
from .config import MemoryConfig

# A filtered search hands LanceDB the matching ids up to this many; past it, each signal
# over-fetches within the scope and keeps the hits that pass the filter.
MAX_ID_PREFILTER = 2000
MIN_FETCH = 30
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="memorch-search")


@dataclass
class Ranked:
    id: str
    score: float
    signals: dict[str, dict[str, float]] = field(default_factory=dict)


def _graph_hits(components: Components, scope: Scope, query: str, fetch: int) -> list[VectorHit]:
    """Memories that state relations about entities the query names, most relations first."""
    from .graph_memory import query_ngrams

    rows = components.ledger.relations_touching(scope, query_ngrams(query), [], fetch * 4)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["memory_id"]] = counts.get(row["memory_id"], 0) + 1
    ranked = sorted(counts, key=lambda i: -counts[i])[:fetch]
    return [VectorHit(i, float(counts[i])) for i in ranked]


def _signals(
    components: Components,
    config: MemoryConfig,
    query: str,
    vector: np.ndarray,
    scope: Scope,
    fetch: int,
    only_ids: Sequence[str] | None,
) -> dict[str, list[VectorHit]]:
    vectors = components.vectors
    # The two LanceDB queries run at once: their work happens in Rust without the GIL, so a
    # search costs the slower of the two rather than their sum.
    text_future = _POOL.submit(vectors.text_search, query, scope, fetch, only_ids)
    signals = {"vector": vectors.search(vector, scope, fetch, only_ids), "text": text_future.result()}
    if config.graph_enabled:
        hits = _graph_hits(components, scope, query, fetch)
        if only_ids is not None:
            allowed = set(only_ids)
            hits = [h for h in hits if h.id in allowed]
        signals["graph"] = hits
    return signals


def fuse(signals: dict[str, list[VectorHit]], weights: dict[str, float]) -> list[Ranked]:
    """Relative score fusion: each signal's raw scores are min-max scaled to [0, 1] within its own
    candidate list (a memory a signal did not find gets 0 from it), then averaged with the
    signals' weights over the signals that found anything."""
    raw_name = {"vector": "similarity", "text": "bm25", "graph": "relations"}
    ranked: dict[str, Ranked] = {}
    active = 0.0
    for name, hits in signals.items():
        weight = weights.get(name, 0.0)
        if not hits or weight <= 0:
            continue
        active += weight
        high, low = max(h.score for h in hits), min(h.score for h in hits)
        for rank, hit in enumerate(hits, start=1):
            scaled = (hit.score - low) / (high - low) if high > low else 1.0
            item = ranked.setdefault(hit.id, Ranked(hit.id, 0.0))
            item.score += weight * scaled
            item.signals[name] = {
                "rank": rank,
                raw_name.get(name, "score"): round(hit.score, 6),
                "scaled": round(scaled, 6),
            }
    for item in ranked.values():
        item.score = min(1.0, item.score / active) if active else 0.0
    # Ties go to the closer meaning, then to a stable order.
    return sorted(ranked.values(), key=lambda r: (-r.score, -r.signals.get("vector", {}).get("similarity", 0.0), r.id))


def hybrid_search(
    components: Components,
    config: MemoryConfig,
    query: str,
    vector: np.ndarray,
    scope: Scope,
    limit: int,
    where: tuple[str, list[Any]] | None,
) -> list[Ranked]:
    fetch = max(limit * 3, MIN_FETCH)
    only_ids: list[str] | None = None
    allowed: set[str] | None = None
    if where is not None:
        matching = components.ledger.ids(scope, where)
        if len(matching) <= MAX_ID_PREFILTER:
            only_ids = matching
        else:
            allowed, fetch = set(matching), fetch * 10
    signals = _signals(components, config, query, vector, scope, fetch, only_ids)
    if allowed is not None:
        signals = {name: [h for h in hits if h.id in allowed] for name, hits in signals.items()}
    return fuse(signals, config.search_weights)[:limit]
