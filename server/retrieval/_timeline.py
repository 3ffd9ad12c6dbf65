"""What was true when (``as_of``), and answers that fit a token budget (``max_tokens``).

``as_of`` reads the ledger's history, which keeps every version: each memory of the scope as it
stood at that time (including ones updated or deleted since), each item saying whether it is
still ``current``. A search at a past time ranks those versions by meaning (the vector signal
with the same calibrated relevance as today's search; the full-text and graph indexes only hold
the current versions).

``max_tokens`` keeps the best results, in order, while their text fits the budget, estimated at
4 characters per token (the usual rule of thumb for English with GPT- and Claude-style
tokenizers; cheap, and an assistant only needs the order of magnitude).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

import numpy as np

from memorch.domain._messages import normalized_hash
from memorch.errors import ValidationError
from memorch.results import MemoryItem, MemoryList, layer_of

if TYPE_CHECKING:
    from memorch.engine._store import Store
    from memorch.retrieval._cut import Cut
    from memorch.storage.base import HistoryEvent, MemoryRecord, Scope

CHARS_PER_TOKEN = 4
# Versions a past-time search ranks at most (newest first); beyond this the oldest are not seen.
MAX_VERSIONS_SEARCHED = 5000


def parse_as_of(value: Any) -> str:
    """An ISO date (the end of that day, UTC) or datetime (naive = UTC) as a UTC timestamp string
    comparable with the ledger's."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            "as_of must be an ISO date or datetime string",
            error_code="INVALID_AS_OF",
            details={"field": "as_of"},
            suggestion='pass as_of as "2026-01-31" (the end of that day, UTC) or "2026-01-31T09:00:00Z"',
        )
    text = value.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.max, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise ValidationError(
            f"as_of {text[:40]!r} is not an ISO date or datetime",
            error_code="INVALID_AS_OF",
            suggestion='pass a date like "2026-03-01" or a time like "2026-03-01T14:30:00Z"',
        ) from None
    return moment.isoformat(timespec="microseconds")


def token_estimate(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


def within_budget(result: MemoryList, max_tokens: int | None) -> MemoryList:
    """The best results, in order, whose texts fit ``max_tokens``; ``omitted`` says how many not."""
    if max_tokens is None:
        return result
    kept: list[MemoryItem] = []
    used = 0
    for item in result["results"]:
        cost = token_estimate(item["memory"])
        if used + cost > max_tokens:
            break
        kept.append(item)
        used += cost
    omitted = len(result["results"]) - len(kept)
    return {**result, "results": kept, "omitted": omitted}  # type: ignore[typeddict-item]


def _item(event: HistoryEvent, scope: Scope, current: MemoryRecord | None) -> MemoryItem:
    text = event.new_memory or ""
    return {
        "id": event.memory_id,
        "memory": text,
        "hash": normalized_hash(text),
        "metadata": current.metadata if current is not None else {},
        "user_id": scope.user_id,
        "agent_id": scope.agent_id,
        "run_id": scope.run_id,
        "project": scope.project,
        "layer": layer_of(scope.project),
        "created_at": event.created_at,
        "updated_at": event.updated_at or event.created_at,
        "current": current is not None and current.memory == text,
    }


def _versions(store: Store, scope: Scope, when: str, limit: int) -> list[tuple[MemoryItem, MemoryRecord | None]]:
    ledger = store.parts.ledger
    versions = ledger.versions_at(scope, when, limit)
    current = {r.id: r for r in ledger.get_many([event.memory_id for event, _ in versions])}
    pairs = [(event, owner, current.get(event.memory_id)) for event, owner in versions]
    return [(_item(event, owner, record), record) for event, owner, record in pairs]


def list_at(store: Store, scope: Scope, when: str, limit: int) -> MemoryList:
    return {"results": [item for item, _ in _versions(store, scope, when, limit)]}


def search_at(store: Store, query: str, scope: Scope, when: str, limit: int, cut: Cut) -> MemoryList:
    from memorch.retrieval._calibration import vector_scale
    from memorch.retrieval._cut import below_threshold

    versions = _versions(store, scope, when, MAX_VERSIONS_SEARCHED)
    if not versions:
        return {"results": []}
    embedder = store.parts.embedder
    stored = [record.embedding if item["current"] and record is not None else None for item, record in versions]
    missing = [i for i, vector in enumerate(stored) if vector is None]
    if missing:  # older versions: embedded now (the embedding cache keeps them for the next time)
        for i, vector in zip(missing, embedder.embed([versions[i][0]["memory"] for i in missing]), strict=True):
            stored[i] = vector
    query_vector = embedder.embed([query])[0]
    similarity = np.stack(stored) @ query_vector
    relevance = vector_scale(embedder, query, query_vector).relevance(similarity)
    order = np.argsort(-relevance, kind="stable")
    kept, below, floor = cut.split([float(relevance[i]) for i in order])
    results: list[MemoryItem] = []
    for index in order[kept[:limit]]:
        item = versions[index][0]
        item["score"] = round(float(relevance[index]), 6)
        results.append(item)
    found: MemoryList = {"results": results}
    if (left_out := below_threshold(below, floor)) is not None:
        found["below_threshold"] = left_out
    return found
