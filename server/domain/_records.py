"""Building memory records and the changes that write them (pure functions, no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from memorch.domain._expiry import take_expiry
from memorch.domain._messages import normalized_hash
from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.errors import MemoryNotFoundError
from memorch.storage.base import Change, HistoryEvent, MemoryRecord, Scope

if TYPE_CHECKING:
    import numpy as np


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def successive(start: str, step: int) -> str:
    """``start`` (a ledger time) plus ``step`` microseconds: the memories one write creates get
    increasing times, so the ledger's order of creation keeps the order they were said in (a
    search brings along what was said next to a hit: ``memorch.retrieval._context``)."""
    return (datetime.fromisoformat(start) + timedelta(microseconds=step)).isoformat(timespec="microseconds")


# The marks of a message waiting for inference (``memorch.inference._add``): a deleted message
# restored is the user's text again, not work for the model (it would be inferred and deleted again).
INFERENCE_MARKS = ("pending_inference", "error_code", "batch", "part")
# The pending messages a memory was inferred from (``_memorch.from``, their ids): a purge of the
# memory purges them too, since each holds what the memory says in the user's own words.
MADE_FROM = "from"


def made_from(metadata: dict[str, Any], messages: Sequence[str]) -> dict[str, Any]:
    """``metadata`` with ``messages`` added to the ids of the messages it was inferred from."""
    marks = metadata.get(RESERVED_METADATA_KEY, {})
    sources = sorted({*marks.get(MADE_FROM, ()), *messages})
    return {**metadata, RESERVED_METADATA_KEY: {**marks, MADE_FROM: sources}}


def sources_in(metadata: Iterable[dict[str, Any]]) -> set[str]:
    """The ids of the messages these metadata say their memory was inferred from."""
    found: set[str] = set()
    for one in metadata:
        marks = one.get(RESERVED_METADATA_KEY)
        ids = marks.get(MADE_FROM) if isinstance(marks, dict) else None
        if isinstance(ids, list):
            found.update(i for i in ids if isinstance(i, str))
    return found


def restored_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata a deletion recorded, as a restored memory gets it back: without the marks of
    pending inference."""
    metadata = dict(metadata or {})
    marks = {k: v for k, v in metadata.pop(RESERVED_METADATA_KEY, {}).items() if k not in INFERENCE_MARKS}
    return {**metadata, RESERVED_METADATA_KEY: marks} if marks else metadata


