"""The ledger's relation queries: what each memory states about entities.

A mixin of ``LedgerCore`` (same connection and locks); one-hop graph lookups are served from
here because the table is indexed by scope and normalized name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memorch.storage.base import SCOPE_KEYS, Scope, normalize_entity
from memorch.storage.expiry import EXPIRED_IDS, stamp
from memorch.storage.sql import IN_CHUNK, Transactions, chunks, marks, scope_sql, select_in

RELATION_FIELDS = ("source", "source_type", "relationship", "destination", "destination_type")

_KEYS = ", ".join(SCOPE_KEYS)


def _exact(values: tuple[str | None, ...]) -> tuple[str, list[Any]]:
    """Rows of exactly this scope, as conditions an index serves (``IS ?`` would not be)."""
    pairs = zip(SCOPE_KEYS, values, strict=True)
    parts = [f"{key} = ?" if value is not None else f"{key} IS NULL" for key, value in pairs]
    return " AND ".join(parts), [value for value in values if value is not None]


# One end of a relation in a list of names, each end through its own index (an OR of the two
# would be a scan of the user's rows on SQLite); UNION also drops a relation found by both ends.
_TOUCHING = (
    "SELECT {columns} FROM relations WHERE {same} AND source_norm IN ({marks})"
    " UNION SELECT {columns} FROM relations WHERE {same} AND destination_norm IN ({marks})"
)
_NEIGHBOURHOOD_ORDER = "memory_id, source, relationship, destination"


def _around(
    conn: Any, exact: tuple[str | None, ...], norm: str, hops: int, limit: int
) -> set[tuple[str, str, str, str]]:
    """(source, relationship, destination, memory id) of the first ``limit`` relations (in
    ``_NEIGHBOURHOOD_ORDER``) of the exact scope that touch an entity within ``hops - 1`` steps
    of ``norm``."""
    same, same_params = _exact(exact)
    seen, frontier = {norm}, [norm]
    for _ in range(hops - 1):
        reached: set[str] = set()
        for chunk in chunks(frontier, IN_CHUNK // 2):
            sql = _TOUCHING.format(columns="source_norm, destination_norm", same=same, marks=marks(len(chunk)))
            for source, destination in conn.execute(sql, [*same_params, *chunk, *same_params, *chunk]):
                reached.update((source, destination))
        frontier = sorted(reached - seen)
        seen |= reached
        if not frontier:
            break
    rows: set[tuple[str, str, str, str]] = set()
    for chunk in chunks(sorted(seen), IN_CHUNK // 2):  # each chunk's first ``limit``: the union's first are among them
        touching = _TOUCHING.format(
            columns="source, relationship, destination, memory_id", same=same, marks=marks(len(chunk))
        )
        sql = f"SELECT * FROM ({touching}) AS touching ORDER BY {_NEIGHBOURHOOD_ORDER} LIMIT ?"
        rows.update(tuple(row) for row in conn.execute(sql, [*same_params, *chunk, *same_params, *chunk, limit]))
    return rows


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
        with self._read() as conn:  # an expired memory's relations are forgotten with it
            rows = conn.execute(
                f"SELECT memory_id, {columns} FROM relations WHERE {where_scope} AND ({' OR '.join(clauses)})"
                f" AND memory_id NOT IN ({EXPIRED_IDS}) ORDER BY memory_id, position LIMIT ?",
                [*scope_params, *params, stamp(), limit],
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

    def neighbourhood(self: Transactions, scope: Scope, name: str, hops: int, limit: int) -> list[dict[str, Any]]:
        """The relations within ``hops`` of an entity, as the graph answers ``memorch graph``:
        with several replicas graph reads are answered here instead of from a per-replica copy
        (README "Running several replicas"). An entity is a normalized name in one exact scope
        (as the graph keys it, ``storage.graph.entity_key``): the name is looked up under the
        scope rule, then each entity found is walked breadth-first within its own scope, one
        indexed query per hop."""
        norm = normalize_entity(name)
        where, params = scope_sql(scope)
        found: set[tuple[str, str, str, str]] = set()
        with self._read() as conn:
            exact_scopes = conn.execute(
                f"SELECT {_KEYS} FROM relations WHERE source_norm = ? AND {where}"
                f" UNION SELECT {_KEYS} FROM relations WHERE destination_norm = ? AND {where}",
                [norm, *params, norm, *params],
            ).fetchall()
            for exact in exact_scopes:
                found |= _around(conn, tuple(exact), norm, hops, limit)
        ordered = sorted(found, key=lambda row: (row[3], row[0], row[1], row[2]))[:limit]
        return [{"source": a, "relationship": r, "destination": b, "memory_id": m} for a, r, b, m in ordered]

    def holds_relations(self: Transactions) -> bool:
        """Whether any memory states a relation (only an LLM's extraction makes them)."""
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM relations LIMIT 1").fetchone() is not None

    def relation_counts(self: Transactions) -> dict[str, int]:
        """Entities (a normalized name in one exact scope) and relations, as the graph counts them."""
        with self._read() as conn:
            entities = conn.execute(
                f"SELECT COUNT(*) FROM (SELECT {_KEYS}, source_norm FROM relations"
                f" UNION SELECT {_KEYS}, destination_norm FROM relations) AS entities"
            ).fetchone()[0]
            relations = conn.execute("SELECT COUNT(*) FROM relations").fetchone()[0]
        return {"entities": int(entities), "relations": int(relations)}
