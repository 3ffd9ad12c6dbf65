"""Hybrid retrieval: vector similarity + BM25 full text + graph links.

Two steps, kept apart because they answer different questions.

**Order** (which memory answers best): relative score fusion, as before. Each signal finds
candidates on its own (3x the limit, at least 90; 30 in a scope past 20,000 memories); a
memory's fused value is the weighted mean of its min-max-scaled raw scores, the vector and text
weights scaled by how clearly each list's best stands out (``peak``). On LOCOMO dev, RRF
(k=60) ranked below BM25 alone (recall@10 0.583 vs 0.618) because a rank carries no strength;
min-max fusion with equal weights reached 0.664. When the query names a time ("last week",
``_when``), the memories created then are a fourth list, ranked by similarity among themselves
(``_window_hits``). Related words then re-order the fusion's first hits (``_words``), context
lifts their neighbours (``_context``), and hits that repeat a hit above them give way
(``_diversity``).

**Score** (how relevant, in absolute terms): min-max makes the best hit of every search 1.0, so
it cannot tell "nothing relevant is stored" from a match (AUROC 0.72 on ``bench/relevance.py``).
The returned score is instead each hit's own evidence, on fixed scales:

- vector: ``(cosine - chance) / (ceiling - chance)``, clipped to [0, 1], where ``chance`` is the
  median cosine between the query and ``CHANCE_SENTENCES`` (24 unrelated everyday sentences, not
  benchmark data, embedded once per embedder model) and ``ceiling`` how close a sentence on the
  query's topic gets to a query of its length (``memorch.retrieval._calibration``, where the scale
  lives). 0 means "no closer than unrelated sentences are to this query", 1 "as close as a query
  this short gets". This is what carries to other embedders: chance is ~0.05 for
  all-MiniLM-L6-v2 but ~0.4 for static-tier sentences (0.15 for a one-word query), and remote
  models differ again; a fixed cosine cut would be wrong for all but one of them.
- text: ``bm25 / (bm25 + half)``, a saturating transform (BM25 has no upper bound); ``half`` is
  smaller for a query of fewer than five content words, whose best BM25 is lower.
- evidence = ``1 - (1 - vector)(1 - text)``: either signal alone can establish relevance.
- graph links order results but add no absolute evidence (a relation count has no fixed scale).

A hit's score is the lowest evidence among it and every hit ranked above it, so scores never
rise down the list (score order = fused order, ``threshold`` cuts a prefix) and no hit scores
above its own evidence; a hit lifted by context, time, related words or diversity with its own
evidence under the threshold scores that and lowers none after it (``calibrate``). Which hits a
search returns: ``_cut``. A memory the vector signal did not return gets the lowest
similarity it did return (a bound: it ranked below all of them); one BM25 did not return has no
text evidence.

``explain`` keeps each signal's rank, raw score, min-max ``scaled`` value and calibrated
``relevance``, plus ``fusion``: the fused (ordering) value, the hit's evidence and its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from memorch.config import MemoryConfig
from memorch.engine._components import Components
from memorch.engine._heap import freeze_loaded
from memorch.results import MemoryItem, MemoryList, memory_item
from memorch.retrieval._calibration import Ranked, calibrate, fused_order, set_aside, text_half, vector_scale
from memorch.retrieval._centering import centered, from_ledger
from memorch.retrieval._context import with_context
from memorch.retrieval._cut import NO_CUT, Cut, below_threshold
from memorch.retrieval._diversity import DEPTH as DIVERSITY_DEPTH
from memorch.retrieval._diversity import asks_for_more_than_a_topic, diversify
from memorch.retrieval._fragments import discount_fragments, mark
from memorch.retrieval._when import Window, window
from memorch.storage.base import Scope, VectorHit
from memorch.storage.expiry import stamp
from memorch.storage.filters import compile_filters

if TYPE_CHECKING:
    from memorch.engine._centroids import Centroids
    from memorch.engine._engine import Engine
    from memorch.engine._nearest import NearestCache

# A filtered search hands LanceDB the matching ids up to this many; past it, each signal
# over-fetches within the scope and keeps the hits that pass the filter.
MAX_ID_PREFILTER = 2000
# Candidates per signal, whatever the limit up to 30: min-max fusion scales each list between its
# best and its last hit, so a shallower list ranked differently, and a search's first 10 were not
# the first 10 of the same search with limit 30. At 30 (the default limit 10 fetched 30) recall@10
# was 0.713 on LOCOMO dev and 0.875 on 48 LongMemEval dev questions; at 90 0.723 and 0.896,
# for ~1 ms more per search. Past DEEP_SCOPE_ROWS (a scope too large to hold in memory, searched
# through LanceDB's ANN index) the lists stay at 30: there 90 cost ~4 ms (100,000 memories in
# one scope: 12.5 -> 16.7 ms p50, bench/scale.py).
MIN_FETCH = 90
SHALLOW_FETCH = 30
DEEP_SCOPE_ROWS = 20_000
# A signal whose best candidates stand out from the rest of its list is surer of them than one
# whose list is flat (a query whose words are common, or whose meaning is near many memories):
# the vector and text signals' weights in a search are scaled by PEAK_FLOOR plus how far their
# best value stands out from the mean of their best PEAK_TOP, on the list's min-max scale
# (``peak``: 0 for a flat list, at most 0.9). Replays of both dev files' signals (the fusion
# alone: LanceDB's BM25 and the centered vectors, 90 candidates each): LongMemEval (72 questions)
# recall@5/10/30 0.691 / 0.877 / 0.968 -> 0.698 / 0.877 / 0.981, LOCOMO dev 0.569 / 0.682 / 0.786
# -> 0.572 / 0.685 / 0.791. Chosen before the grid was run; over the grid top 5/10/20 x floor
# 0.25/0.5/1.0 all nine raised LOCOMO's r@5 and r@30 and kept LongMemEval's r@10, while LOCOMO's
# r@10 moved -0.002 to +0.003 and LongMemEval's r@5 -0.019 to +0.007.
PEAK_TOP = 10
PEAK_FLOOR = 0.5
PEAKED_SIGNALS = ("vector", "text")
# The text query runs here, beside the vector one. (Not the index flush beside the query's
# embedding: both need the GIL between native calls, and with them side by side the search's p50
# rose from 30 to 35 ms on ``bench/soak.py``'s mix of operations.)
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="memorch-search")


def _graph_hits(
    components: Components, scope: Scope, query: str, fetch: int, only_ids: Sequence[str] | None
) -> list[VectorHit]:
    """Memories that state relations about entities the query names, most relations first; of
    the first ``fetch``, those in ``only_ids`` when given."""
    from memorch.retrieval._graph import query_ngrams

    rows = components.ledger.relations_touching(scope, query_ngrams(query), [], fetch * 4)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["memory_id"]] = counts.get(row["memory_id"], 0) + 1
    ranked = sorted(counts, key=lambda i: -counts[i])[:fetch]
    allowed = None if only_ids is None else set(only_ids)
    return [VectorHit(i, float(counts[i])) for i in ranked if allowed is None or i in allowed]


def _signals(
    components: Components,
    config: MemoryConfig,
    query: str,
    scope: Scope,
    fetch: int,
    only_ids: Sequence[str] | None,
    held: NearestCache | None,
    centroids: Centroids,
) -> tuple[dict[str, list[VectorHit]], np.ndarray]:
    """Each signal's candidates (the vector signal's ``centered``), and the query's embedding."""
    vectors = components.vectors
    # The text query runs beside the query's embedding and the vector search, so a search costs
    # the slower of the two (onnxruntime and LanceDB release the GIL: on LongMemEval scopes the
    # embedding, 7-10 ms, and a BM25 query's first reads of the index, 10-20 ms, overlap). The
    # vector signal comes from the scope's embeddings held in memory when it fits there (the same
    # exact ranking, see ``nearest``), else from LanceDB.
    text_future = _POOL.submit(vectors.text_search, query, scope, fetch, only_ids)
    try:
        vector = components.embedder.embed([query])[0]
        found = held.top_centered(vector, scope, fetch, only_ids) if held is not None else None
        if found is None:  # not held: the index's hits, their vectors and the centre from the ledger
            found = from_ledger(vectors.search(vector, scope, fetch, only_ids), scope, centroids, components.ledger)
        # The graph's candidates while the BM25 query runs (it is most often the slower).
        graph = _graph_hits(components, scope, query, fetch, only_ids) if config.graph_enabled else None
    except BaseException:  # noqa: BLE001, RUF100 - the BM25 query must not outlive the search; re-raised
        # The embedder's or a store's error is the search's own.
        text_future.cancel()
        wait([text_future])
        raise
    signals = {"vector": centered(found), "text": text_future.result()}
    if graph is not None:
        signals["graph"] = graph
    return signals, vector


