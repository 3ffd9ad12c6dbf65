"""The operations on single memories, planned and committed through the ``Store``: a verbatim
add (its repeat check and near-duplicate hint), update, restore, delete and delete-all. Each holds
the store's write lock (``writing``, or ``reconciling`` where other replicas must take turns) for
its check-and-write, and commits through ``Store.commit``; the model's additions live in
``inference``, bulk ones in ``bulk`` and ``transfer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from memorch.domain._expiry import NEVER
from memorch.domain._messages import Message, normalized_hash
from memorch.domain._records import (
    deletion,
    expired,
    new_record,
    not_found,
    repeat_reason,
    replaced,
    restored_metadata,
    restored_over,
    successive,
    utc_now,
    was_deleted,
)
from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.engine._store import DELETE_BATCH, Store
from memorch.errors import MemoryNotFoundError, ValidationError
from memorch.results import AddEvent, AddResult, ChangeResult, DeleteAllResult, SimilarMemory, event
from memorch.storage.base import TIE_MARGIN, Change, HistoryEvent, MemoryRecord, Scope
from memorch.storage.expiry import RETENTION_REASON
from memorch.storage.purge import PURGE
from memorch.storage.sql import chunks

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class VerbatimPrep:
    vectors: np.ndarray
    nearest: list[tuple[float, MemoryRecord] | None]


def in_scope(store: Store, memory_id: str, scope: Scope) -> MemoryRecord:
    """The memory, if ``scope`` may see it; else ``MEMORY_NOT_FOUND`` (``MEMORY_EXPIRED`` once
    its expiry has passed: from that moment on, not only once maintenance purged it)."""
    found = store.parts.ledger.get(memory_id)
    if found is None:
        # A deleted memory says so, with the way back (its history is only read on this path).
        events = store.parts.ledger.history(memory_id, scope)
        last = events[-1] if events else None
        if is_purged(events):
            raise purged(memory_id)  # as restore says it: nothing can bring it back
        # Not one whose expiry has passed since: restoring it cannot work (MEMORY_EXPIRED).
        restorable = last is not None and last.is_deleted
        if restorable and (last.expires_at is None or last.expires_at > utc_now()):
            raise was_deleted(last)
    if found is None or not scope.contains(found):
        raise not_found(memory_id)
    if found.expired(utc_now()):
        raise expired(found)
    return found


def find_repeat(store: Store, text: str, scope: Scope, pending: Sequence[Change]) -> MemoryRecord | None:
    """A memory of the scope (stored, or planned in this call) with the same normalized text."""
    text_hash = normalized_hash(text)
    for change in pending:
        if change.kind != "DELETE" and change.record.hash == text_hash:
            return change.record
    return store.parts.ledger.find_by_hash(scope, text_hash)


def closest_stored(store: Store, vector: np.ndarray, scope: Scope) -> tuple[float, MemoryRecord] | None:
    """The scope's stored memory nearest to ``vector``, with its similarity: from the
    embeddings held in memory, or else from the vector index and the commits not in it yet."""
    cache = store.nearest_cache()
    if cache is not None:
        answered, best = cache.nearest(vector, scope)
        if answered:
            if best is None:
                return None
            record = store.parts.ledger.get(best[1])
            if record is not None and not record.expired(utc_now()):  # else gone since: ask the index
                return best[0], record
    unindexed = store.unindexed_changes()  # their index rows, if any, are out of date
    stale = {c.record.id for c in unindexed}
    # More than the stale ones: a tie at a query's cut is left out whole (``TIE_MARGIN``).
    asked = 1 + len(stale) + TIE_MARGIN
    hits = [h for h in store.parts.vectors.search(vector, scope, asked) if h.id not in stale]
    record = store.parts.ledger.get(hits[0].id) if hits else None
    if record is not None and record.expired(utc_now()):  # forgotten: no near-duplicate of anything
        record = None
    owned = [c for c in unindexed if scope.contains(c.record)]
    return _nearer(None if record is None else (hits[0].score, record), owned, vector)


def _nearer(
    best: tuple[float, MemoryRecord] | None, changes: Sequence[Change], vector: np.ndarray
) -> tuple[float, MemoryRecord] | None:
    """``best``, or the memory a change in ``changes`` leaves nearer to ``vector``."""
    for change in changes:
        if change.kind != "DELETE" and change.record.embedding is not None:
            score = float(change.record.embedding @ vector)
            if best is None or score > best[0]:
                best = (score, change.record)
    return best


def similar(
    store: Store, vector: np.ndarray, stored: tuple[float, MemoryRecord] | None, pending: Sequence[Change]
) -> SimilarMemory | None:
    """The closest of ``stored`` and the memories planned in this call, when at least
    ``dedup_threshold`` similar; else None. A hint for the caller, never a reason to drop."""
    best = _nearer(stored, pending, vector)
    if best is None or best[0] < store.config.dedup_threshold:
        return None
    return SimilarMemory(id=best[1].id, memory=best[1].memory, similarity=round(best[0], 4))


def prepare_verbatim(store: Store, messages: list[Message], scope: Scope) -> VerbatimPrep:
    """The part of a verbatim add that needs no lock (so it runs beside other writes): the
    embeddings, and each message's nearest stored memory for the ``similar`` hint."""
    store.ready(for_write=True)
    vectors = store.parts.embedder.embed([m.content for m in messages])
    return VerbatimPrep(vectors, [closest_stored(store, v, scope) for v in vectors])


