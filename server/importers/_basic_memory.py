"""A basic-memory notes folder (Markdown files; basic-memory's "Knowledge Format").

From basic-memory's documentation (docs.basicmemory.com, "Knowledge Format"; NOTE-FORMAT.md) and
its parser (checked against basic-memory 0.24's ``EntityParser`` on notes its own tools wrote): a
note has YAML front matter (``title``, ``type``, ``tags``, ``permalink``; the title defaults to
the file name), then Markdown. List items shaped ``- [category] content #tag (context)`` are
observations (a ``#tag`` alone also makes one), and ``- relation_type [[Target]] (context)`` are
relations from the note's entity to Target. A ``[[link]]`` anywhere else (prose, an observation)
is a ``links_to`` relation. The ``## Observations`` / ``## Relations`` headings are conventional;
like basic-memory, the line's shape decides, anywhere outside code.

Mapping: each observation is one memory, ``"<note title>: <content>"`` (its ``#tags`` stay in the
text, as basic-memory keeps them), with category, tags, context, note title, permalink, type and
file in metadata, and the front matter's other fields (``front_matter``). Each relation is a
memory of its own (``"<title> <relation type> <Target>"``) carrying the graph relation; a
relation type of several words (``- works at [[Acme]]``, as basic-memory's ``import
memory-json`` writes them) becomes ``works_at`` where basic-memory itself reads a bare link. The
front matter's ``created`` / ``modified`` date the memories. Prose is not imported (a note with
nothing else is counted as skipped).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from memorch.errors import ValidationError
from memorch.importers._base import Batch, Options, add_relation, refuse, stable_id, timestamp
from memorch.maintenance._files import files, read_text

_ITEM = re.compile(r"^\s*[-*+]\s+(.+?)\s*$")
_CATEGORY = re.compile(r"^\[([^\[\]()]+)\]\s+(.+)$")
_CLOCK = re.compile(r"^\d{1,3}:\d{2}(:\d{2})?([.,]\d{1,3})?$")  # transcript times are not categories
# A relation's type: one word (a letter first: not "10:30", "**Owner**:" or a URL), a quoted
# phrase, or up to four lowercase words ("works at", as basic-memory's ``import memory-json``
# writes them). "Meeting with [[Ana]]" is prose with a link.
_RELATION = re.compile(
    r"^(\"[^\"]+\"|'[^']+'|[^\W\d_][\w-]*|[a-z][a-z0-9_-]*(?:\s+[a-z][a-z0-9_-]*){1,3})"
    r"\s+\[\[([^\[\]]+)\]\]\s*(?:\((.*)\))?$"
)
_LINK = re.compile(r"\[\[([^\[\]]+)\]\]")
_TAG = re.compile(r"(?<!\S)#([\w/-]+)")
# Front matter keys that become the note's own metadata; the others are kept in ``front_matter``.
_OWN_KEYS = ("title", "type", "permalink", "tags", "created", "modified")


def front_matter_end(lines: list[str]) -> int:
    """The index of the first line after the front matter (0 without one)."""
    if not lines or lines[0].strip() != "---":
        return 0
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() in ("---", "...")), None)
    return 0 if end is None else end + 1  # no closing fence: not front matter


def front_matter(lines: list[str]) -> tuple[dict[str, Any], int]:
    """The note's front matter and the index of the first body line. YAML, each value read as
    written (``title: yes`` is "yes", a date a string): front matter YAML cannot read (``title:
    Meeting: notes``) or that uses aliases is read as plain ``key: value`` lines, as memorch read
    all front matter before; a block that holds no mapping (a note opening with a ``---`` rule)
    is body."""
    body = front_matter_end(lines)
    if body == 0:
        return {}, 0
    block = lines[1 : body - 1]
    try:
        fields = _yaml("\n".join(block))
    except yaml.YAMLError:
        fields = _flat(block)
    if fields is None:
        return {}, body
    if not isinstance(fields, dict):
        return {}, 0
    return {str(k): v for k, v in fields.items()}, body


def _yaml(text: str) -> Any:
    # An alias (*name) repeats a value without writing it out: a few nested ones expand to
    # gigabytes once the fields are copied into metadata. A note's front matter needs none.
    if any(isinstance(token, yaml.AliasToken) for token in yaml.scan(text, Loader=yaml.BaseLoader)):
        raise yaml.YAMLError("aliases")
    return yaml.load(text, Loader=yaml.BaseLoader)  # BaseLoader builds only str, list and dict


def _flat(block: list[str]) -> dict[str, Any]:
    """``key: value`` lines (lists inline ``[a, b]`` or as ``- a`` items)."""
    fields: dict[str, Any] = {}
    key = None
    for line in block:
        if key and line.lstrip().startswith("- "):
            fields[key] = [*(fields.get(key) or []), _scalar(line.lstrip()[2:])]
        elif ":" in line and not line.startswith((" ", "\t")):
            key, value = (part.strip() for part in line.split(":", 1))
            if value.startswith("[") and value.endswith("]"):
                fields[key] = [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
            else:
                fields[key] = _scalar(value) if value else None
    return fields


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
    if category is None and not _TAG.findall(content):
        return None
    context = None
    if content.endswith(")") and "(" in content:
        start = content.rfind("(")
        context, content = content[start + 1 : -1].strip() or None, content[:start].strip()
    # The id comes from the text without its tags, as memorch read it before it kept them.
    keyed = " ".join(_TAG.sub("", content).split()) or content
    return {"category": category, "text": content, "tags": _TAG.findall(content), "context": context, "key": keyed}


def target(link: str) -> str:
    return link.split("|")[0].strip()


def relation_label(words: str) -> str:
    """A quoted type as written (memorch kept it so before: the relation's id stays), plain words
    joined by ``_``."""
    return words[1:-1] if words[:1] in ('"', "'") else "_".join(words.split())


def is_note_line(line: str) -> bool:
    """Whether ``line`` is an observation or a relation as this reader takes them."""
    item = _ITEM.match(line)
    return item is not None and (_RELATION.match(item.group(1)) is not None or observation(item.group(1)) is not None)


def when(value: Any, file: Path, key: str) -> str | None:
    """A front matter date in UTC, or None when it is none (``May 1, 2024``: kept as written)."""
    try:
        return timestamp(value, str(file), key) if isinstance(value, str) else None
    except ValidationError:
        return None


def tags(value: Any) -> list[str]:
    """``[a, b]``, ``- a`` items or ``"a, b"``, as basic-memory reads them."""
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(t).strip().lstrip("#") for t in items if str(t).strip()]


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
        notes.append((file, lines, body, meta, title, permalink, str(meta.get("type") or "note"), str(name)))
    types = {title: kind for _, _, _, _, title, _, kind, _ in notes}
    for file, lines, body, meta, title, permalink, kind, name in notes:
        with batch.item():
            note: dict[str, Any] = {
                "imported_from": batch.source,
                "note": title,
                "permalink": permalink,
                "entity_type": kind,
                "file": name,
            }
            if meta.get("tags"):
                note["note_tags"] = tags(meta["tags"])
            columns = {"created": "created_at", "modified": "updated_at"}
            dates = {column: when(meta.get(key), file, key) for key, column in columns.items()}
            unread = {key for key, column in columns.items() if meta.get(key) is not None and dates[column] is None}
            extra = {k: v for k, v in meta.items() if k not in _OWN_KEYS or k in unread}
            if extra:
                note["front_matter"] = extra
            before = len(batch.items)
            _read_note(batch, scope, file, lines[body:], body, (title, permalink, kind), note, types, dates)
            if len(batch.items) == before:
                batch.skipped["prose-only note"] += 1
    if not batch.items and not batch.problems:  # Markdown that is no basic-memory note: say so, not "imported 0"
        raise refuse(
            str(path),
            "holds no basic-memory observation ('- [category] text') or relation ('- relates_to [[Note]]')",
            "point at a basic-memory notes folder, or import plain text or Markdown with --from text",
            code="NOT_BASIC_MEMORY",
        )
    return batch


def _read_note(
    batch: Batch,
    scope: dict[str, str | None],
    file: Path,
    body: list[str],
    offset: int,
    entity: tuple[str, str, str],
    note: dict[str, Any],
    types: dict[str, str],
    dates: dict[str, str | None],
) -> None:
    """One note's observations, relations and links into ``batch``."""
    title, permalink, kind = entity
    where_of = {k: note[k] for k in ("note", "permalink", "file")}
    related: set[str] = set()
    links: dict[str, str] = {}  # inline [[links]]: target -> where first seen
    fenced = False
    for number, line in enumerate(body, start=offset + 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced:
            continue
        where = f"{file} line {number}"
        item = _ITEM.match(line)
        relation = _RELATION.match(item.group(1)) if item else None
        if relation and target(relation.group(2)):
            label, to = relation_label(relation.group(1)), target(relation.group(2))
            context = {"context": relation.group(3).strip()} if relation.group(3) else {}
            add_relation(batch, where, scope, (title, label, to), (kind, types.get(to)), where_of | context, **dates)
            related.add(to)
            continue
        for link in _LINK.findall(line):
            if target(link):
                links.setdefault(target(link), where)
        found = observation(item.group(1)) if item else None
        if found is None:
            continue
        facts = {k: v for k, v in found.items() if k not in ("text", "key") and v}
        batch.record(
            where,
            "observation",
            memory_id=stable_id(batch.source, *scope.values(), permalink, found["category"], found["key"]),
            text=f"{title}: {found['text']}",
            scope=scope,
            metadata={**note, **facts},
            **dates,
        )
    for to, where in links.items():
        if to not in related and to != title:
            add_relation(batch, where, scope, (title, "links_to", to), (kind, types.get(to)), where_of, **dates)
