"""A basic-memory notes folder (Markdown files; basic-memory's "Knowledge Format").

From basic-memory's documentation (docs.basicmemory.com, "Knowledge Format"; NOTE-FORMAT.md):
a note has YAML front matter (``title``, ``type``, ``tags``, ``permalink``; the title defaults to
the file name), then Markdown. List items shaped ``- [category] content #tag (context)`` are
observations (a ``#tag`` alone also makes one), and ``- relation_type [[Target]] (context)`` are
relations from the note's entity to Target. The ``## Observations`` / ``## Relations`` headings are
conventional; like basic-memory, the line's shape decides, anywhere outside code and quotes.

Mapping: each observation is one memory, ``"<note title>: <content>"`` (tags removed from the text),
with category, tags, context, note title, permalink, type and file in metadata. Each relation is
a memory of its own (``"<title> <relation type> <Target>"``) carrying the graph relation.
Front matter is read as flat ``key: value`` lines (lists inline ``[a, b]`` or as ``- a`` items);
nested YAML is not needed by these keys. Plain prose and inline ``[[links]]`` are not imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from memorch.importers._base import Batch, Options, add_relation, refuse, stable_id
from memorch.maintenance._files import files, read_text

_ITEM = re.compile(r"^\s*[-*+]\s+(.+?)\s*$")
_CATEGORY = re.compile(r"^\[([^\[\]()]+)\]\s+(.+)$")
_CLOCK = re.compile(r"^\d{1,3}:\d{2}(:\d{2})?([.,]\d{1,3})?$")  # transcript times are not categories
_RELATION = re.compile(r"^(\"[^\"]+\"|'[^']+'|[^\s\[\]\"']+)\s+\[\[([^\[\]]+)\]\]\s*(?:\((.*)\))?$")
_TAG = re.compile(r"(?<!\S)#([\w/-]+)")


def front_matter(lines: list[str]) -> tuple[dict[str, Any], int]:
    """Flat front matter and the index of the first body line."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    fields: dict[str, Any] = {}
    key = None
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return fields, index + 1
        if key and line.lstrip().startswith("- "):
            fields[key] = [*(fields.get(key) or []), _scalar(line.lstrip()[2:])]
        elif ":" in line and not line.startswith((" ", "\t")):
            key, value = (part.strip() for part in line.split(":", 1))
            if value.startswith("[") and value.endswith("]"):
                fields[key] = [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
            else:
                fields[key] = _scalar(value) if value else None
    return {}, 0  # no closing fence: not front matter


def _scalar(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def observation(content: str) -> dict[str, Any] | None:
    """basic-memory's observation shape, or None for a plain list item."""
    if content.startswith(("[ ]", "[x]", "[X]", "[-]")) or re.match(r"^\[\[.*\]\]$|^\[.*?\]\(.*?\)$", content):
        return None
    category = None
    match = _CATEGORY.match(content)
    if match and not _CLOCK.match(match.group(1).strip()):
        category, content = match.group(1).strip(), match.group(2).strip()
    tags = _TAG.findall(content)
    if category is None and not tags:
        return None
    context = None
    if content.endswith(")") and "(" in content:
        start = content.rfind("(")
        context, content = content[start + 1 : -1].strip() or None, content[:start].strip()
    tags = _TAG.findall(content)
    text = " ".join(_TAG.sub("", content).split()) or content
    return {"category": category, "text": text, "tags": tags, "context": context}


def read(path: Path, options: Options) -> Batch:
    batch = Batch("basic-memory")
    scope = options.scope()
    notes = []
    for file in files(path, (".md", ".markdown")):
        lines = read_text(file).split("\n")
        meta, body = front_matter(lines)
        name = file.relative_to(path) if path.is_dir() else Path(file.name)
        title = str(meta.get("title") or file.stem)
        permalink = str(meta.get("permalink") or re.sub(r"[^\w/]+", "-", str(name.with_suffix(""))).lower())
        notes.append((file, lines, body, title, permalink, meta.get("type") or "note", str(name)))
    types = {title: kind for _, _, _, title, _, kind, _ in notes}
    for file, lines, body, title, permalink, kind, name in notes:
        note = {"imported_from": batch.source, "note": title, "permalink": permalink, "entity_type": kind, "file": name}
        fenced = False
        for number, line in enumerate(lines[body:], start=body + 1):
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            item = _ITEM.match(line)
            if fenced or item is None:
                continue
            where = f"{file} line {number}"
            relation = _RELATION.match(item.group(1))
            if relation:
                label, target = relation.group(1).strip("\"'"), relation.group(2).split("|")[0].strip()
                context = {"context": relation.group(3).strip()} if relation.group(3) else {}
                meta = {k: note[k] for k in ("note", "permalink", "file")} | context
                add_relation(batch, where, scope, (title, label, target), (kind, types.get(target)), meta)
                continue
            found = observation(item.group(1))
            if found is None:
                continue
            extra = {k: v for k, v in found.items() if k != "text" and v}
            batch.record(
                where,
                "observation",
                memory_id=stable_id(batch.source, *scope.values(), permalink, found["category"], found["text"]),
                text=f"{title}: {found['text']}",
                scope=scope,
                metadata={**note, **extra},
            )
    if not batch.items:  # Markdown that is no basic-memory note: say so, not "imported 0"
        raise refuse(
            str(path),
            "holds no basic-memory observation ('- [category] text') or relation ('- relates_to [[Note]]')",
            "point at a basic-memory notes folder, or import plain text or Markdown with --from text",
            code="NOT_BASIC_MEMORY",
        )
    return batch