def add_verbatim(
    store: Store,
    messages: list[Message],
    scope: Scope,
    metadata: dict[str, Any],
    prep: VerbatimPrep | None = None,
    marks: Sequence[dict[str, Any]] | None = None,
    dry_run: bool = False,
    expiry_asked: bool = True,
) -> AddResult:
    """Store each message as it is. Only a true repeat (same normalized text) is NONE; a
    merely similar memory is reported as ``similar`` (an embedding cannot tell "Monday" from
    "Tuesday", so dropping it would lose what was just said). ``marks``: per message, added
    to its reserved ``_memorch`` metadata; ``dry_run``: the same answer, nothing written;
    ``expiry_asked``: a repeat's reason names an expiry it did not apply (not the default's)."""
    prep = prep or prepare_verbatim(store, messages, scope)
    results: list[AddEvent] = []
    changes: list[Change] = []
    with store.reconciling(scope):
        now = utc_now()
        for i, (message, vector, stored) in enumerate(zip(messages, prep.vectors, prep.nearest, strict=True)):
            asked = _with_marks(metadata, marks, i)
            repeat = find_repeat(store, message.content, scope, changes)  # under the lock: exact
            if repeat is not None:
                results.append(event("NONE", repeat, reason=repeat_reason(repeat, asked, expiry_asked)))
                continue
            record = new_record(message.content, vector, scope, asked, successive(now, i))
            said = "would be stored as said" if dry_run else "stored as said (no inference)"
            item = event("ADD", record, reason=said)
            hint = similar(store, vector, stored, changes)
            if hint is not None:
                item["similar"] = hint
            changes.append(Change("ADD", record, actor_id=message.name, role=message.role))
            results.append(item)
        if not dry_run:
            store.commit(changes)
    return {"results": results}


def update(
    store: Store,
    memory_id: str,
    scope: Scope,
    text: str,
    metadata: dict[str, Any] | None,
    expiry: str | None = None,
) -> ChangeResult:
    """Replace a memory's text (and, if given, its metadata and expiry: ``NEVER`` removes it);
    history keeps the old text."""
    before = in_scope(store, memory_id, scope)
    expires = before.expires_at if expiry is None else (None if expiry == NEVER else expiry)
    if text == before.memory and (metadata is None or metadata == before.metadata) and expires == before.expires_at:
        return {"id": before.id, "memory": before.memory, "event": "NONE", "message": "already says this"}
    vector = store.parts.embedder.embed([text])[0]  # outside the lock
    with store.reconciling(memories=[memory_id]):
        current = in_scope(store, memory_id, scope)  # as it is now, under the lock
        updated = replace(replaced(current, text, vector, metadata), expires_at=expires)
        # Relations were extracted from the old text; a hand edit clears them rather than
        # leave the graph asserting what the memory no longer says.
        cleared = () if store.config.graph_enabled else None
        store.commit([Change("UPDATE", updated, old_memory=current.memory, relations=cleared, before=current)])
    return {"id": updated.id, "memory": text, "event": "UPDATE", "previous_memory": current.memory}


