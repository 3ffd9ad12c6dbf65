"""The ledger's relation queries: what each memory states about entities.

A mixin of ``SQLiteLedger`` (same connection and locks); one-hop graph lookups are served from
here because the table is indexed by scope and normalized name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from .base import Scope, normalize_entity

RELATION_FIELDS = ("source", "source_type", "relationship", "destination", "destination_type")


def _exact_scope(scope: Scope) -> tuple[str, list[Any]]:
    items = dict(zip(("user_id", "agent_id", "run_id"), scope.values(), strict=True))
    return " AND ".join(f"{k} IS ?" for k in items), list(items.values())


class RelationQueries:
    def _read(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by SQLiteLedger
        raise NotImplementedError

    def relations_for(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The relations the ledger holds for each memory id (in extraction order)."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        columns = ", ".join(RELATION_FIELDS)
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT memory_id, {columns} FROM relations WHERE memory_id IN ({marks})"
                    " ORDER BY memory_id, position",
                    chunk,
                ):
                    out[row[0]].append(dict(zip(RELATION_FIELDS, row[1:], strict=True)))
        return out

    def relations_touching(
        self, scope: Scope, names: Sequence[str], memory_ids: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """One-hop lookups (entities by normalized name, or the relations of given memories) in
        exactly this scope: served here, without opening the graph, because they are indexed."""
        norms = list(dict.fromkeys(normalize_entity(n) for n in names))
        scope_sql, scope_params = _exact_scope(scope)
        clauses, params = [], []
        if norms:
            marks = ",".join("?" * len(norms))
            clauses += [f"source_norm IN ({marks})", f"destination_norm IN ({marks})"]
            params += norms + norms
        if memory_ids:
            clauses.append(f"memory_id IN ({','.join('?' * len(memory_ids))})")
            params += list(memory_ids)
        if not clauses:
            return []
        columns = ", ".join(RELATION_FIELDS)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT memory_id, {columns} FROM relations WHERE {scope_sql} AND ({' OR '.join(clauses)})"
                " ORDER BY memory_id, position LIMIT ?",
                [*scope_params, *params, limit],
            ).fetchall()
        return [{"memory_id": row[0], **dict(zip(RELATION_FIELDS, row[1:], strict=True))} for row in rows]

    def entity_names(self, scope: Scope) -> dict[str, str | None]:
        """Distinct entity names in exactly this scope, with a type each (None if unknown)."""
        sql, params = _exact_scope(scope)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT source, source_type FROM relations WHERE {sql}"
                f" UNION SELECT destination, destination_type FROM relations WHERE {sql}",
                params + params,
            ).fetchall()
        names: dict[str, str | None] = {}
        for name, kind in rows:
            names[name] = names.get(name) or kind
        return names
