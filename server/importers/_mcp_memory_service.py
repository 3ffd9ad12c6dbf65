"""mcp-memory-service (doobidoo/mcp-memory-service): its SQLite database (the sqlite_vec backend,
``sqlite_vec.db``, or the local file the hybrid backend keeps).

Read from its storage code (``storage/sqlite_vec.py``), and checked on a database its own
storage class wrote (mcp-memory-service 12.4.0 with sqlite-vec, embeddings stubbed): a table
``memories`` with ``content_hash`` (unique), ``content``, ``tags`` (comma-separated, "untagged"
for none; some versions wrote a JSON list), ``memory_type``, ``metadata`` (JSON text),
``created_at`` / ``updated_at`` (epoch seconds), and ``deleted_at`` (its delete is a soft one:
such rows are skipped and counted). The vectors live in a ``vec0`` virtual table that is not
read: memorch embeds the texts with its own model. The file is opened read-only, so the service
may keep running.

Mapping: each row is one memory, its text the content; tags, memory type, content hash and the
service's own metadata go into metadata; the id is derived from the content hash and the scope,
so importing the database again adds only what is new.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from memorch.importers._base import Batch, Options, refuse, stable_id, timestamp

HINT = "give the service's SQLite database (sqlite_vec.db; MCP_MEMORY_SQLITE_PATH says where it is)"
NAMES = ("sqlite_vec.db", "memory.db")
COLUMNS = ("content_hash", "content", "tags", "memory_type", "metadata", "created_at", "updated_at")


def read(path: Path, options: Options) -> Batch:
    if path.is_dir():
        found = [path / name for name in NAMES if (path / name).is_file()]
        if not found:
            raise refuse(str(path), f"has no {' or '.join(NAMES)}", HINT, "UNKNOWN_IMPORT_FORMAT")
        path = found[0]
    batch = Batch("mcp-memory-service")
    scope = options.scope()
    for number, row in enumerate(_rows(path), 1):
        where = f"{path} row {number}"
        with batch.item():
            if row.get("deleted_at") is not None:
                batch.skipped["deleted memory"] += 1
                continue
            content, key = row.get("content"), row.get("content_hash")
            if not isinstance(content, str) or not content.strip():
                batch.skipped["empty memory"] += 1
                continue
            metadata = {"imported_from": batch.source, **_their_metadata(row.get("metadata"))}
            metadata.update(
                {k: v for k, v in (("tags", _tags(row.get("tags"))), ("memory_type", row.get("memory_type"))) if v}
            )
            metadata["content_hash"] = key
            batch.record(
                where,
                "memory",
                memory_id=stable_id(batch.source, *scope.values(), str(key or content)),
                text=content.strip(),
                scope=scope,
                metadata=metadata,
                created_at=timestamp(row.get("created_at"), where, "created_at"),
                updated_at=timestamp(row.get("updated_at"), where, "updated_at"),
            )
    return batch


def looks_like_service_db(path: Path) -> bool:
    """A SQLite file whose ``memories`` table has the service's ``content_hash``."""
    try:
        with closing(_open(path)) as db:
            return "content_hash" in _columns(db)
    except sqlite3.DatabaseError:
        return False


def _rows(path: Path) -> list[dict[str, Any]]:
    """Every row of ``memories`` (the columns it has of those read), one connection."""
    try:
        db = _open(path)
        columns = _columns(db)
    except sqlite3.DatabaseError as exc:  # not a database, or encrypted, or damaged
        raise refuse(str(path), f"is not a SQLite database ({exc})", HINT, "UNKNOWN_IMPORT_FORMAT") from None
    with closing(db):
        if "content" not in columns:
            raise refuse(str(path), "has no memories table with a content column", HINT, "UNKNOWN_IMPORT_FORMAT")
        wanted = [c for c in (*COLUMNS, "deleted_at") if c in columns]
        try:
            cursor = db.execute(f"SELECT {', '.join(wanted)} FROM memories ORDER BY id")  # names from COLUMNS
            return [dict(zip(wanted, values, strict=True)) for values in cursor]
        except sqlite3.DatabaseError as exc:
            raise refuse(str(path), f"cannot be read ({exc})", HINT, "IMPORT_FILE_UNREADABLE") from None


def _columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(memories)")}


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


# The tag the service writes for a memory stored without any (12.4: "untagged").
NO_TAGS = "untagged"


def _tags(value: Any) -> list[str]:
    if not isinstance(value, str) or not value.strip() or value.strip() == NO_TAGS:
        return []
    if value.lstrip().startswith("["):
        try:
            listed = json.loads(value)
        except json.JSONDecodeError:
            listed = None
        if isinstance(listed, list):
            return [str(t).strip() for t in listed if str(t).strip()]
    return [t.strip() for t in value.split(",") if t.strip()]


def _their_metadata(value: Any) -> dict[str, Any]:
    """The service's metadata object (its text kept whole when it is not one)."""
    if not isinstance(value, str) or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {"source_metadata": value}
    return {k: v for k, v in parsed.items() if not k.startswith("_memorch")} if isinstance(parsed, dict) else {}