def restore(store: Store, memory_id: str, scope: Scope, event_id: str | None) -> ChangeResult:
    """Bring back the text a memory had before one of its history events (default: before
    the last change), as a new RESTORE event; a deleted memory comes back under its old id."""
    with store.reconciling(memories=[memory_id]):
        events = store.parts.ledger.history(memory_id, scope)
        if not events:
            raise not_found(memory_id)
        event_ = events[-1] if event_id is None else next((e for e in events if e.id == event_id), None)
        if is_purged(events):
            raise purged(memory_id)
        if event_ is None:
            raise ValidationError(
                f"memory {memory_id} has no history event {event_id}",
                error_code="EVENT_NOT_FOUND",
                suggestion="use {memory_history} to see the memory's event ids",
            )
        if event_.old_memory is None and event_.reason == RETENTION_REASON and event_.event != "ADD":
            raise ValidationError(
                f"the version before event {event_.id} is gone: history retention removed its text",
                error_code="HISTORY_EXPIRED",
                details={"memory_id": memory_id, "event_id": event_.id},
                suggestion="pick a later event from {memory_history}, or give {update_memory} the text the user wants",
            )
        if event_.old_memory is None:
            how = "the memory was created there" if event_.event == "ADD" else "it brought back a deleted memory"
            raise ValidationError(
                f"there is no version before event {event_.id} ({event_.event}: {how})",
                error_code="NOTHING_TO_RESTORE",
                suggestion="pick a later event from {memory_history}, or remove the memory with {delete_memory}",
            )
        text, current = event_.old_memory, store.parts.ledger.get(memory_id)
        if current is not None and current.expired(utc_now()):
            raise expired(current)
        if current is not None and says_already(current, event_):
            return {"id": memory_id, "memory": text, "event": "NONE", "message": "already says this"}
        vector = store.parts.embedder.embed([text])[0]
        if current is not None:
            # The metadata and expiry from before the event come back with the text, when the
            # event recorded them (an update of metadata alone is undone too).
            restored = replaced(current, text, vector, None)
            if event_.metadata is not None:
                metadata = restored_over(event_.metadata, current.metadata)
                restored = replace(restored, metadata=metadata, expires_at=event_.expires_at)
                if restored.expired(utc_now()):
                    raise expired(restored)
        else:  # deleted: its scope and creation time come from its history
            first = events[0]
            owner = store.parts.ledger.history_scope(memory_id) or scope
            deletion = next((e for e in reversed(events) if e.event == "DELETE"), None)
            restored = new_record(text, vector, owner, restored_metadata(deletion and deletion.metadata), utc_now())
            restored.id, restored.created_at = memory_id, first.created_at
            # The expiry and metadata it had when deleted come back with it; an expiry passed
            # meanwhile is refused (``MEMORY_EXPIRED``), as for a memory that expired undeleted.
            restored.expires_at = deletion.expires_at if deletion else None
            if restored.expired(utc_now()):
                raise expired(restored)
        # The relations the memory had just before that event come back with its text (events
        # recorded before relations were versioned have none: then they are cleared).
        relations = (event_.relations_before or ()) if store.config.graph_enabled else None
        previous = current.memory if current is not None else None
        reason = f"restored the version from before event {event_.id}"
        change = Change("RESTORE", restored, old_memory=previous, relations=relations, reason=reason, before=current)
        store.commit([change])
    result: ChangeResult = {
        "id": memory_id,
        "memory": text,
        "event": "RESTORE",
        "message": f"restored from before {event_.id}",
    }
    if previous is not None:
        result["previous_memory"] = previous
    return result


def says_already(current: MemoryRecord, event: HistoryEvent) -> bool:
    """Whether ``current`` is the version from before ``event``: its text, and its metadata and
    expiry where the event recorded them."""
    if current.memory != event.old_memory:
        return False
    if event.metadata is None:
        return True
    same = current.metadata == restored_over(event.metadata, current.metadata)
    return same and current.expires_at == event.expires_at


def purged(memory_id: str) -> MemoryNotFoundError:
    return MemoryNotFoundError(
        f"memory {memory_id} was purged: its text and history were removed for good",
        error_code="MEMORY_PURGED",
        details={"memory_id": memory_id},
        suggestion="nothing can bring it back; add it again if the user wants it remembered",
    )


def is_purged(events: Sequence[HistoryEvent]) -> bool:
    return bool(events) and events[-1].event == PURGE


def delete(store: Store, memory_id: str, scope: Scope, purge: bool = False) -> ChangeResult:
    """Delete one memory; deleting one that is already deleted answers NONE (a retry is harmless).
    ``purge``: remove it for good (``Store.purge``), also one deleted before."""
    if purge:
        return _purge_one(store, memory_id, scope)
    with store.reconciling(memories=[memory_id]):
        record = store.parts.ledger.get(memory_id)
        if record is not None and scope.contains(record):
            if record.expired(utc_now()):  # forgotten already; a plain delete would keep its text in history
                raise expired(record)
            store.commit([deletion(record)])
            return {
                "id": record.id,
                "memory": record.memory,
                "event": "DELETE",
                "message": "Memory deleted successfully!",
            }
    events = store.parts.ledger.history(memory_id, scope)
    if not events or not events[-1].is_deleted:
        raise not_found(memory_id)
    if is_purged(events):
        return {"id": memory_id, "memory": "", "event": "NONE", "message": "Memory was already purged"}
    last_text = events[-1].old_memory or ""
    return {"id": memory_id, "memory": last_text, "event": "NONE", "message": "Memory was already deleted"}


