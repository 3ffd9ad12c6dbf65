"""OpenMemory (mem0's self-hosted server) exports.

Read from OpenMemory's backup code (``openmemory/api/app/routers/backup.py``, ``POST
/api/v1/backup/export``): a zip holding

- ``memories.json``: ``{"user": {"user_id", ...}, "apps": [{"id", "name", ...}], "categories":
  [{"id", "name", ...}], "memories": [{"id", "user_id", "app_id", "content", "metadata", "state",
  "created_at", "updated_at", "archived_at", "deleted_at", "category_ids"}], "memory_categories",
  "status_history", "access_controls", "export_meta"}``;
- ``memories.jsonl.gz``: one ``{"id", "content", "metadata", "created_at", "updated_at", "state",
  "app", "categories"}`` per line.

Also accepted: either file on its own (or an unzipped folder), and a saved page of its list API
(``{"items": [{"id", "content", "created_at" (epoch seconds), "state", "app_name", "categories",
"metadata_", "user_id"?}], "total", ...}``, ``openmemory/api/app/schemas.py``).

Ids are UUIDs and stay the memories' ids. The user is the export's ``user.user_id`` (the name the
MCP client used, not OpenMemory's internal row id). App, category names and a non-active state
(paused, archived) go into metadata; memories in state ``deleted`` are skipped.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Any

import memorch.importers._mem0 as mem0
from memorch.importers._base import Batch, Options, refuse, text_field
from memorch.maintenance._files import json_lines, parse_json, read_text

HINT = "give OpenMemory's export zip (memories.json inside), memories.json, or memories.jsonl.gz"


def read(path: Path, options: Options) -> Batch:
    if path.is_dir():
        found = [p for p in (path / "memories.json", path / "memories.jsonl.gz") if p.exists()]
        if not found:
            raise refuse(str(path), "has no memories.json or memories.jsonl.gz", HINT, "UNKNOWN_IMPORT_FORMAT")
        return _from_file(found[0], found[0].read_bytes(), options)
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = {Path(n).name: n for n in archive.namelist() if not n.endswith("/")}
                member = next((names[n] for n in ("memories.json", "memories.jsonl.gz") if n in names), None)
                if member is None:
                    raise refuse(
                        str(path), "holds no memories.json or memories.jsonl.gz", HINT, "UNKNOWN_IMPORT_FORMAT"
                    )
                return _from_file(path / member, archive.read(member), options)
        except (zipfile.BadZipFile, OSError) as exc:
            raise refuse(str(path), f"is not a readable zip file ({exc})", HINT, "UNKNOWN_IMPORT_FORMAT") from exc
    return _from_file(path, None, options)


def _from_file(path: Path, data: bytes | None, options: Options) -> Batch:
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(path.read_bytes() if data is None else data)
        except (OSError, EOFError) as exc:
            raise refuse(str(path), f"is not a readable gzip file ({exc})", HINT, "UNKNOWN_IMPORT_FORMAT") from exc
    text = read_text(path, data)
    if ".jsonl" in path.name.lower():
        rows = [(f"{path} line {n}", value) for n, value in json_lines(text, str(path), HINT)]
        return _convert(rows, {}, options, str(path))
    data = parse_json(text, str(path), HINT)
    if isinstance(data, dict) and isinstance(data.get("memories"), list):  # backup's memories.json
        user = data.get("user") if isinstance(data.get("user"), dict) else {}
        apps = {a.get("id"): a.get("name") for a in data.get("apps") or [] if isinstance(a, dict)}
        categories = {c.get("id"): c.get("name") for c in data.get("categories") or [] if isinstance(c, dict)}
        rows = []
        for n, m in enumerate(data["memories"], 1):
            if isinstance(m, dict):
                m = {**m, "app": apps.get(m.get("app_id")), "user_id": user.get("user_id")}
                m["categories"] = [categories[c] for c in m.get("category_ids") or [] if c in categories]
            rows.append((f"{path} memories item {n}", m))
        return _convert(rows, {}, options, str(path))
    if isinstance(data, dict) and isinstance(data.get("items"), list):  # a page of GET /api/v1/memories/
        rows = [(f"{path} items item {n}", m) for n, m in enumerate(data["items"], 1)]
        return _convert(rows, {"metadata": "metadata_", "app": "app_name"}, options, str(path))
    raise refuse(str(path), "is not an OpenMemory export", HINT, "UNKNOWN_IMPORT_FORMAT")


def _convert(rows: list[tuple[str, Any]], renamed: dict[str, str], options: Options, name: str) -> Batch:
    """OpenMemory rows in mem0's memory shape, then the mem0 conversion (one set of rules)."""
    shaped, skipped = [], 0
    unread = Batch("openmemory")  # the rows that cannot be read, all named in one error
    for where, row in rows:
        with unread.item():
            if not isinstance(row, dict):
                raise refuse(where, "is not a JSON object", HINT)
            get = lambda key, row=row: row.get(renamed.get(key, key))  # noqa: E731 - a field under either name
            state = get("state") or "active"
            if state == "deleted":
                skipped += 1
                continue
            metadata = get("metadata") or {}
            if not isinstance(metadata, dict):
                raise refuse(where, "metadata is not a JSON object", HINT)
            extra = {"app": get("app"), "categories": get("categories") or None}
            if state != "active":
                extra["state"] = state
            extra = {k: v for k, v in extra.items() if v and k not in metadata}
            memory = {
                "id": row.get("id"),
                "memory": text_field(row.get("content"), where, "'content'", HINT),
                "metadata": {**metadata, **extra},
                "user_id": row.get("user_id"),
                "created_at": row.get("created_at"),
                "updated_at": row.get("updated_at"),
            }
            shaped.append((where, memory))
    batch = mem0.convert(shaped, [], options, "openmemory", name)
    batch.problems[:0] = unread.problems
    batch.skipped["deleted memory"] += skipped
    return batch