def _created_in(components: Components, scope: Scope, span: Window, where: tuple[str, list[Any]] | None) -> set[str]:
    """The ids of the scope's memories created in ``span`` (and matching ``where``)."""
    within = cast(
        "tuple[str, list[Any]]", compile_filters({"created_at": {"gte": stamp(span.start), "lt": stamp(span.end)}})
    )
    if where is not None:
        within = (f"({where[0]}) AND ({within[0]})", [*where[1], *within[1]])
    return set(components.ledger.ids(scope, within))


def _window_hits(
    components: Components,
    scope: Scope,
    inside: set[str],
    vector: np.ndarray,
    fetch: int,
    held: NearestCache | None,
    vector_hits: list[VectorHit],
) -> list[VectorHit]:
    """The time signal: the memories created in the span (``inside``), by similarity to the
    query. Up to ``MAX_ID_PREFILTER`` of them are searched among themselves; past that, the
    vector signal's own candidates that fall in the span."""
    if not inside:
        return []
    if len(inside) > MAX_ID_PREFILTER:  # by plain similarity, as the list below is
        spanned = sorted((h for h in vector_hits if h.id in inside), key=lambda h: (-h.score, h.id))
        return [VectorHit(h.id, h.score) for h in spanned]
    ids = sorted(inside)
    hits = held.top(vector, scope, fetch, ids) if held is not None else None
    return hits if hits is not None else components.vectors.search(vector, scope, fetch, ids)