def _purge_one(store: Store, memory_id: str, scope: Scope) -> ChangeResult:
    purged: dict[str, str | None] | None = None
    with store.writing():  # the purge's files are finished under the write lock, before a sweep looks
        with store.reconciling(memories=[memory_id]):
            record = store.parts.ledger.get(memory_id)
            if record is not None and not scope.contains(record):
                raise not_found(memory_id)
            events = store.parts.ledger.history(memory_id, scope)
            if record is None and not events:
                raise not_found(memory_id)
            if not is_purged(events):
                purged = store.purge([] if record is None else [record], [memory_id])
        if purged is not None:
            store.finish_purges([memory_id, *purged])
        elif store.purge_is_owed(memory_id):
            # A retry of a purge whose index or file part failed or was stopped: finished now.
            store.finish_purges([memory_id], unfinished=True)
    if purged is None:
        return {"id": memory_id, "memory": "", "event": "NONE", "message": "Memory was already purged"}
    return {
        "id": memory_id,
        "memory": purged.get(memory_id) or "",  # what it said (empty if deleted before): in this answer only
        "event": "PURGE",
        "purged": True,
        "message": "Memory purged: its text, history and relations are gone for good (restore cannot bring it back)",
    }


def own_layer(scope: Scope) -> tuple[str, list[Any]] | None:
    """What ``delete_all`` of a scope that names a project reaches besides the scope rule: that
    project's layer alone. The global layer is every project's: forgetting one project must not
    take it (a scope with a project reads both)."""
    return None if scope.project is None else ("project = ?", [scope.project])


def purge_all(store: Store, scope: Scope) -> DeleteAllResult:
    """``delete_all`` with ``purge``: every memory of the scope, and those deleted before (only
    their history was left), removed for good; their index and file part once at the end."""
    with store.writing():
        every = store.parts.ledger.ids(scope, own_layer(scope))
        # Expired ones go too, but are not counted as deleted: they were forgotten already.
        hidden = store.parts.ledger.expired_ids(utc_now())
        ids, expired_now = [i for i in every if i not in hidden], [i for i in every if i in hidden]
        earlier = store.parts.ledger.deleted_ids(scope, own_layer(scope))
        purged: set[str] = set()
        # Each batch locked as one purge is (``reconciling``); the deleted ones have no row to read.
        for batch in chunks([*every, *earlier], DELETE_BATCH):
            with store.parts.ledger.memory_locks(batch):
                purged.update(store.purge(store.parts.ledger.get_many(batch), batch))
        store.finish_purges(sorted(purged))
    noun = "memory" if len(ids) == 1 else "memories"
    message = f"Purged {len(ids)} {noun} for good"
    if expired_now:
        message += f", {len(expired_now)} expired one{'' if len(expired_now) == 1 else 's'} too"
    if earlier:
        message += f", and the history of {len(earlier)} deleted before"
    return {"deleted": len(ids), "ids": ids, "purged": True, "message": message}


def delete_all(store: Store, scope: Scope) -> DeleteAllResult:
    """Delete every memory of the scope but the expired ones: those are forgotten already, and
    maintenance purges them (a plain delete would keep their text in history)."""
    with store.writing():
        hidden = store.parts.ledger.expired_ids(utc_now())
        ids = [i for i in store.parts.ledger.ids(scope, own_layer(scope)) if i not in hidden]
        for batch in chunks(ids, DELETE_BATCH):
            store.commit([deletion(r) for r in store.parts.ledger.get_many(batch)])
    message = f"Deleted {len(ids)} {'memory' if len(ids) == 1 else 'memories'}"
    return {"deleted": len(ids), "ids": ids, "message": message}


def _with_marks(metadata: dict[str, Any], marks: Sequence[dict[str, Any]] | None, position: int) -> dict[str, Any]:
    if marks is None:
        return metadata
    reserved = {**metadata.get(RESERVED_METADATA_KEY, {}), **marks[position]}
    return {**metadata, RESERVED_METADATA_KEY: reserved}
