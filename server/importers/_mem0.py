"""mem0 exports: what ``Memory.get_all`` / ``MemoryClient.get_all`` return, saved as JSON.

Accepted shapes (from mem0's documented return values):

- ``{"results": [memory, ...], "relations"?: [...]}`` (get_all / search; the platform's paginated
  form adds ``count``, ``next``, ``previous``), or ``{"memories": [...]}``;
- a bare list of memories, or JSONL with one memory per line.

A memory is ``{"id", "memory", "hash", "metadata", "user_id", "agent_id", "run_id", "created_at",
"updated_at"}``; the platform adds ``categories``, ``app_id``, ``immutable`` and
``structured_attributes``, which are kept in metadata, and ``expiration_date``, which becomes the
memory's expiry (an expired one is imported expired: hidden, and removed like any other).
The ``hash`` is recomputed. A UUID id stays the memory's id (mem0 ids are UUID4, so references to
them keep working and a re-import is recognised by id); any other id is kept as
``metadata.source_id``. mem0's graph relations (``{"source", "relationship", "target"}``, or
``destination`` as search returns it) become one memory per relation that states it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memorch.importers._base import Batch, Options, add_relation, refuse, source_uuid, stable_id, text_field, timestamp
from memorch.maintenance._files import json_lines, parse_json, read_text

HINT = 'give mem0\'s get_all output: {"results": [{"memory": "...", "user_id": "..."}]} or a list of memories'


def read(path: Path, options: Options, source: str = "mem0") -> Batch:
    text = read_text(path)
    if path.suffix.lower() == ".jsonl":
        rows = [(f"{path} line {n}", value) for n, value in json_lines(text, str(path), HINT)]
        return convert(rows, [], options, source, str(path))
    data = parse_json(text, str(path), HINT)
    relations: list[Any] = []
    if isinstance(data, dict):
        relations = data.get("relations") or []
        data = next((data[k] for k in ("results", "memories") if k in data), None)
    if not isinstance(data, list) or not isinstance(relations, list):
        raise refuse(str(path), "is not a mem0 export", HINT, "UNKNOWN_IMPORT_FORMAT")
    rows = [(f"{path} item {n}", value) for n, value in enumerate(data, 1)]
    return convert(rows, relations, options, source, str(path))


def convert(
    rows: list[tuple[str, Any]], relations: list[Any], options: Options, source: str = "mem0", name: str = ""
) -> Batch:
    batch = Batch(source)
    scopes = set()
    for where, row in rows:
        with batch.item():
            if not isinstance(row, dict):
                raise refuse(where, "is not a JSON object", HINT)
            text = text_field(row.get("memory"), where, "'memory'", HINT)
            metadata = row.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise refuse(where, "metadata is not a JSON object", HINT)
            metadata = {**metadata, "imported_from": source}
            for key in ("categories", "app_id", "immutable", "structured_attributes"):
                if row.get(key) and key not in metadata:
                    metadata[key] = row[key]
            scope = options.scope(row, where)
            scopes.add(tuple(scope.values()))
            memory_id = source_uuid(row.get("id"))
            if memory_id is None:
                if row.get("id") is not None:
                    metadata["source_id"] = str(row["id"])
                memory_id = stable_id(source, *scope.values(), str(row.get("id") or text))
            batch.record(
                where,
                "memory",
                memory_id=memory_id,
                text=text,
                scope=scope,
                metadata=metadata,
                created_at=timestamp(row.get("created_at"), where, "created_at"),
                updated_at=timestamp(row.get("updated_at"), where, "updated_at"),
                expires_at=timestamp(row.get("expiration_date"), where, "expiration_date", past=False),
            )
    # get_all is asked for one scope, so its relations belong to that scope.
    scope = dict(zip(("user_id", "agent_id", "run_id"), scopes.pop(), strict=True)) if len(scopes) == 1 else None
    for number, rel in enumerate(relations, 1):
        where = f"{name} relation {number}"
        with batch.item():
            if not isinstance(rel, dict):
                raise refuse(where, "is not a JSON object", '{"source", "relationship", "target"}')
            triple = tuple(
                text_field(rel.get(k) or rel.get(alt or k), where, f"'{k}'", '{"source", "relationship", "target"}')
                for k, alt in (("source", None), ("relationship", None), ("target", "destination"))
            )
            add_relation(batch, where, scope or options.scope(), triple)  # type: ignore[arg-type]
    return batch
