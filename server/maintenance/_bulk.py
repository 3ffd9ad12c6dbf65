"""Bulk import: many memories in batches (one embedding call, one ledger transaction and one
index append per batch). Duplicates are judged by exact normalized text within a scope; the
per-memory near-duplicate search of ``add`` is skipped, which is what makes it fast.

Lines written by ``memorch export`` (they carry an ``id``) are restored with their id,
timestamps, relations and history (``transfer.py``).

Expiry as for ``add``: an item's own ``expires_at`` (checked like ``add``'s), else, for a memory
that comes in live without one (an exported one too), the scope's ``MEMORCH_DEFAULT_EXPIRY``
counted from the import: it is stored here now, as an add would be.

A plain item may say when it was said (``created_at``, not in the future: a chat history's
times): the memory is dated then, so a search that names a time ("last week") finds it there."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import memorch.domain._expiry as expiry_rules
import memorch.domain._validation as validation
from memorch.domain._messages import normalized_hash
from memorch.domain._records import new_record, successive, utc_now
from memorch.errors import ValidationError
from memorch.maintenance._export import ExportedMemory, parse_exported
from memorch.maintenance._files import refuse_all
from memorch.results import ImportResult
from memorch.storage.base import Change, Scope
from memorch.storage.expiry import stamp

if TYPE_CHECKING:
    from memorch.engine._store import Store

BATCH = 512
SEVERAL_BAD_ITEMS = "fix or remove every item named (details.problems lists them all); nothing was written"


@dataclass(frozen=True)
class Item:
    text: str | None  # None: a deleted memory's history, from an export
    scope: Scope
    metadata: dict[str, Any]
    exported: ExportedMemory | None = None  # a line of `memorch export`: restored as it was
    expires_at: str | None = None  # a plain item's own, checked (an exported one's is in ``exported``)
    created_at: str | None = None  # a plain item's: when it was said (a chat history's times)


def checked_item(item: Any, default: Scope, max_text_bytes: int) -> Item:
    """One item of an import, validated (``default``: the scope of an item that names none);
    also what ``importers.Batch.check`` runs on every line of a file before anything is opened."""
    if not isinstance(item, dict):
        raise ValidationError(
            "each item must be an object",
            error_code="INVALID_ITEM",
            suggestion='pass each item as a dict, e.g. {"memory": "I like tea"}',
        )
    exported, text = None, None
    if "id" in item:
        exported, text = parse_exported(item, max_text_bytes)
    else:
        text = validation.text(item.get("memory", item.get("text")), max_text_bytes, "memory")
    scope = validation.scope({key: item.get(key, value) for key, value in default.as_dict().items()}, required=True)
    metadata = validation.metadata(item.get("metadata"), allow_reserved=exported is not None)
    own = None if exported else expiry_rules.expires_at(item.get("expires_at"), datetime.now(UTC))
    said = None if exported else validation.moment(item.get("created_at"), "created_at", past=True)
    return Item(text, scope, metadata, exported, own, None if said is None else stamp(said))


def _checked(store: Store, items: Iterable[Any], default: Scope) -> list[Item]:
    """Validate every item before anything is written: a bad line changes nothing."""
    out, problems = [], []
    for number, item in enumerate(items, start=1):
        try:
            out.append(checked_item(item, default, store.config.max_text_bytes))
        except ValidationError as exc:
            exc.details["item"] = number
            exc.message = f"item {number}: {exc.message}"
            problems.append(exc)
    if problems:  # every bad item named at once
        raise refuse_all(problems, SEVERAL_BAD_ITEMS)
    return out


@dataclass
class _Planned:
    """What the batches of one import planned so far."""

    seen: set[Any] = field(default_factory=set)  # exported ids and (scope, text hash) keys
    same_time: dict[str, int] = field(default_factory=dict)  # a given time: how many items had it
    known: set[str] = field(default_factory=set)  # ids the ledger had before the import (skipped)


def _plan_batch(store: Store, batch: list[Item], planned: _Planned) -> list[Change]:
    """The batch's changes. New items are judged duplicates by exact text in their scope;
    exported ones by id (an id the ledger has seen, alive or deleted, is left as it is). Both are
    set aside before the embedding, so importing a file again embeds nothing."""
    ledger = store.parts.ledger
    known = ledger.known_ids([i.exported.id for i in batch if i.exported])
    planned.known |= known - planned.seen  # not those this import wrote in an earlier batch
    seen, same_time = planned.seen, planned.same_time
    fresh = _fresh(store, batch, known, seen)
    embedded = [i for i in fresh if i.text is not None]
    vectors = dict(zip(map(id, embedded), store.parts.embedder.embed([i.text for i in embedded]), strict=True))
    changes, now = [], utc_now()
    for position, item in enumerate(fresh):
        vector = vectors.get(id(item))
        if item.exported is not None:
            changes.append(item.exported.change(item.scope, item.text, vector, item.metadata))
        else:
            # The items of one time keep their order (a chat's turns often share one): a given time
            # is kept as given, the ones after it that repeat it a microsecond apart each
            # (``same_time``: how many of the import's items had that time before, every batch).
            if item.created_at is None:
                created = successive(now, position)
            else:
                earlier = same_time[item.created_at] = same_time.get(item.created_at, -1) + 1
                created = successive(item.created_at, earlier)
            changes.append(Change("ADD", new_record(item.text, vector, item.scope, item.metadata, created)))
            changes[-1].record.expires_at = item.expires_at
        _default_expiry(store, changes[-1])
    return changes


def _fresh(store: Store, batch: list[Item], known: set[str], seen: set[Any]) -> list[Item]:
    """The batch's items this import writes, each marked ``seen``: not an id the ledger knows or
    the import wrote already (a file that repeats a line), not a text its scope holds."""
    fresh = []
    for item in batch:
        if item.exported is not None:
            if item.exported.id in known or item.exported.id in seen:
                continue
            seen.add(item.exported.id)
        else:
            key = (item.scope, normalized_hash(item.text))
            if key in seen or store.parts.ledger.find_by_hash(item.scope, key[1]) is not None:
                continue
            seen.add(key)
        fresh.append(item)
    return fresh


def _default_expiry(store: Store, change: Change) -> None:
    """A memory coming in live without an expiry gets its scope's default, as an add's would."""
    record = change.record
    if change.kind != "DELETE" and record.expires_at is None:
        record.expires_at = expiry_rules.default_expiry(store.config.default_expiry, record.scope, datetime.now(UTC))


def import_memories(
    store: Store,
    items: Iterable[dict[str, Any]],
    default: Scope,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Validate every item, then write them in batches through the store's one commit path."""
    checked = _checked(store, items, default)
    imported, deleted, planned = 0, 0, _Planned()
    with store.writing(), store.parts.vectors.deferred_maintenance():
        for start in range(0, len(checked), BATCH):
            changes = _plan_batch(store, checked[start : start + BATCH], planned)
            store.commit(changes)
            imported += len(changes)
            deleted += sum(change.kind == "DELETE" for change in changes)  # an export's deleted ones
            if progress:
                progress(min(start + BATCH, len(checked)), len(checked))
        # The last rows the commits deferred (under ``INDEX_BATCH``) are written before the fold
        # that ends the bulk write, or they would reach the index after it, unfolded: the first
        # search then wrote them (12-15 ms) and read them by a flat scan, with BM25 statistics
        # that depend on when a background pass folds them (lance-format/lance#9058).
        store.index_owed()
    result = ImportResult(imported=imported, duplicates=len(checked) - imported)
    if deleted:  # in `imported`, said apart: they come back as history, for restore, not as memories
        result["deleted"] = deleted
    if planned.known:  # ids the ledger has or had (a deleted or purged memory keeps its id): said apart
        result["known_ids"] = len(planned.known)
    return result
