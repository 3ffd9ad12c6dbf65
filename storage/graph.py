"""The Kuzu graph: entities, the relations between them, and which memory said so.

Schema::

    (:Entity {key, name, display, type, user_id, agent_id, run_id})
    (:Entity)-[:RELATES {name, memory_id, created_at}]->(:Entity)
    (:Memory {id})-[:MENTIONS]->(:Entity)

Every relation carries the id of the memory that produced it, so updating or deleting a memory
removes exactly its relations, and an entity no memory mentions any more is removed too. Entity
keys include the scope: the same name in two scopes is two entities. Lookups follow the scope
rule (``Scope``): a user-only lookup finds that user's entities of every agent and run.

Kuzu lets one process hold a database read-write and then refuses every other process, even
read-only ones. Two servers on one data directory (Claude Desktop and an IDE) must both work, so
each operation opens the database for a moment under a cross-process file lock (~30 ms) and
closes it again. All Cypher is parameterized: names are data, never query text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memorch.errors import StorageError
from memorch.storage.base import Scope, normalize_entity
from memorch.storage.engine import KUZU_ERRORS, REPAIR, engine_errors, log, reason

SCHEMA = (
    "CREATE NODE TABLE IF NOT EXISTS Entity(key STRING, name STRING, display STRING, type STRING,"
    " user_id STRING, agent_id STRING, run_id STRING, PRIMARY KEY(key))",
    "CREATE NODE TABLE IF NOT EXISTS Memory(id STRING, PRIMARY KEY(id))",
    "CREATE REL TABLE IF NOT EXISTS RELATES(FROM Entity TO Entity, name STRING, memory_id STRING, created_at STRING)",
    "CREATE REL TABLE IF NOT EXISTS MENTIONS(FROM Memory TO Entity)",
)
LOCK_TIMEOUT_S = 60
# `memorch graph` walks at most this far: three hops already reach most of a personal graph.
MAX_HOPS = 3
# Kuzu reserves 80% of RAM for its buffer pool by default, which makes every open ~20 ms and
# every close slower; memory graphs are small, and 64 MB brings an open+close to ~6 ms.
BUFFER_POOL_BYTES = 64 * 1024 * 1024


def scope_where(scope: Scope, var: str) -> tuple[str, dict[str, str]]:
    """The scope rule as a Cypher condition on entity ``var``: each given part must be equal.
    Keys are the fixed scope names; values are parameters."""
    items = scope.items()
    if not items:
        return "true", {}
    return " AND ".join(f"{var}.{key} = ${key}" for key, _ in items), dict(items)


def entity_key(scope: Scope, name: str) -> str:
    raw = json.dumps([*scope.values(), normalize_entity(name)], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()


@contextmanager
def held(lock: Any) -> Iterator[None]:
    """Hold the graph's file lock; a minute's wait is ``GRAPH_LOCKED``."""
    from filelock import Timeout

    try:
        with lock:
            yield
    except Timeout as exc:
        raise StorageError(
            "another memorch process held the graph for over a minute",
            error_code="GRAPH_LOCKED",
            suggestion="retry; check for a stuck memorch process",
        ) from exc


@dataclass(frozen=True)
class GraphWork:
    """Make the graph hold exactly ``relations`` for ``memory_id`` (none: remove it)."""

    memory_id: str
    scope: Scope | None
    relations: Sequence[dict[str, Any]]
    created_at: str = ""


class KuzuGraph:
    """``GraphIndex`` on an embedded Kuzu database shared safely between processes."""

    def __init__(self, path: Path, lock_path: Path, read_only: bool = False) -> None:
        """``read_only``: the data directory cannot be written, so no process can write the
        graph either: it is opened read-only, without the lock file (which cannot be created)."""
        import kuzu  # noqa: F401 - fail at construction, not mid-operation, if it is missing
        from filelock import FileLock

        self.path = path
        self.read_only = read_only
        if not read_only:
            with engine_errors("creating the graph's directory", KUZU_ERRORS, error_code="GRAPH_ERROR"):
                path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: Any = nullcontext() if read_only else FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S)
        self._schema_ready = read_only

    @contextmanager
    def _session(self) -> Iterator[Any]:
        import kuzu

        try:
            with held(self._lock):
                db = kuzu.Database(str(self.path), buffer_pool_size=BUFFER_POOL_BYTES, read_only=self.read_only)
                try:
                    conn = kuzu.Connection(db)
                    if not self._schema_ready:
                        for statement in SCHEMA:
                            conn.execute(statement)
                        self._schema_ready = True
                    yield conn
                    conn.close()
                finally:
                    db.close()
        except KUZU_ERRORS as exc:
            log.warning("the Kuzu graph at %s failed", self.path, exc_info=True)
            raise StorageError(
                f"the Kuzu graph failed ({reason(exc)})",
                error_code="GRAPH_ERROR",
                suggestion=REPAIR,
            ) from exc

    def _absent(self) -> bool:
        """A read-only directory without a graph file: an empty graph (none can be created)."""
        return self.read_only and not self.path.exists()

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the graph's cross-process lock without opening it (to swap in a rebuilt copy)."""
        return held(self._lock)

    @staticmethod
    def _rows(conn: Any, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        result = conn.execute(query, params or {})
        rows = []
        while result.has_next():
            rows.append(result.get_next())
        return rows

    # -- writes -------------------------------------------------------------------------------

    def apply(self, work: Sequence[GraphWork]) -> None:
        if not work:
            return
        with self._session() as conn:
            # One transaction (each auto-committed statement would pay its own WAL flush) and a
            # fixed number of UNWIND statements however many memories and relations there are.
            conn.execute("BEGIN TRANSACTION")
            try:
                for item in work:
                    self._remove_memory(conn, item.memory_id)
                self._add(conn, [item for item in work if item.scope is not None and item.relations])
            except RuntimeError:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _remove_memory(self, conn: Any, memory_id: str) -> None:
        if not self._rows(conn, "MATCH (m:Memory {id: $id}) RETURN m.id", {"id": memory_id}):
            return  # a new memory: nothing to remove (skips a scan of every relation)
        keys = [
            r[0]
            for r in self._rows(
                conn, "MATCH (:Memory {id: $id})-[:MENTIONS]->(e:Entity) RETURN e.key", {"id": memory_id}
            )
        ]
        conn.execute("MATCH (:Entity)-[r:RELATES]->(:Entity) WHERE r.memory_id = $id DELETE r", {"id": memory_id})
        conn.execute("MATCH (m:Memory {id: $id}) DETACH DELETE m", {"id": memory_id})
        if keys:
            conn.execute(
                "MATCH (e:Entity) WHERE e.key IN $keys AND NOT EXISTS { MATCH (:Memory)-[:MENTIONS]->(e) }"
                " DETACH DELETE e",
                {"keys": keys},
            )

    def _add(self, conn: Any, items: Sequence[GraphWork]) -> None:
        if not items:
            return
        entities: dict[str, dict[str, Any]] = {}
        mentions: set[tuple[str, str]] = set()
        relations: list[dict[str, Any]] = []
        for item in items:
            assert item.scope is not None
            scope = item.scope.as_dict()
            for rel in item.relations:
                keys = []
                for side in ("source", "destination"):
                    key = entity_key(item.scope, rel[side])
                    keys.append(key)
                    entities[key] = {
                        "key": key,
                        "name": normalize_entity(rel[side]),
                        "display": rel[side],
                        "type": rel.get(f"{side}_type") or "",
                        **scope,
                    }
                    mentions.add((item.memory_id, key))
                relations.append(
                    {
                        "a": keys[0],
                        "b": keys[1],
                        "name": rel["relationship"],
                        "id": item.memory_id,
                        "at": item.created_at,
                    }
                )
        conn.execute("UNWIND $ids AS id MERGE (:Memory {id: id})", {"ids": [item.memory_id for item in items]})
        conn.execute(
            "UNWIND $entities AS x MERGE (e:Entity {key: x.key}) SET e.name = x.name, e.display = x.display,"
            " e.type = x.type, e.user_id = x.user_id, e.agent_id = x.agent_id, e.run_id = x.run_id",
            {"entities": list(entities.values())},
        )
        conn.execute(
            "UNWIND $pairs AS p MATCH (m:Memory {id: p.m}), (e:Entity {key: p.k}) MERGE (m)-[:MENTIONS]->(e)",
            {"pairs": [{"m": m, "k": k} for m, k in sorted(mentions)]},
        )
        conn.execute(
            "UNWIND $rels AS r MATCH (a:Entity {key: r.a}), (b:Entity {key: r.b})"
            " CREATE (a)-[:RELATES {name: r.name, memory_id: r.id, created_at: r.at}]->(b)",
            {"rels": relations},
        )

    def wipe(self) -> None:
        with self._session() as conn:
            conn.execute("MATCH (m:Memory) DETACH DELETE m")
            conn.execute("MATCH (e:Entity) DETACH DELETE e")

    # -- reads --------------------------------------------------------------------------------

    def neighbourhood(self, scope: Scope, name: str, hops: int = 2, limit: int = 100) -> list[dict[str, Any]]:
        """Relations within ``hops`` of an entity (for ``memorch graph``)."""
        hops = max(1, min(hops, MAX_HOPS))
        if self._absent():
            return []
        where, params = scope_where(scope, "s")
        with self._session() as conn:
            # Under the scope rule one name may be several entities (one per agent or run).
            starts = [
                r[0]
                for r in self._rows(
                    conn,
                    f"MATCH (s:Entity) WHERE s.name = $name AND {where} RETURN s.key",
                    {**params, "name": normalize_entity(name)},
                )
            ]
            near = (
                self._rows(
                    conn,
                    f"MATCH (s:Entity)-[:RELATES*1..{hops - 1}]-(n:Entity) WHERE s.key IN $keys RETURN DISTINCT n.key",
                    {"keys": starts},
                )
                if hops > 1 and starts
                else []
            )
            if not starts:
                return []
            keys = [*starts, *(r[0] for r in near)]
            rows = self._rows(
                conn,
                "MATCH (a:Entity)-[r:RELATES]->(b:Entity) WHERE a.key IN $keys OR b.key IN $keys"
                " RETURN DISTINCT a.display, r.name, b.display, r.memory_id LIMIT $limit",
                {"keys": keys, "limit": limit},
            )
        return [{"source": a, "relationship": r, "destination": b, "memory_id": m} for a, r, b, m in rows]

    def snapshot(self) -> list[tuple[str, str, str, str]]:
        """Every relation as (source key, name, destination key, memory id), sorted (for tests)."""
        with self._session() as conn:
            rows = self._rows(conn, "MATCH (a:Entity)-[r:RELATES]->(b:Entity) RETURN a.key, r.name, b.key, r.memory_id")
        return sorted(tuple(r) for r in rows)  # type: ignore[misc]

    def counts(self) -> dict[str, int]:
        if self._absent():
            return {"entities": 0, "relations": 0}
        with self._session() as conn:
            entities = self._rows(conn, "MATCH (e:Entity) RETURN count(e)")[0][0]
            relations = self._rows(conn, "MATCH ()-[r:RELATES]->() RETURN count(r)")[0][0]
        return {"entities": int(entities), "relations": int(relations)}
