"""The ledger's relation queries: what each memory states about entities.

A mixin of ``SQLiteLedger`` (same connection and locks); one-hop graph lookups are served from
here because the table is indexed by scope and normalized name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Scope, normalize_entity
from .sql import Transactions, marks, scope_sql, select_in

RELATION_FIELDS = ("source", "source_type", "relationship", "destination", "destination_type")


def _same_scope(scope: Scope) -> tuple[str, list[Any]]:
    """Rows whose scope is exactly ``scope`` (a part not given must be NULL too). Only for entity
    identity, which the graph keys by the full scope; queries follow the scope rule."""
    items = scope.as_dict()
    return " AND ".join(f"{k} IS ?" for k in items), list(items.values())


class RelationQueries:
    def relations_for(self: Transactions, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The relations the ledger holds for each memory id (in extraction order)."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        sql = (
            f"SELECT memory_id, {', '.join(RELATION_FIELDS)} FROM relations WHERE memory_id IN ({{marks}})"
            " ORDER BY memory_id, position"
        )
        with self._read() as conn:
            for row in select_in(conn, sql, ids):
                out[row[0]].append(dict(zip(RELATION_FIELDS, row[1:], strict=True)))
        return out

    def relations_touching(
        self: Transactions, scope: Scope, names: Sequence[str], memory_ids: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """One-hop lookups (entities by normalized name, or the relations of given memories)
        under the scope rule, like every other query: a user-only scope sees the relations its
        memories of every agent and run state. Served here, without opening the graph, because
        they are indexed."""
        norms = list(dict.fromkeys(normalize_entity(n) for n in names))
        where_scope, scope_params = scope_sql(scope)
        clauses, params = [], []
        if norms:
            clauses += [f"source_norm IN ({marks(len(norms))})", f"destination_norm IN ({marks(len(norms))})"]
            params += norms + norms
        if memory_ids:
            clauses.append(f"memory_id IN ({marks(len(memory_ids))})")
            params += list(memory_ids)
        if not clauses:
            return []
        columns = ", ".join(RELATION_FIELDS)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT memory_id, {columns} FROM relations WHERE {where_scope} AND ({' OR '.join(clauses)})"
                " ORDER BY memory_id, position LIMIT ?",
                [*scope_params, *params, limit],
            ).fetchall()
        return [{"memory_id": row[0], **dict(zip(RELATION_FIELDS, row[1:], strict=True))} for row in rows]

    def entity_names(self: Transactions, scope: Scope) -> dict[str, str | None]:
        """Distinct entity names in exactly this scope, with a type each (None if unknown).

        Entity resolution, not a query: a new memory's names are resolved against the entities
        of its own scope, because the graph keys an entity by its full scope (``entity_key``);
        resolving against a wider scope would merge names into entities of another agent or run."""
        sql, params = _same_scope(scope)
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
