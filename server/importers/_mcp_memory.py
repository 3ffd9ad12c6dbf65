"""The reference MCP memory server's knowledge graph (``@modelcontextprotocol/server-memory``).

Its file (``memory.jsonl``, ``MEMORY_FILE_PATH``; older installs named it ``memory.json`` with
the same content) holds one JSON object per line, as its ``saveGraph`` writes them
(``src/memory/index.ts`` in modelcontextprotocol/servers):

    {"type": "entity", "name": "...", "entityType": "...", "observations": ["...", ...]}
    {"type": "relation", "from": "...", "to": "...", "relationType": "..."}

A saved ``read_graph`` answer (``{"entities": [...], "relations": [...]}``) is read too, also as
the tool result that wraps it (``{"content": [{"type": "text", "text": "<that JSON>"}]}``, what a
client shows). An empty observation (the server accepts ``""``) says nothing: it is skipped and
counted.

Mapping: each observation is one memory, ``"<entity>: <observation>"`` (an observation is written
about its entity and rarely names it: "Speaks fluent Spanish"), with ``entity`` and ``entity_type``
in metadata. Each relation is a memory of its own, ``"<from> <relation type> <to>"``, that carries
the graph relation (typed with the entities' types). Not the entity's first observation: memorch
deletes a memory's relations with it, and a relation is a fact of its own; an entity with no
observations can still have relations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memorch.importers._base import Batch, Options, add_relation, refuse, stable_id, text_field, timestamp
from memorch.maintenance._files import json_lines, read_text

HINT = 'lines like {"type": "entity", "name": "...", "entityType": "...", "observations": ["..."]}'
REL_HINT = '{"type": "relation", "from": "...", "to": "...", "relationType": "..."}'


def read(path: Path, options: Options) -> Batch:
    if path.is_dir():
        found = [p for p in (path / "memory.jsonl", path / "memory.json") if p.exists()]
        if not found:
            raise refuse(str(path), "has no memory.jsonl", "point at the server's MEMORY_FILE_PATH file")
        path = found[0]
    text = read_text(path)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    whole = unwrapped(whole)
    if isinstance(whole, dict) and ("entities" in whole or "relations" in whole):  # a read_graph answer
        entities, relations = whole.get("entities") or [], whole.get("relations") or []
        if not isinstance(entities, list) or not isinstance(relations, list):
            raise refuse(str(path), "entities and relations must be lists", HINT)
        rows = [
            (f"{path} entity {n}", {"type": "entity", **e}) for n, e in enumerate(entities, 1) if isinstance(e, dict)
        ]
        rows += [
            (f"{path} relation {n}", {"type": "relation", **r})
            for n, r in enumerate(relations, 1)
            if isinstance(r, dict)
        ]
        if len(rows) != len(entities) + len(relations):
            raise refuse(str(path), "every entity and relation must be a JSON object", HINT)
    else:
        rows = [(f"{path} line {n}", value) for n, value in json_lines(text, str(path), HINT)]
    return convert(rows, options)


def unwrapped(whole: Any) -> Any:
    """A read_graph tool result saved whole: its structured content, or its text parsed."""
    if not isinstance(whole, dict) or not isinstance(whole.get("content"), list):
        return whole
    if isinstance(whole.get("structuredContent"), dict):
        return whole["structuredContent"]
    texts = [c.get("text") for c in whole["content"] if isinstance(c, dict) and c.get("type") == "text"]
    try:
        return json.loads(texts[0]) if texts and isinstance(texts[0], str) else whole
    except json.JSONDecodeError:
        return whole


def _observation(value: Any, where: str) -> tuple[str, str | None]:
    """An observation's text and date (forks store ``{"content", "timestamp"}`` objects)."""
    if isinstance(value, dict):
        return text_field(value.get("content"), where, "observation content", HINT), timestamp(
            value.get("timestamp") or value.get("createdAt"), where, "timestamp"
        )
    return text_field(value, where, "observation", HINT), None


def convert(rows: list[tuple[str, dict[str, Any]]], options: Options) -> Batch:
    batch = Batch("mcp-memory")
    scope = options.scope()
    types: dict[str, str | None] = {}
    relations = []
    for where, row in rows:
        with batch.item():
            kind = row.get("type")
            if kind == "relation":
                triple = tuple(
                    text_field(row.get(k), where, f"'{k}'", REL_HINT) for k in ("from", "relationType", "to")
                )
                relations.append((where, triple))
                continue
            if kind != "entity":
                raise refuse(where, f"type must be 'entity' or 'relation', not {kind!r}", HINT)
            name = text_field(row.get("name"), where, "'name'", HINT)
            entity_type = row.get("entityType") if isinstance(row.get("entityType"), str) else None
            types[name] = entity_type
            observations = row.get("observations") or []
            if not isinstance(observations, list):
                raise refuse(where, "'observations' must be a list of strings", HINT)
            for number, value in enumerate(observations, 1):
                if isinstance(value, str) and not value.strip():
                    batch.skipped["empty observation"] += 1
                    continue
                with batch.item():  # every bad observation of an entity named, not its first
                    text, created = _observation(value, f"{where} observation {number}")
                    batch.record(
                        f"{where} observation {number}",
                        "observation",
                        memory_id=stable_id(batch.source, *scope.values(), "observation", name, text),
                        text=f"{name}: {text}",
                        scope=scope,
                        metadata={"imported_from": batch.source, "entity": name, "entity_type": entity_type},
                        created_at=created,
                    )
    for where, (source, relationship, destination) in relations:
        types_of = (types.get(source), types.get(destination))
        add_relation(batch, where, scope, (source, relationship, destination), types_of)
    return batch
