"""The records every store reads and writes, and the one scope rule.

The ledger (SQLite, or PostgreSQL for several replicas) is the source of truth; the vector and
graph stores are derived indexes that can be rebuilt from it. The orchestrator types the ledger
against ``storage.ledger.Ledger`` (three ledgers implement it) and the indexes against the
concrete stores (``LanceVectorIndex``, ``KuzuGraph``): protocols nobody typed against were
removed rather than kept as an unchecked promise.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: numpy (~90 ms) stays out of the server's start-up
    import numpy as np

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
_SPACE = re.compile(r"\s+")


def normalize_entity(name: str) -> str:
    """Case, width and white space do not make a different entity."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()


@dataclass(frozen=True)
class Scope:
    """Who a memory belongs to. At least one part is set for every stored memory.

    The scope rule, the same for every query (ledger, vector and text search, relations):
    a scope part that is given must equal the memory's; parts not given match anything. So a
    user-only scope sees that user's memories of every agent and run, and adding ``agent_id``
    narrows to that agent. It is written once per engine: ``contains`` (Python),
    ``storage.sql.scope_sql`` (SQLite), ``storage.vector_plan.scope_filter`` (LanceDB) and
    ``storage.graph.scope_where`` (Kuzu), each built from ``items()``.

    Layers (``project``): a memory with a project belongs to that project's layer, one without
    to its owner's global layer. A scope with ``project`` sees that project's layer and the
    global one (never another project's); a scope without sees every layer, as a part not given
    does. New memories of a scope go to its project's layer, or to the global layer when
    ``global_writes`` (or no project) says so. ``items()`` stays the three identity parts: the
    graph keys entities by them, so an entity is shared by a user's layers.
    """

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    project: str | None = None
    global_writes: bool = False

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in zip(SCOPE_KEYS, self.values(), strict=True) if v is not None]

    def values(self) -> tuple[str | None, str | None, str | None]:
        return (self.user_id, self.agent_id, self.run_id)

    def as_dict(self) -> dict[str, str | None]:
        """Every part by name, None for the parts not given (for rows that store all three)."""
        return dict(zip(SCOPE_KEYS, self.values(), strict=True))

    def is_empty(self) -> bool:
        return not self.items()

    def holds(self, other: Scope) -> bool:
        """Between two memories' own scopes (``Ledger.history_scope``): every part this one gives,
        ``other`` gives alike, and ``other``'s layer is this one's or the global one (a memory's
        project None *is* the global layer, which sees no project's). A user's memory holds that
        user's agents' memories."""
        in_layer = other.project in (None, self.project)
        return in_layer and all(getattr(other, key) == value for key, value in self.items())

    def contains(self, record: MemoryRecord) -> bool:
        """The scope rule: True when every part this scope gives equals the record's, and the
        record is in a layer the scope sees (its project's or the global one)."""
        in_layer = self.project is None or record.project in (None, self.project)
        return in_layer and all(getattr(record, key) == value for key, value in self.items())

    @property
    def write_project(self) -> str | None:
        """The project new memories of this scope belong to (None: the global layer)."""
        return None if self.global_writes else self.project


# What get / get_all / search show of a memory, in this order (mem0's keys plus ``project``).
PUBLIC_FIELDS = (
    "id",
    "memory",
    "hash",
    "metadata",
    "user_id",
    "agent_id",
    "run_id",
    "project",
    "created_at",
    "updated_at",
)


@dataclass
class MemoryRecord:
    id: str
    memory: str
    hash: str
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    embedding: np.ndarray | None = field(default=None, repr=False)
    project: str | None = None  # None: the owner's global layer
    # When the memory stops being true (an ISO UTC time, as the ledger writes its times; None:
    # never): reads stop returning it then, and maintenance purges it (storage/expiry.py).
    expires_at: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope(self.user_id, self.agent_id, self.run_id, self.project)

    def expired(self, now: str) -> bool:
        """Whether the memory has expired at ``now`` (an ISO UTC time as the ledger writes them)."""
        return self.expires_at is not None and self.expires_at <= now

    def public(self) -> dict[str, Any]:
        """The mem0-compatible dict returned by get / get_all / search (``expires_at`` when set)."""
        item = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        if self.expires_at is not None:
            item["expires_at"] = self.expires_at
        return item


@dataclass(frozen=True)
class HistoryEvent:
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: str  # ADD | UPDATE | DELETE
    created_at: str
    updated_at: str | None
    is_deleted: bool
    actor_id: str | None = None
    role: str | None = None
    reason: str | None = None  # why the change was made (the model's reason, a restore, inference)
    # The memory's relations just before this event (None: not recorded), so a restore to the
    # version before it brings its relations back too.
    relations_before: tuple[dict[str, Any], ...] | None = None
    # The metadata and expiry the memory had just before a DELETE, UPDATE or RESTORE event, which
    # ``restore`` gives it back with the text (metadata None: not recorded, as on ADD events and on
    # events before this was recorded; the expiry then means nothing). Not in ``public``.
    expires_at: str | None = None
    metadata: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        item = {
            "id": self.id,
            "memory_id": self.memory_id,
            "old_memory": self.old_memory,
            "new_memory": self.new_memory,
            "event": self.event,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "is_deleted": self.is_deleted,
            "actor_id": self.actor_id,
            "role": self.role,
        }
        if self.reason is not None:
            item["reason"] = self.reason
        return item


@dataclass(frozen=True)
class Change:
    """One memory's change inside a ledger transaction (with its history event)."""

    kind: str  # ADD | UPDATE | DELETE
    record: MemoryRecord
    old_memory: str | None = None
    actor_id: str | None = None
    role: str | None = None
    # Entity relations this memory states: None leaves the stored ones, [] clears them.
    relations: tuple[dict[str, Any], ...] | None = None
    # Events carried over from an export (``memorch import``): written as they are, instead of
    # a new event describing this change.
    history: tuple[HistoryEvent, ...] | None = None
    reason: str | None = None  # kept in the change's history event
    # An UPDATE's or RESTORE's memory as it was before: its metadata and expiry go into the event.
    before: MemoryRecord | None = None


# A vector or full-text query asks its index for this many more rows than it returns, and never
# splits a tie at its cut (``memorch.storage.vectors.first_without_arbitrary_ties``): which rows of
# a tie would make the cut depends on where they lie in LanceDB's files, or on their random ids.
# So a query may return fewer rows than its limit; a caller that needs k rows asks for k + this.
TIE_MARGIN = 10


@dataclass(frozen=True)
class VectorHit:
    id: str
    score: float  # cosine similarity clipped to [0, 1]
    # What fusion scales instead of ``score``, when set: the vector signal's centered similarity
    # (``memorch.retrieval._centering``); ``score`` stays the cosine the calibration reads.
    order: float | None = None

    @property
    def ordering(self) -> float:
        """The value this hit is ranked and scaled by."""
        return self.score if self.order is None else self.order
