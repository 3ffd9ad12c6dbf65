"""What every operation returns: one definition per shape, shared by the library and the MCP tools.

They are ``TypedDict``s, so library callers keep mem0's plain dicts (``result["results"]``) while
type checkers, IDEs and the MCP output schemas see the exact keys. The small builders below are
the only places these dicts are made.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

# pydantic (and so the MCP SDK's output schemas) needs typing_extensions' TypedDict below 3.12.
from typing_extensions import TypedDict

from memorch.storage.base import MemoryRecord

Event = Literal["ADD", "UPDATE", "DELETE", "NONE", "RESTORE"]
ChangeEvent = Literal["ADD", "UPDATE", "DELETE", "NONE", "RESTORE", "PURGE"]  # PURGE: delete with purge
Layer = Literal["project", "global"]


class MemoryItem(TypedDict):
    """One memory as stored (get, list, search)."""

    id: str
    memory: str
    hash: str
    metadata: dict[str, Any]
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    project: str | None  # the project whose layer holds the memory; None in the global layer
    layer: Layer  # "project" (one project's) or "global" (the owner's, seen from every project)
    created_at: str
    updated_at: str
    score: NotRequired[float]
    explain: NotRequired[dict[str, dict[str, float | str]]]  # context's "of" is an id
    current: NotRequired[bool]  # with as_of: whether this is still the memory's text
    expires_at: NotRequired[str]  # when it stops being returned (ISO UTC); absent: never


class Relation(TypedDict):
    source: str
    relationship: str
    destination: str


class BelowThreshold(TypedDict):
    """search: ranked matches left out because they scored under the threshold."""

    count: int
    best_score: float
    threshold: float


class MemoryList(TypedDict):
    """search / list: best (or newest) first; ``relations`` only with the graph on (search)."""

    results: list[MemoryItem]
    below_threshold: NotRequired[BelowThreshold]  # search: weaker matches exist (``threshold: 0`` shows them)
    empty: NotRequired[str]  # no results and no weaker match: why (nothing stored for the scope, the filters, ...)
    relations: NotRequired[list[Relation]]
    omitted: NotRequired[int]  # with max_tokens: results left out to fit the budget
    next_cursor: NotRequired[str]  # list: more memories remain; pass it as cursor for the next page


class Hit(TypedDict):
    """A memory as the MCP tools list it by default: what a model reads, without the fields that
    are empty, internal or repeated (``MemoryItem`` with ``explain`` / ``verbose``)."""

    id: str
    memory: str
    score: NotRequired[float]
    created_at: str
    updated_at: NotRequired[str]  # only when it differs from created_at
    metadata: NotRequired[dict[str, Any]]  # only when not empty (memorch's own marks left out)
    user_id: NotRequired[str | None]
    agent_id: NotRequired[str | None]
    run_id: NotRequired[str | None]
    project: NotRequired[str | None]
    layer: NotRequired[Layer]  # when the server works for a project
    hash: NotRequired[str]
    current: NotRequired[bool]
    expires_at: NotRequired[str]
    explain: NotRequired[dict[str, dict[str, float | str]]]  # context's "of" is an id


class HitList(TypedDict):
    """search_memories / list_memories over MCP."""

    results: list[Hit]
    relations: NotRequired[list[Relation]]
    omitted: NotRequired[int]
    next_cursor: NotRequired[str]
    below_threshold: NotRequired[BelowThreshold]
    empty: NotRequired[str]


class SimilarMemory(TypedDict):
    """A stored memory close in meaning to a new one (reported, never used to drop the new one)."""

    id: str
    memory: str
    similarity: float


class AddEvent(TypedDict):
    """What ``add`` did with one fact or message."""

    id: str
    memory: str
    event: Event
    previous_memory: NotRequired[str]
    similar: NotRequired[SimilarMemory]
    reason: NotRequired[str]


class Redaction(TypedDict):
    """How many credentials of one kind were replaced by ``[REDACTED:<kind>]``."""

    kind: str
    count: int


class RelationsReport(TypedDict):
    added_entities: list[Relation]
    deleted_entities: list[Relation]


class AddResult(TypedDict):
    """``add``: one event per fact; ``degraded`` when no model could answer and text was kept
    verbatim; ``pending`` when the text was kept verbatim for background inference (the events'
    ids are the pending memories); ``dry_run`` when nothing was written; ``reason`` says why."""

    results: list[AddEvent]
    relations: NotRequired[RelationsReport]
    degraded: NotRequired[bool]
    pending: NotRequired[bool]
    dry_run: NotRequired[bool]
    reason: NotRequired[str]
    # Degraded: the model's failure (error_code, message, details, suggestion). Not ``error``, the
    # key a failed tool call's structuredContent has: this add succeeded.
    model_error: NotRequired[dict[str, Any]]
    redacted: NotRequired[list[Redaction]]  # credentials replaced before storing (server/redaction.py)
    expires_at: NotRequired[str]  # what this add stores stops being returned then (ISO UTC)


class ChangeResult(TypedDict):
    """``update`` / ``delete`` of one memory."""

    id: str
    memory: str
    event: ChangeEvent
    previous_memory: NotRequired[str]
    message: NotRequired[str]
    redacted: NotRequired[list[Redaction]]
    purged: NotRequired[bool]  # delete with purge: gone for good, restore cannot bring it back


class HistoryItem(TypedDict):
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: str
    created_at: str
    updated_at: str | None
    is_deleted: bool
    actor_id: str | None
    role: str | None
    reason: NotRequired[str]  # why: the model's reason, a restore, what inference replaced it by


class HistoryResult(TypedDict):
    memory_id: str
    events: list[HistoryItem]


class DeleteAllResult(TypedDict):
    deleted: int
    ids: list[str]  # the memories deleted: each comes back with restore (its history is kept), unless purged
    message: str
    purged: NotRequired[bool]  # with purge: gone for good, history included


# -- the whole store (AsyncMemory's admin operations) ---------------------------------------------


class ResetResult(TypedDict):
    message: str


class UserCount(TypedDict):
    """``users()``: a user_id that holds memories, and how many."""

    user_id: str
    memories: int


class StatsResult(TypedDict):
    """Counts of a settled store, and the state of each model's circuit breaker."""

    memories: int
    history_events: int
    pending_index: int  # index work owed (a crash left it; finished before counting)
    pending_inference: int  # messages stored as said, waiting for the model
    entities: int
    relations: int
    llm_model: str | None
    circuits: dict[str, str]  # model -> "closed" | "open" | "half-open"
    # A derived part that failed (its error's error_code, message, details, suggestion): the
    # ledger's counts still come, as a damaged index is when they are wanted.
    problems: list[dict[str, Any]]


