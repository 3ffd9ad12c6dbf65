"""Bulk import: many memories in batches (one embedding call, one ledger transaction and one
index append per batch). Duplicates are judged by exact normalized text within a scope; the
per-memory near-duplicate search of ``add`` is skipped, which is what makes it fast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from memorch.storage.base import Change, Scope

from . import validation
from .errors import ValidationError
from .messages import normalized_hash
from .records import new_record, utc_now

if TYPE_CHECKING:
    from .orchestrator import AsyncMemory

BATCH = 512


def _checked(memory: AsyncMemory, items: Iterable[dict[str, Any]], default: Scope) -> list[tuple[str, Scope, dict]]:
    """Validate every item before anything is written: a bad line changes nothing."""
    out = []
    for number, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise ValidationError("each item must be an object", error_code="INVALID_ITEM")
            text = validation.text(item.get("memory", item.get("text")), memory.config.max_text_bytes, "memory")
            scope = memory._scope(
                item.get("user_id", default.user_id),
                item.get("agent_id", default.agent_id),
                item.get("run_id", default.run_id),
                required=True,
            )
            out.append((text, scope, validation.metadata(item.get("metadata"))))
        except ValidationError as exc:
            exc.details["item"] = number
            exc.message = f"item {number}: {exc.message}"
            raise
    return out


def _plan_batch(memory: AsyncMemory, batch: list[tuple[str, Scope, dict]]) -> list[Change]:
    components = memory.components
    vectors = components.embedder.embed([text for text, _, _ in batch])
    seen: set[tuple[Scope, str]] = set()
    changes, now = [], utc_now()
    for (text, scope, metadata), vector in zip(batch, vectors, strict=True):
        key = (scope, normalized_hash(text))
        if key in seen or components.ledger.find_by_hash(scope, key[1]) is not None:
            continue
        seen.add(key)
        changes.append(Change("ADD", new_record(text, vector, scope, metadata, now)))
    return changes


async def import_memories(
    memory: AsyncMemory,
    items: Iterable[dict[str, Any]],
    default: Scope,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    checked = _checked(memory, items, default)
    imported = 0
    async with memory._write_lock:
        await memory._ready()
        for start in range(0, len(checked), BATCH):
            changes = await asyncio.to_thread(_plan_batch, memory, checked[start : start + BATCH])
            await memory._commit(changes)  # the same ledger-then-index path as every write
            imported += len(changes)
            if progress:
                progress(min(start + BATCH, len(checked)), len(checked))
    return {"imported": imported, "duplicates": len(checked) - imported}
