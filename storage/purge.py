"""The ledger's purge: what "forget this" removes for good (a mixin of ``LedgerCore``).

A purge deletes a memory's row, its whole history (one ``PURGE`` event without text stays, so
the timeline shows that something was there and was purged), its relations and the embedding
cache entries of every text it ever had that no other memory says now, in one transaction. Each
ledger's ``scrub`` then removes what the engine's files still keep (docs/security.md).

Also what is left to purge: the deleted memories of a scope (``deleted_ids``, and ``deleted``
for the web page's Deleted view, with each one's last text and deletion time in one query).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from memorch.storage.base import Scope
from memorch.storage.cache import store_vectors
from memorch.storage.sql import Connection, Transactions, scope_sql, select_in

if TYPE_CHECKING:
    import numpy as np

# The history event a purge leaves: no text, no relations.
PURGE = "PURGE"
PURGE_REASON = "purged: its text, history and relations were removed for good"


# A memory gone from ``memories`` whose history is not purged: a deleted one (to ``restore``).
def gone(prefix: str = "") -> str:
    """The condition on ``history`` rows (``prefix``: their table's alias, else the table) of a
    deleted memory. ``NOT EXISTS``, not ``NOT IN``: over every user's history PostgreSQL ran
    ``NOT IN (SELECT id FROM memories)`` as a quadratic scan (150,000 memories: over 20 s against
    0.13 s; a review's measurement)."""
    row = prefix or "history."
    return f"{row}event != '{PURGE}' AND NOT EXISTS (SELECT 1 FROM memories m WHERE m.id = {row}memory_id)"


def forget_cached(conn: Connection, texts: set[str], cache_key: Callable[[str], str]) -> None:
    """Remove the embedding-cache entries of ``texts`` that no memory says now (inside the
    caller's transaction): a vector is not the text, but it is derived from it."""
    said = {row[0] for row in select_in(conn, "SELECT memory FROM memories WHERE memory IN ({marks})", list(texts))}
    conn.executemany("DELETE FROM embedding_cache WHERE text_hash = ?", [(cache_key(t),) for t in texts - said])


class PurgeQueries:
    def purge(
        self: Transactions,
        memory_ids: Sequence[str],
        index_targets: Sequence[str],
        relation_targets: Sequence[str],
        cache_key: Callable[[str], str],
        now: str,
        cached: tuple[str, dict[str, np.ndarray]] | None = None,
        reason: str = PURGE_REASON,
    ) -> dict[str, str | None]:
        """Remove memories for good, in one transaction: the row, every history event (replaced
        by one ``PURGE`` event without text, so the timeline still shows that something was
        there and was purged), the relations, and the embedding-cache entries of every text the
        memory ever had (``cache_key``: the cache's key of a text) that no other memory says now.
        ``now`` is the purge event's time, ``reason`` its explanation. The index work is owed
        like a deletion's. Returns each purged id's text at the purge (None: it was deleted
        before); ids already purged, or never seen, are left out. The caller checks the scope;
        ``scrub`` afterwards removes what the engine's files still keep."""
        purged: dict[str, str | None] = {}
        texts: set[str] = set()
        with self._purging(), self._write() as conn:
            if cached is not None and cached[1]:  # saved first, so a purged text's vector goes below
                store_vectors(conn, *cached, self.cache_rows)
            for memory_id in memory_ids:
                row = conn.execute("SELECT memory FROM memories WHERE id = ?", (memory_id,)).fetchone()
                events = conn.execute(
                    "SELECT old_memory, new_memory, event, user_id, agent_id, run_id, project FROM history"
                    " WHERE memory_id = ? ORDER BY seq",
                    (memory_id,),
                ).fetchall()
                if row is None and (not events or events[-1][2] == PURGE):
                    continue
                purged[memory_id] = None if row is None else row[0]
                texts.update(t for e in events for t in (e[0], e[1]) if t is not None)
                if row is not None:
                    texts.add(row[0])
                had_relations = (
                    conn.execute("SELECT 1 FROM relations WHERE memory_id = ? LIMIT 1", (memory_id,)).fetchone()
                    is not None
                )
                if events:
                    scope = tuple(events[-1][3:7])
                else:
                    scope = tuple(
                        conn.execute(
                            "SELECT user_id, agent_id, run_id, project FROM memories WHERE id = ?", (memory_id,)
                        ).fetchone()
                    )
                for table, column in (("memories", "id"), ("relations", "memory_id"), ("history", "memory_id")):
                    conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (memory_id,))
                conn.execute(
                    "INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at, updated_at,"
                    " is_deleted, user_id, agent_id, run_id, project, reason) VALUES (?,?,NULL,NULL,?,?,?,1,?,?,?,?,?)",
                    (str(uuid.uuid4()), memory_id, PURGE, now, now, *scope, reason),
                )
                targets = [*index_targets, *(relation_targets if had_relations else ())]
                conn.executemany(
                    "INSERT OR REPLACE INTO index_outbox (memory_id, target, token) VALUES (?, ?, ?)",
                    [(memory_id, target, uuid.uuid4().hex) for target in targets],
                )
            forget_cached(conn, texts, cache_key)
        return purged

    def metadata_of(self: Transactions, memory_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every metadata ``memory_ids`` have or had: their rows' and each history event's (a
        purge reads there which messages a memory was inferred from)."""
        with self._read() as conn:
            rows = [
                *select_in(conn, "SELECT metadata FROM memories WHERE id IN ({marks})", memory_ids),
                *select_in(conn, "SELECT metadata FROM history WHERE memory_id IN ({marks})", memory_ids),
            ]
        return [json.loads(row[0]) for row in rows if row[0]]

    def deleted_ids(self: Transactions, scope: Scope, where: tuple[str, list[Any]] | None = None) -> list[str]:
        """The memories of the scope that are gone but whose history is not purged yet
        (deleted ones): what ``delete_all`` with ``purge`` removes besides the live ones.
        ``where``: a further condition on the history rows' columns (``project = ?``)."""
        sql, params = scope_sql(scope)
        if where is not None:
            sql, params = f"{sql} AND ({where[0]})", [*params, *where[1]]
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT memory_id FROM history WHERE {sql} AND {gone()} GROUP BY memory_id",
                params,
            ).fetchall()
        return [row[0] for row in rows]

    def deleted(self: Transactions, scope: Scope, limit: int) -> list[dict[str, Any]]:
        """The scope's deleted memories (not purged), newest deletion first, at most ``limit``,
        in one query: each one's id, its text when deleted (the deletion event's old text; ""
        when history retention removed it), when it was created and deleted, and how many
        history events it has. The web page's Deleted view."""
        sql, params = scope_sql(scope)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT h.memory_id, COALESCE(h.old_memory, ''), f.created_at,"
                " COALESCE(h.updated_at, h.created_at) AS deleted_at, f.events FROM history h JOIN ("
                " SELECT memory_id, MAX(seq) AS last, MIN(created_at) AS created_at, count(*) AS events"
                f" FROM history WHERE {sql} GROUP BY memory_id) f ON h.seq = f.last"
                f" WHERE {gone('h.')} ORDER BY deleted_at DESC, h.memory_id LIMIT ?",
                [*params, limit],
            ).fetchall()
        keys = ("id", "memory", "created_at", "deleted_at", "events")
        return [dict(zip(keys, tuple(row), strict=True)) for row in rows]

    def deleted_by_user(self: Transactions) -> dict[str, int]:
        """How many deleted memories (not purged) each user_id has: the UI lists a user whose
        memories were all deleted, so its Deleted view can bring them back."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT user_id, count(DISTINCT memory_id) FROM history WHERE user_id IS NOT NULL AND {gone()}"
                " GROUP BY user_id"
            ).fetchall()
        return {row[0]: row[1] for row in rows}
