"""Records and the small protocols every store implements.

SQLite is the ledger (source of truth); the vector and graph stores are derived indexes that
can be rebuilt from it. Other engines (PostgreSQL, LanceDB Cloud, Neo4j) plug in by
implementing these protocols; nothing above ``memorch.storage`` names an engine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
_SPACE = re.compile(r"\s+")


def normalize_entity(name: str) -> str:
    """Case, width and white space do not make a different entity."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()


@dataclass(frozen=True)
class Scope:
    """Who a memory belongs to. At least one part is set for every stored memory."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in zip(SCOPE_KEYS, self.values(), strict=True) if v is not None]

    def values(self) -> tuple[str | None, str | None, str | None]:
        return (self.user_id, self.agent_id, self.run_id)

    def is_empty(self) -> bool:
        return not self.items()

    def contains(self, record: MemoryRecord) -> bool:
        """True when every part this scope names matches the record's."""
        return all(getattr(record, key) == value for key, value in self.items())


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

    @property
    def scope(self) -> Scope:
        return Scope(self.user_id, self.agent_id, self.run_id)

    def public(self) -> dict[str, Any]:
        """The mem0-compatible dict returned by get / get_all / search."""
        return {
            "id": self.id,
            "memory": self.memory,
            "hash": self.hash,
            "metadata": self.metadata,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


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

    def public(self) -> dict[str, Any]:
        return {
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


@dataclass(frozen=True)
class VectorHit:
    id: str
    score: float  # cosine similarity clipped to [0, 1]


class HistoryStore(Protocol):
    """The ledger: current memories, their append-only history, and index work still owed."""

    def apply(self, changes: Sequence[Change], index_targets: Sequence[str]) -> None: ...
    def get(self, memory_id: str) -> MemoryRecord | None: ...
    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]: ...
    def list(self, scope: Scope, where: tuple[str, list[Any]] | None, limit: int) -> list[MemoryRecord]: ...
    def find_by_hash(self, scope: Scope, text_hash: str) -> MemoryRecord | None: ...
    def history(self, memory_id: str, scope: Scope | None = None) -> list[HistoryEvent]: ...
    def pending(self, target: str) -> list[str]: ...
    def outbox_tokens(self, target: str, ids: Sequence[str]) -> dict[str, str]: ...
    def clear_pending(self, target: str, tokens: dict[str, str]) -> None: ...


class VectorIndex(Protocol):
    """Nearest-neighbour (and full-text) search over memories, keyed by memory id."""

    def upsert(self, records: Sequence[MemoryRecord]) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def search(
        self, vector: np.ndarray, scope: Scope, limit: int, only_ids: Sequence[str] | None = None
    ) -> list[VectorHit]: ...
    def count(self) -> int: ...
    def deferred_maintenance(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


class GraphIndex(Protocol):
    """Entities and relations extracted from memories, keyed by the memory that produced them."""

    def apply(self, work: Sequence[Any]) -> None: ...
    def relations(
        self, scope: Scope, names: Sequence[str], memory_ids: Sequence[str], limit: int
    ) -> list[dict[str, Any]]: ...
    def wipe(self) -> None: ...