def _outside(vector_hits: list[VectorHit], inside: set[str]) -> float:
    """The share of the vector signal's candidates not created in the span: the time signal's
    weight factor. A span that holds every candidate ("this year" in a year's chats) tells
    nothing the meaning does not, and would only count the vector signal twice."""
    if not vector_hits:
        return 0.0
    return sum(hit.id not in inside for hit in vector_hits) / len(vector_hits)


def peak(values: Sequence[float]) -> float:
    """How far a candidate list's best value stands out from its next best, on the list's own
    min-max scale: (best - mean of the best ``PEAK_TOP``) / (best - last), 0 for a flat list,
    the most (``1 - 1 / PEAK_TOP``) for a list of one."""
    if len(values) == 1:
        # The one memory that matches at all (the text signal's only hit for a ticket number or a
        # rare name) stands out as far as a best can: at 0 the one exact match weighed least, and
        # "ticket 1253" ranked 1252 and 1251 above it, on their numbers' meaning (a trial).
        return 1 - 1 / PEAK_TOP
    ordered = sorted(values, reverse=True)
    spread = ordered[0] - ordered[-1]
    if spread <= 0:
        return 0.0
    top = ordered[:PEAK_TOP]
    return (ordered[0] - sum(top) / len(top)) / spread


def fuse(signals: dict[str, list[VectorHit]], weights: dict[str, float]) -> list[Ranked]:
    """Relative score fusion: each signal's raw scores are min-max scaled to [0, 1] within its own
    candidate list (a memory a signal did not find gets 0 from it), then averaged with the
    signals' weights over the signals that found anything. A hit's ``order``, when set, is what
    is scaled (the vector signal's centered similarity; explain shows it as ``centered``). The
    vector and text signals' weights are scaled by ``PEAK_FLOOR + peak`` of their lists (see
    ``PEAK_TOP``); explain shows each signal's ``weight`` in the search."""
    raw_name = {"vector": "similarity", "text": "bm25", "graph": "relations", "time": "similarity"}
    ranked: dict[str, Ranked] = {}
    active = 0.0
    for name, hits in signals.items():
        weight = weights.get(name, 0.0)
        if not hits or weight <= 0:
            continue
        values = [hit.ordering for hit in hits]
        if name in PEAKED_SIGNALS:
            weight *= PEAK_FLOOR + peak(values)
        active += weight
        high, low = max(values), min(values)
        for rank, (hit, value) in enumerate(zip(hits, values, strict=True), start=1):
            scaled = (value - low) / (high - low) if high > low else 1.0
            item = ranked.setdefault(hit.id, Ranked(hit.id, 0.0))
            item.score += weight * scaled
            item.signals[name] = {"rank": rank, raw_name.get(name, "score"): round(hit.score, 6)}
            if hit.order is not None:
                item.signals[name]["centered"] = round(hit.order, 6)
            item.signals[name]["scaled"] = round(scaled, 6)
            item.signals[name]["weight"] = round(weight, 6)
    for item in ranked.values():
        item.score = min(1.0, item.score / active) if active else 0.0
    # Ties go to the closer meaning, then to a stable order.
    return sorted(ranked.values(), key=fused_order)


