"""``memorch export`` and the lines it writes, which ``memorch import`` reads back.

One JSON object per line and per memory id: a live memory with its text, scope, metadata,
timestamps, relations and every history event; a deleted memory as ``"deleted": true`` with its
history. Vectors are not exported: they belong to the embedder, and the importing side embeds
with its own. Importing the file into an empty store gives back the same ids, texts, metadata,
relations and history (``tests/test_transfer.py``); importing it twice changes nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticError

import memorch.domain._validation as validation
from memorch.domain._messages import normalized_hash
from memorch.errors import StorageError, ValidationError
from memorch.maintenance._files import json_lines, read_text
from memorch.results import ExportResult
from memorch.storage.base import Change, HistoryEvent, MemoryRecord, Scope
from memorch.storage.expiry import stamp

if TYPE_CHECKING:
    import numpy as np

    from memorch.engine._store import Store


# Both raise ValueError, which pydantic reports with the field's path.
def _timestamp(value: str) -> str:
    datetime.fromisoformat(value)
    return value


def _uuid(value: str) -> str:
    return str(uuid.UUID(value))


class ExportedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    event: Literal["ADD", "UPDATE", "DELETE", "RESTORE"]
    old_memory: str | None = None
    new_memory: str | None = None
    created_at: str
    updated_at: str | None = None
    is_deleted: bool = False
    actor_id: str | None = None
    role: str | None = None
    reason: str | None = None
    # A DELETE's record of the memory as it was deleted, which restore gives back (exports made
    # before they were kept have neither).
    metadata: dict[str, Any] | None = None
    expires_at: str | None = None

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return _uuid(value)

    @field_validator("created_at")
    @classmethod
    def _time(cls, value: str) -> str:
        return _timestamp(value)


class ExportedRelation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str = Field(min_length=1)
    source_type: str | None = None
    relationship: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    destination_type: str | None = None


class ExportedMemory(BaseModel):
    """One line of an export."""

    model_config = ConfigDict(extra="ignore")

    id: str
    deleted: bool = False
    memory: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    project: str | None = None  # the layer (None: global); exports made before layers have none
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    expires_at: str | None = None  # an expiring memory's (exports made before expiry have none)
    relations: list[ExportedRelation] = Field(default_factory=list)
    history: list[ExportedEvent] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return _uuid(value)

    @field_validator("expires_at")
    @classmethod
    def _expiry(cls, value: str | None) -> str | None:
        """Written back as the ledger writes times (UTC, microseconds), so reads compare it right."""
        return None if value is None else stamp(datetime.fromisoformat(value.replace("Z", "+00:00")))

    def change(self, scope: Scope, text: str | None, vector: np.ndarray, metadata: dict[str, Any]) -> Change:
        """The ledger change that restores this memory as it was."""
        events = tuple(HistoryEvent(memory_id=self.id, **e.model_dump()) for e in self.history)
        last = self.history[-1]
        record = MemoryRecord(
            id=self.id,
            memory=text or last.old_memory or "",
            hash=normalized_hash(text) if text else "",
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            run_id=scope.run_id,
            metadata=metadata,
            created_at=self.created_at or self.history[0].created_at,
            updated_at=self.updated_at or last.updated_at or last.created_at,
            embedding=vector,
            project=self.project,
            expires_at=None if self.deleted else self.expires_at,
        )
        relations = tuple(r.model_dump() for r in self.relations)
        return Change("DELETE" if self.deleted else "ADD", record, relations=relations, history=events)


def parse_exported(item: dict[str, Any], max_text_bytes: int) -> tuple[ExportedMemory, str | None]:
    """An export line, checked; the text is None for a deleted memory."""
    try:
        exported = ExportedMemory.model_validate(item)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"not a valid exported memory: {where}: {first['msg']}",
            error_code="INVALID_ITEM",
            suggestion='import files written by `memorch export`, or lines like {"memory": "..."}',
        ) from None
    text = None if exported.deleted else validation.text(exported.memory, max_text_bytes, "memory")
    return exported, text


def export_memories(store: Store, path: Path, scope: Scope) -> ExportResult:
    """Write the scope's memories (every memory when the scope is empty) to ``path`` as JSONL.
    The file is written next to its destination and renamed, so a failed export leaves no
    half-written file behind. It reads the ledger only (the source of truth)."""
    counts = ExportResult(memories=0, deleted=0, history_events=0)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            for page in store.parts.ledger.export_pages(scope):
                for row in page:
                    counts["deleted" if row.get("deleted") else "memories"] += 1
                    counts["history_events"] += len(row["history"])
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        # The reason in the user's terms: the OS names the temporary ".partial" file it failed on.
        reason = exc.strerror or str(exc)
        if not path.parent.is_dir():
            reason = f"the folder {path.parent} does not exist"
        raise StorageError(
            f"cannot write the export to {path}: {reason}",
            error_code="EXPORT_FAILED",
            details={"path": str(path)},
            suggestion="choose a writable path with free space (in a folder that exists)",
        ) from exc
    return counts


def read_export(path: Path) -> list[dict[str, Any]]:
    """The lines of a file ``export_memories`` wrote, for ``import_memories`` (which checks each
    one); an unreadable file, or a line that is no JSON object, is refused with its name."""
    suggestion = "pass a file memorch export wrote; another server's data goes through memorch import --from"
    text = read_text(path, suggestion=suggestion)
    return [item for _, item in json_lines(text, str(path), suggestion, code="INVALID_JSONL")]