def restored_over(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The metadata an event recorded, as a live memory gets it back: its own keys and marks from
    then, with the current marks of pending inference (whether the message still waits for the
    model is now's, not then's)."""
    metadata = restored_metadata(recorded)
    waiting = {k: v for k, v in current.get(RESERVED_METADATA_KEY, {}).items() if k in INFERENCE_MARKS}
    if not waiting:
        return metadata
    return {**metadata, RESERVED_METADATA_KEY: {**metadata.get(RESERVED_METADATA_KEY, {}), **waiting}}


def not_found(memory_id: str, *, ever: bool = False) -> MemoryNotFoundError:
    """``ever``: not even in the history (which keeps deleted memories), so never in this scope."""
    if ever:
        return MemoryNotFoundError(
            f"no memory with id {memory_id} was ever stored in this scope",
            details={"memory_id": memory_id},
            suggestion="check the id (a deleted memory keeps its history, so this one never existed here); "
            "use {search_memories} or {list_memories} to find ids",
        )
    return MemoryNotFoundError(
        f"no memory with id {memory_id} in this scope",
        details={"memory_id": memory_id},
        suggestion="use {search_memories} or {list_memories} to find current ids; if it was deleted, "
        "{memory_history} shows what it said",
    )


def awaits_inference(metadata: dict[str, Any] | None) -> bool:
    """The memory with this metadata was stored as said, waiting for inference (a failed model,
    or background inference); a DELETE event's metadata says it of the memory it deleted."""
    return bool((metadata or {}).get(RESERVED_METADATA_KEY, {}).get("pending_inference"))


# Why inference deleted a message it found nothing in (its DELETE event's reason).
NOTHING_FOUND = "inference found nothing worth remembering in it"


def was_deleted(deleted: HistoryEvent) -> MemoryNotFoundError:
    """A memory that is deleted (not purged; ``deleted``: its DELETE event): not found, and how to
    bring it back. A message that was awaiting inference was replaced by its facts, or had
    nothing in it, as the event's reason says (naming the facts; None once history retention
    removed it): restoring it would say what they say twice (a newcomer's trial, 2026-12-07), so
    the way on is to the facts."""
    memory_id, when, reason = deleted.memory_id, deleted.updated_at or deleted.created_at, deleted.reason
    details: dict[str, Any] = {"memory_id": memory_id, "deleted_at": when}
    if not awaits_inference(deleted.metadata):
        return MemoryNotFoundError(
            f"memory {memory_id} was deleted at {when}",
            details=details,
            suggestion="bring it back with {restore_memory}, then try again; {memory_history} shows what it said",
        )
    if reason == NOTHING_FOUND:
        way_on = "restore it with {restore_memory} only if it should be kept as said"
    elif reason is not None:
        way_on = (
            "use {get_memory} on the facts named, or {search_memories}; restoring the message would store "
            "what they say a second time"
        )
    else:
        way_on = (
            "{search_memories} for what it said first (inference may have replaced it by facts); restore it "
            "with {restore_memory} only if nothing holds it"
        )
    said = reason or "its history no longer says what became of it"
    return MemoryNotFoundError(
        f"memory {memory_id} was a message awaiting inference, deleted at {when}: {said}",
        details={**details, "reason": reason},
        suggestion=way_on,
    )


def expired(record: MemoryRecord) -> MemoryNotFoundError:
    """The error for a memory whose expiry has passed: it is forgotten, whatever maintenance
    has not removed yet."""
    return MemoryNotFoundError(
        f"memory {record.id} expired at {record.expires_at}: it is forgotten (maintenance removes it for good)",
        error_code="MEMORY_EXPIRED",
        details={"memory_id": record.id, "expires_at": record.expires_at},
        suggestion="add it again (with a later expires_at, or none) if it still holds",
    )


def new_record(text: str, vector: np.ndarray, scope: Scope, metadata: dict[str, Any], now: str) -> MemoryRecord:
    """A new memory; an expiry mark in ``metadata`` (an add's ``expires_at``) becomes its expiry."""
    metadata, expiry = take_expiry(metadata)
    return MemoryRecord(
        id=str(uuid.uuid4()),
        memory=text,
        hash=normalized_hash(text),
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        run_id=scope.run_id,
        metadata=dict(metadata),
        created_at=now,
        updated_at=now,
        embedding=vector,
        project=scope.write_project,
        expires_at=expiry,
    )


def replaced(record: MemoryRecord, text: str, vector: np.ndarray, metadata: dict[str, Any] | None) -> MemoryRecord:
    """``record`` with new text (and metadata); memorch's own metadata key is kept, and so is the
    expiry, unless ``metadata`` carries an add's expiry mark (inference updating a memory from a
    time-bound add: what it says now holds as long as that add)."""
    expiry = record.expires_at
    if metadata is not None:
        metadata, marked = take_expiry(metadata)
        expiry = marked or expiry
    meta = dict(record.metadata) if metadata is None else dict(metadata)
    if RESERVED_METADATA_KEY in record.metadata and metadata is not None:
        meta[RESERVED_METADATA_KEY] = record.metadata[RESERVED_METADATA_KEY]
    return MemoryRecord(
        id=record.id,
        memory=text,
        hash=normalized_hash(text),
        user_id=record.user_id,
        agent_id=record.agent_id,
        run_id=record.run_id,
        metadata=meta,
        created_at=record.created_at,
        updated_at=utc_now(),
        embedding=vector,
        project=record.project,  # an update keeps the memory in its layer
        expires_at=expiry,
    )


def deletion(record: MemoryRecord) -> Change:
    gone = MemoryRecord(**{**record.__dict__, "updated_at": utc_now()})
    return Change("DELETE", gone, old_memory=record.memory)


def repeat_reason(repeat: MemoryRecord, asked: dict[str, Any], expiry_asked: bool = True) -> str:
    """Why an add of a text already stored changed nothing, and that the metadata or expiry it
    asked for (when they differ from the memory's) were not applied: an assistant told the user
    "forgotten in 7 days" of a memory kept for good (a newcomer's trial, 2026-12-07)."""
    metadata, expiry = take_expiry(asked)
    own = {k: v for k, v in metadata.items() if k != RESERVED_METADATA_KEY}
    kept = {k: v for k, v in repeat.metadata.items() if k != RESERVED_METADATA_KEY}
    differs = [
        name
        for name, same in (
            ("metadata", not own or own == kept),
            ("expiry", not expiry_asked or expiry in (None, repeat.expires_at)),
        )
        if not same
    ]
    if not differs:
        return "the same text is already stored"
    verb = "were" if len(differs) > 1 else "was"
    unapplied = f"this add's {' and '.join(differs)} {verb} not applied"
    return f"the same text is already stored; {unapplied} (an update changes them)"
