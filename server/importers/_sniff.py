"""Which server wrote a file: so ``memorch import FILE`` without ``--from`` can name the right one.

Only consulted once reading a file has failed: without ``--from`` (memorch's own JSONL) to name
the format in the error, with another ``--from`` to add it to an error about the file's shape.
The shapes are the ones the importers read (basic-memory's through its own reader); a file that
matches none gets no guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import memorch.importers._basic_memory as basic_memory
from memorch.importers._mcp_memory_service import looks_like_service_db

HEAD_BYTES = 64 * 1024


def looks_like(path: Path) -> str | None:
    """The ``--from`` format ``path`` most likely is, or None (also when it cannot be read: this
    only adds a hint to an error already on its way)."""
    try:
        return _guess(path)
    except (OSError, RecursionError):  # unreadable files or folders; JSON nested past the stack
        return None


def _guess(path: Path) -> str | None:
    if path.is_dir():
        return _folder(path)
    suffix = path.suffix.lower()
    if suffix in (".zip", ".gz"):
        return "openmemory"
    if suffix in (".db", ".sqlite", ".sqlite3"):
        return "mcp-memory-service" if looks_like_service_db(path) else None
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES).decode("utf-8-sig", errors="replace")
    if suffix in (".md", ".markdown"):
        return "basic-memory" if _holds_notes(head) else "text"
    found = _json_head(head)
    if found is not None:
        return shape_of(found)
    return "text" if suffix in (".txt", ".text") else None


def _folder(path: Path) -> str | None:
    if (path / "memory.jsonl").exists() or (path / "memory.json").exists():
        return "mcp-memory"
    if (path / "memories.json").exists() or (path / "memories.jsonl.gz").exists():
        return "openmemory"
    if (path / "sqlite_vec.db").is_file():
        return "mcp-memory-service"
    notes = [p for p in path.rglob("*") if p.suffix.lower() in (".md", ".markdown") and p.is_file()][:50]
    if any(_holds_notes(_head(p)) for p in notes):
        return "basic-memory"
    return "text" if notes or any(path.rglob("*.txt")) else None


def _holds_notes(text: str) -> bool:
    """basic-memory's shapes, as its reader takes them, on a line of ``text``."""
    return any(basic_memory.is_note_line(line) for line in text.splitlines())


def _head(path: Path) -> str:
    with path.open("rb") as file:
        return file.read(HEAD_BYTES).decode("utf-8", errors="replace")


def _json_head(head: str) -> Any:
    """The whole head as JSON, else its first line as JSON (JSONL), else None."""
    for candidate in (head, head.lstrip().split("\n", 1)[0]):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def shape_of(value: Any) -> str | None:
    """The ``--from`` format of a parsed JSON value, or None."""
    if isinstance(value, dict) and isinstance(value.get("content"), list):  # a saved MCP tool result
        return "mcp-memory" if '"entities"' in json.dumps(value) else None
    if isinstance(value, dict):
        if value.get("type") in ("entity", "relation") or "entities" in value:
            return "mcp-memory"
        if isinstance(value.get("items"), list) or ("memories" in value and "user" in value):
            return "openmemory"
        if isinstance(value.get("results"), list) or isinstance(value.get("memories"), list):
            return "mem0"
        if "memory" in value and "history" not in value and ("hash" in value or "id" in value):
            return "mem0"
        if "content" in value and "state" in value:
            return "openmemory"
        return None
    if isinstance(value, list) and value and isinstance(value[0], dict) and "memory" in value[0]:
        return "mem0"
    return None
