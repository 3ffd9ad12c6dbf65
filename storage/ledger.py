"""What the rest of memorch may ask of a ledger, whichever one a configuration opens.

Three ledgers implement ``Ledger``: ``SQLiteLedger`` (a data directory's ``memorch.db``),
``ReadOnlyLedger`` (the same file in a directory that cannot be written: every write raises
``READ_ONLY``) and ``PostgresLedger`` (one database several replicas share). They share their
queries through ``LedgerCore`` (``storage/ledger_core.py``), not by subclassing one another.

Only the PostgreSQL ledger is also a ``SharedLedger``: it can claim owed index work so that two
replicas never work the same rows, hold a named lock across replicas and take a lease. Code that
needs that narrows with ``shared_ledger`` (a checked narrowing, not a cast).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from memorch.storage.base import Change, HistoryEvent, MemoryRecord, Scope

if TYPE_CHECKING:  # annotations only: numpy stays out of the server's start-up
    from pathlib import Path

    import numpy as np

    from memorch.storage.expiry import HistoryStrip


class Ledger(Protocol):
    """The source of truth: memories, their history, their relations, and the index work owed."""

    # -- writes (each one transaction) -----------------------------------------------------------

    def apply(
        self,
        changes: Sequence[Change],
        index_targets: Sequence[str],
        relation_targets: Sequence[str] = (),
        cached: tuple[str, dict[str, np.ndarray]] | None = None,
    ) -> dict[str, dict[str, str]]: ...

    def purge(
        self,
        memory_ids: Sequence[str],
        index_targets: Sequence[str],
        relation_targets: Sequence[str],
        cache_key: Callable[[str], str],
        now: str,
        cached: tuple[str, dict[str, np.ndarray]] | None = None,
        reason: str = ...,
    ) -> dict[str, str | None]: ...

    def strip_history(self, before: str, cache_key: Callable[[str], str]) -> HistoryStrip: ...

    def scrub(self) -> None:
        """After a purge, outside any transaction: leave no copy of what it removed in the
        engine's files where that can be done."""
        ...

    def set_embeddings(self, vectors: dict[str, np.ndarray]) -> None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def cache_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None: ...

    def wipe(self) -> None: ...

    # -- owed index work (the outbox) -------------------------------------------------------------

    def pending(self, target: str) -> list[str]: ...

    def outbox_tokens(self, target: str, ids: Sequence[str]) -> dict[str, str]: ...

    def clear_pending(self, target: str, tokens: dict[str, str]) -> None: ...

    def mark_pending(self, target: str, ids: Sequence[str]) -> None: ...

    def mark_all_pending(self, target: str) -> int: ...

    # -- serializing a check and the write it decides on -----------------------------------------

    def scope_lock(self, scope: Scope) -> AbstractContextManager[None]: ...

    def memory_locks(self, memory_ids: Sequence[str]) -> AbstractContextManager[None]: ...

    # -- memories and their history ---------------------------------------------------------------

    def get(self, memory_id: str) -> MemoryRecord | None: ...

    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]: ...

    def texts(self, ids: Sequence[str]) -> dict[str, str]: ...

    def ids(self, scope: Scope, where: tuple[str, list[Any]] | None = None) -> list[str]: ...

    def pending_inference(self, limit: int) -> list[MemoryRecord]: ...

    def find_by_hash(self, scope: Scope, text_hash: str) -> MemoryRecord | None: ...

    def history(self, memory_id: str, scope: Scope | None = None) -> list[HistoryEvent]: ...

    def versions_at(self, scope: Scope, when: str, limit: int) -> list[tuple[HistoryEvent, Scope]]: ...

    def history_scope(self, memory_id: str) -> Scope | None: ...

    def deleted_ids(self, scope: Scope, where: tuple[str, list[Any]] | None = None) -> list[str]: ...

    def deleted(self, scope: Scope, limit: int) -> list[dict[str, Any]]: ...

    def scope_counts(self, scope: Scope) -> dict[str, int]: ...

    def expired_ids(self, now: str) -> set[str]: ...

    def expired_deleted_ids(self, now: str) -> set[str]: ...

    def metadata_of(self, memory_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def neighbours(self, scope: Scope, ids: Sequence[str], per_side: int, window_s: float) -> dict[str, list[str]]: ...

    def scopes(self) -> list[dict[str, Any]]: ...

    def deleted_by_user(self) -> dict[str, int]: ...

    def counts(self) -> dict[str, int]: ...

    def known_ids(self, ids: Sequence[str]) -> set[str]: ...

    def export_pages(self, scope: Scope) -> Iterator[list[dict[str, Any]]]: ...

    # -- relations --------------------------------------------------------------------------------

    def relations_for(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]: ...

    def relations_touching(
        self, scope: Scope, names: Sequence[str], memory_ids: Sequence[str], limit: int
    ) -> list[dict[str, Any]]: ...

    def entity_names(self, scope: Scope) -> dict[str, str | None]: ...

    def neighbourhood(self, scope: Scope, name: str, hops: int, limit: int) -> list[dict[str, Any]]: ...

    def holds_relations(self) -> bool: ...

    def relation_counts(self) -> dict[str, int]: ...

    # -- meta, embeddings -------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None: ...

    def cached_vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def embeddings(self, scope: Scope, limit: int) -> tuple[list[str], np.ndarray] | None: ...

    def embeddings_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def embedding_sum(self, scope: Scope, limit: int) -> tuple[np.ndarray, int] | None: ...

    def data_version(self) -> int:
        """Changes when another connection commits (SQLite's ``PRAGMA data_version``); asked only
        of a data directory's ledger, never with ``MEMORCH_LEDGER_URL``."""
        ...

    # -- the ledger as a whole --------------------------------------------------------------------

    def backup_to(self, path: Path) -> None:
        """A consistent copy into a new SQLite file (``BACKUP_UNSUPPORTED`` on PostgreSQL)."""
        ...

    def close(self) -> None: ...

    # Last: a method named ``list`` hides the builtin from the annotations after it.
    def list(
        self, scope: Scope, where: tuple[str, list[Any]] | None, limit: int, after: tuple[str, str] | None = None
    ) -> list[MemoryRecord]: ...


@runtime_checkable
class SharedLedger(Protocol):
    """What only the ledger several replicas share (PostgreSQL) can do, across replicas."""

    def claim_outbox(
        self, target: str, limit: int, ids: Sequence[str] | None = None
    ) -> AbstractContextManager[dict[str, str]]: ...

    def named_lock(self, name: str) -> AbstractContextManager[None]: ...

    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...


def shared_ledger(ledger: Ledger) -> SharedLedger:
    """``ledger`` as a ``SharedLedger``; a ``TypeError`` (a bug, not a user's mistake) when it is
    a data directory's ledger, which replicas' code should never have been given."""
    if not isinstance(ledger, SharedLedger):
        raise TypeError(f"{type(ledger).__name__} is not a ledger replicas share (MEMORCH_LEDGER_URL)")
    return ledger