def hybrid_search(
    components: Components,
    config: MemoryConfig,
    query: str,
    scope: Scope,
    limit: int,
    where: tuple[str, list[Any]] | None,
    held: NearestCache | None = None,
    cut: Cut = NO_CUT,
    span: Window | None = None,
    *,
    centroids: Centroids,
) -> list[Ranked]:
    """The scope's best ``limit`` memories for ``query``, with absolute scores; ``held``: the
    scopes' embeddings in memory, if this process keeps them; ``cut``: the search's
    threshold (``_cut``: a hit lifted by context, time, related words or diversity under
    ``cut.answer`` does not lower the scores after it, and one under ``cut.each`` is left out);
    ``span``: the time the query names, whose memories make a signal of their own; ``centroids``:
    the centres of scopes not held (``engine._centroids``), kept by the caller between searches."""
    # Expired memories are left out from their expiry on, before maintenance purges them: few
    # (one indexed read finds them), so each signal fetches that many more and drops them.
    hidden = components.ledger.expired_ids(stamp())
    # A held scope's count is known here (asking LanceDB costs a count after every write); one
    # too large to hold is not asked of ``held`` again in this search.
    rows = held.rows(scope) if held is not None else None
    if rows is None:
        held, rows = None, components.vectors.scope_rows(scope)
    depth = MIN_FETCH if rows <= DEEP_SCOPE_ROWS else SHALLOW_FETCH
    fetch = max(limit * 3, depth) + min(len(hidden), MAX_ID_PREFILTER)
    only_ids: list[str] | None = None
    allowed: set[str] | None = None
    if where is not None:
        matching = [i for i in components.ledger.ids(scope, where) if i not in hidden]
        if len(matching) <= MAX_ID_PREFILTER:
            only_ids = matching
        else:
            allowed, fetch = set(matching), fetch * 10
    inside: set[str] | None = None
    if span is not None and config.search_weights.get("time", 0.0) > 0:
        inside = _created_in(components, scope, span, where)
        # "Two weeks ago" names when, not what: while the time signal carries it (something was
        # said then, and not everything was), its words would only match memories that say them.
        # LongMemEval dev, the 8 of 72 questions naming a time: turn recall@10 0.667 -> 0.792
        # ("a sports event two weeks ago" found its soccer tournament); LOCOMO dev, whose turns
        # carry no dates (no span holds a memory), unchanged.
        if 0 < len(inside) < rows:
            query = span.topic
    signals, vector = _signals(components, config, query, scope, fetch, only_ids, held, centroids)
    if inside is not None:
        signals["time"] = _window_hits(components, scope, inside, vector, fetch, held, signals["vector"])
    if allowed is not None:
        signals = {name: [h for h in hits if h.id in allowed] for name, hits in signals.items()}
    if hidden:
        signals = {name: [h for h in hits if h.id not in hidden] for name, hits in signals.items()}
    fragments = discount_fragments(signals, components.ledger.texts, components.embedder, vector)
    outside = 0.0 if inside is None else _outside(signals["vector"], inside)
    weights = {**config.search_weights, "time": config.search_weights.get("time", 0.0) * outside}
    ranked = fuse(signals, weights)
    mark(ranked, fragments)
    share = config.search_weights.get("words", 0.0)
    if share > 0:
        from memorch.models._token_vectors import word_pieces
        from memorch.retrieval._words import DEPTH, rerank

        texts = components.ledger.texts([item.id for item in ranked[:DEPTH]])
        ranked = rerank(query, ranked, texts, share, word_pieces())

    only = None if only_ids is None else set(only_ids)

    def visible(memory_id: str) -> bool:  # the filter's; the ledger leaves expired memories out
        return (only is None or memory_id in only) and (allowed is None or memory_id in allowed)

    ranked = with_context(components, scope, ranked, vector, config.search_weights.get("context", 0.0), visible)
    redundancy = config.search_weights.get("diversity", 0.0)
    if redundancy > 0 and asks_for_more_than_a_topic(query):
        vectors = components.ledger.embeddings_of([item.id for item in ranked[:DIVERSITY_DEPTH]])
        ranked = diversify(ranked, vectors, redundancy)
    scale = vector_scale(components.embedder, query, vector)
    scored = calibrate(ranked, signals, scale, cut.answer, text_half(query), outside)
    return _first(scored, limit, cut.each)