class GraphRelation(Relation):
    memory_id: str  # the memory the relation came from


class GraphView(TypedDict):
    """What the graph knows around one entity."""

    entity: str
    relations: list[GraphRelation]


class ImportResult(TypedDict):
    imported: int
    duplicates: int  # items whose text the scope already held, or whose id the store has or had
    deleted: NotRequired[int]  # of ``imported``, an export's deleted memories (their history, for restore)
    known_ids: NotRequired[int]  # of those, ids the store has or had (deleted and purged memories keep theirs)


class ExportResult(TypedDict):
    memories: int
    deleted: int  # deleted memories written with their history (so a restore can bring them back)
    history_events: int


class DoctorCheck(TypedDict):
    """One real operation against one part."""

    name: str
    ok: bool
    detail: str
    seconds: float
    error: dict[str, Any] | None  # a failed check's error_code, message, details, suggestion


class ReprocessResult(TypedDict):
    processed: int  # messages replaced by the model's facts
    found_nothing: list[str]  # of those, the ids of messages with nothing worth keeping (deleted, restorable)
    failed: int  # messages left pending because no model answered
    remaining: int  # messages still pending after this run
    last_error: dict[str, Any] | None  # the model's last failure (error_code, message, details, suggestion)
    results: list[AddEvent]


class InferenceBacklog(TypedDict):
    pending_inference: int
    last_error: str | None  # the model's last failure, while messages still wait


class ReindexResult(TypedDict):
    memories: int
    re_embedded: bool
    expired: NotRequired[int]  # expired memories purged before the rebuild (``maintain``)
    history_events_cleared: NotRequired[int]


class MaintainResult(TypedDict):
    """``maintain``: expired memories purged, and history events whose text retention removed."""

    expired: int
    expired_ids: list[str]
    history_events_cleared: int


def event(
    kind: Event,
    record: MemoryRecord,
    *,
    previous: str | None = None,
    text: str | None = None,
    reason: str | None = None,
) -> AddEvent:
    """The event for ``record`` (``text`` when the record's text is not the one to report)."""
    item = AddEvent(id=record.id, memory=record.memory if text is None else text, event=kind)
    if previous is not None:
        item["previous_memory"] = previous
    if reason is not None:
        item["reason"] = reason
    return item


def layer_of(project: str | None) -> Layer:
    return "global" if project is None else "project"


def memory_item(record: MemoryRecord) -> MemoryItem:
    return MemoryItem(**record.public(), layer=layer_of(record.project))  # type: ignore[typeddict-item]


__all__ = [
    "AddEvent",
    "AddResult",
    "ChangeResult",
    "DeleteAllResult",
    "HistoryItem",
    "HistoryResult",
    "Layer",
    "MaintainResult",
    "MemoryItem",
    "MemoryList",
    "Relation",
    "RelationsReport",
    "SimilarMemory",
    "UserCount",
    "event",
    "layer_of",
    "memory_item",
]
