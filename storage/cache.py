"""The ledger's small key-value ``meta`` table, the persistent embedding cache, and the
memories' own embeddings by scope (``server/nearest.py``).

A mixin of ``LedgerCore`` (same connection and locks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memorch.storage.base import Scope
from memorch.storage.sql import Connection, Transactions, scope_sql, select_in


def blob(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def store_vectors(conn: Connection, model: str, vectors: dict[str, np.ndarray], keep: int | None) -> None:
    """Write embedding-cache entries inside the caller's transaction; with ``keep``, then drop
    every entry written before the last ``keep`` writes (so at most ``keep`` stay). Bounded
    because it can always be recomputed and grew by 2 kB per distinct text for ever (each
    query's and each memory's, the largest part of a soaked ledger; README "Configuration").
    Rowid order is write order: ``INSERT OR REPLACE`` gives a rewritten entry a new rowid."""
    conn.executemany(
        "INSERT OR REPLACE INTO embedding_cache (model, text_hash, vector) VALUES (?, ?, ?)",
        [(model, h, blob(v)) for h, v in vectors.items()],
    )
    if keep is not None:
        trim_cache(conn, keep)


def trim_cache(conn: Connection, keep: int) -> None:
    """Drop the embedding-cache entries written before the last ``keep`` writes."""
    conn.execute("DELETE FROM embedding_cache WHERE rowid <= (SELECT max(rowid) FROM embedding_cache) - ?", (keep,))


class CacheQueries:
    def get_meta(self: Transactions, key: str) -> str | None:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self: Transactions, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def cached_vectors(self: Transactions, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        sql = "SELECT text_hash, vector FROM embedding_cache WHERE model = ? AND text_hash IN ({marks})"
        with self._read() as conn:
            return {
                h: np.frombuffer(data, dtype=np.float32).copy() for h, data in select_in(conn, sql, hashes, [model])
            }

    def cache_vectors(self: Transactions, model: str, vectors: dict[str, np.ndarray]) -> None:
        """Store embeddings on their own (not fsync'd: a lost entry is recomputed)."""
        with self._write(durable=False) as conn:
            store_vectors(conn, model, vectors, self.cache_rows)

    def embeddings(self: Transactions, scope: Scope, limit: int) -> tuple[list[str], np.ndarray] | None:
        """The ids and embeddings of the scope's memories (those stored without one are left
        out), or None when it holds more than ``limit``."""
        sql, params = scope_sql(scope)
        with self._read() as conn:
            query = f"SELECT id, embedding FROM memories WHERE {sql} AND embedding IS NOT NULL LIMIT ?"
            rows = conn.execute(query, [*params, limit + 1]).fetchall()
        if len(rows) > limit:
            return None
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [row[0] for row in rows], np.stack([np.frombuffer(row[1], dtype=np.float32) for row in rows])

    def data_version(self: Transactions) -> int:
        """Changes when another connection (another process) commits to the file; this one's own
        commits leave it as it is."""
        with self._read() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def embeddings_of(self: Transactions, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The embeddings of ``ids`` (those stored without one, or missing, left out)."""
        sql = "SELECT id, embedding FROM memories WHERE embedding IS NOT NULL AND id IN ({marks})"
        with self._read() as conn:
            return {i: np.frombuffer(data, dtype=np.float32) for i, data in select_in(conn, sql, ids)}

    def embedding_sum(self: Transactions, scope: Scope, limit: int) -> tuple[np.ndarray, int] | None:
        """The sum (float64) and count of the scope's first ``limit`` embeddings in the scope
        index's order, or None when it has none: the centre of a scope not held in memory
        (``engine._centroids``). No ``ORDER BY``: sorting a large scope's rows (by id, for an even
        sample) took 1.5 s for 20,000 of 80,000, reading them in index order 33 ms."""
        sql, params = scope_sql(scope)
        with self._read() as conn:
            query = f"SELECT embedding FROM memories WHERE {sql} AND embedding IS NOT NULL LIMIT ?"
            rows = conn.execute(query, [*params, limit]).fetchall()
        if not rows:
            return None
        vectors = np.stack([np.frombuffer(row[0], dtype=np.float32) for row in rows])
        return vectors.sum(0, dtype=np.float64), len(rows)