def _first(scored: list[Ranked], limit: int, min_score: float) -> list[Ranked]:
    """The first ``limit`` hits, not counting those lifted by context, time, related words or
    diversity that the threshold leaves out (under ``min_score``, the search's ``Cut.each``): they
    are kept, to be counted under the threshold, but take no place."""
    kept: list[Ranked] = []
    places = 0
    for item in scored:
        if places == limit:
            break
        kept.append(item)
        places += not set_aside(item, item.score, min_score)
    return kept


def search_memories(
    engine: Engine,
    query: str,
    scope: Scope,
    limit: int,
    where: Any,
    cut: Cut,
    explain: bool,
    asked_at: datetime | None = None,
) -> MemoryList:
    """``AsyncMemory.search`` on a reader: the ranked hits read back from the ledger (the source
    of truth), those the threshold leaves out counted (``cut``, ``below_threshold``: an empty
    answer then says that weaker matches exist, and how weak), relations with the graph on.
    ``asked_at``: when the query is asked, for the times it names ("last week"; default now, in
    this machine's time zone)."""
    engine.store.searchable()
    parts = engine.components
    held = engine.store.nearest_cache()
    span = window(query, asked_at or datetime.now().astimezone())
    centres = engine.store.centroids()
    ranked = hybrid_search(parts, engine.config, query, scope, limit, where, held, cut, span, centroids=centres)
    records = {r.id: r for r in parts.ledger.get_many([h.id for h in ranked])}
    found_hits = [h for h in ranked if (r := records.get(h.id)) is not None and scope.contains(r)]
    # (The scope check is a second guard: the index already filtered by scope.)
    kept, below, floor = cut.split([h.score for h in found_hits])
    results: list[MemoryItem] = []
    for hit in (found_hits[i] for i in kept):
        item = memory_item(records[hit.id])
        item["score"] = round(hit.score, 6)
        if explain:
            item["explain"] = hit.signals
        results.append(item)
    found: MemoryList = {"results": results}
    if (left_out := below_threshold(below, floor)) is not None:
        found["below_threshold"] = left_out
    if engine.config.graph_enabled:
        from memorch.retrieval._graph import search_relations

        found["relations"] = search_relations(parts, scope, query, [r["id"] for r in results])
    freeze_loaded()  # once per process: what a search loads lives as long as the process
    return found
