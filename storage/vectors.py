"""The LanceDB index: vectors + native full-text over memory text, keyed by memory id.

A derived index: everything in it can be rebuilt from the SQLite ledger. Scope is always a
pre-filter; every value that reaches a LanceDB filter string is escaped by ``_quote`` (string
literals) or checked to be a UUID, never pasted raw.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from memorch.errors import StorageError, ValidationError, VectorSearchError

from .base import SCOPE_KEYS, MemoryRecord, Scope, VectorHit

TABLE = "memories"
# Past this many rows written since the last optimize, fold new rows into the indexes
# (LanceDB searches unindexed rows by brute force until then, which is correct but slower).
OPTIMIZE_EVERY = 2000


def _quote(value: str) -> str:
    """A SQL string literal for a LanceDB filter: quotes doubled, NULs refused."""
    if "\x00" in value:
        raise ValidationError("identifiers may not contain NUL characters", error_code="INVALID_SCOPE")
    return "'" + value.replace("'", "''") + "'"


def _id_list(ids: Sequence[str]) -> str:
    # Ids are UUIDs made by memorch; checking them keeps the IN list free of user text.
    return ", ".join(_quote(str(uuid.UUID(i))) for i in ids)


@contextmanager
def _write_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, RuntimeError) as exc:
        raise StorageError(
            f"LanceDB {action} failed: {exc}",
            error_code="VECTOR_WRITE_FAILED",
            suggestion="the ledger keeps the change; it is replayed on restart",
        ) from exc


def scope_filter(scope: Scope) -> str | None:
    parts = [f"{key} = {_quote(value)}" for key, value in scope.items()]
    return " AND ".join(parts) if parts else None


class LanceVectorIndex:
    """``VectorIndex`` on a local (or object-storage) LanceDB directory."""

    def __init__(self, uri: str | Path, dimension: int) -> None:
        import lancedb
        import pyarrow as pa

        self.dimension = dimension
        self._lock = threading.Lock()
        self._writes_since_optimize = 0
        self._schema = pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("memory", pa.string()),
                pa.field("hash", pa.string()),
                *(pa.field(key, pa.string()) for key in SCOPE_KEYS),
                pa.field("metadata", pa.string()),
                pa.field("created_at", pa.string()),
                pa.field("updated_at", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dimension)),
            ]
        )
        try:
            self._db = lancedb.connect(str(uri))
            self._table = self._open_or_create()
        except (OSError, ValueError, RuntimeError) as exc:
            raise StorageError(
                f"cannot open the LanceDB index at {uri}: {exc}",
                error_code="VECTOR_STORE_OPEN_FAILED",
                suggestion="check MEMORCH_DATA_DIR; `memorch reindex` rebuilds the index from the ledger",
            ) from exc

    def _open_or_create(self) -> Any:
        if TABLE in self._db.list_tables().tables:
            table = self._db.open_table(TABLE)
            stored = table.schema.field("vector").type.list_size
            if stored != self.dimension:
                raise ValidationError(
                    f"the vector index holds {stored}-d vectors but the embedder makes {self.dimension}-d ones",
                    error_code="EMBEDDING_DIMENSION_MISMATCH",
                    details={"stored": stored, "embedder": self.dimension},
                    suggestion="run `memorch reindex --re-embed` after changing MEMORCH_EMBEDDER",
                )
            return table
        table = self._db.create_table(TABLE, schema=self._schema, exist_ok=True)
        self._create_indexes(table)
        return table

    @staticmethod
    def _create_indexes(table: Any) -> None:
        # Native FTS over the memory text (kept current by optimize; rows not yet indexed are
        # still searched) and B-tree indexes on scope columns so the scope pre-filter stays
        # cheap as data grows.
        from lancedb.index import FTS, BTree

        table.create_index("memory", config=FTS(), replace=True)
        for key in SCOPE_KEYS:
            table.create_index(key, config=BTree(), replace=True)

    def _rows(self, records: Sequence[MemoryRecord]) -> Any:
        import pyarrow as pa

        vectors = np.stack([np.asarray(r.embedding, dtype=np.float32) for r in records])
        columns: dict[str, Any] = {
            "id": [r.id for r in records],
            "memory": [r.memory for r in records],
            "hash": [r.hash for r in records],
            **{key: [getattr(r, key) for r in records] for key in SCOPE_KEYS},
            "metadata": [json.dumps(r.metadata) for r in records],
            "created_at": [r.created_at for r in records],
            "updated_at": [r.updated_at for r in records],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), self.dimension),
        }
        return pa.table(columns, schema=self._schema)

    def upsert(self, records: Sequence[MemoryRecord]) -> None:
        if not records:
            return
        with self._lock:
            with _write_errors("upsert"):
                (
                    self._table.merge_insert("id")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(self._rows(records))
                )
            self._after_write(len(records))

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            for start in range(0, len(ids), 500):
                with _write_errors("delete"):
                    self._table.delete(f"id IN ({_id_list(ids[start : start + 500])})")
            self._after_write(len(ids))

    def _after_write(self, n: int) -> None:
        self._writes_since_optimize += n
        if self._writes_since_optimize >= OPTIMIZE_EVERY:
            self._table.optimize()
            self._writes_since_optimize = 0

    def search(
        self, vector: np.ndarray, scope: Scope, limit: int, only_ids: Sequence[str] | None = None
    ) -> list[VectorHit]:
        where = [w for w in (scope_filter(scope),) if w]
        if only_ids is not None:
            if not only_ids:
                return []
            where.append(f"id IN ({_id_list(only_ids)})")
        query = self._table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
        query = query.distance_type("cosine").select(["id", "_distance"]).limit(limit)
        if where:
            query = query.where(" AND ".join(where), prefilter=True)
        try:
            table = query.to_arrow()
        except (OSError, ValueError, RuntimeError) as exc:
            raise VectorSearchError(
                f"LanceDB search failed: {exc}", suggestion="retry; if it persists run `memorch reindex`"
            ) from exc
        ids = table.column("id").to_pylist()
        distances = table.column("_distance").to_pylist()
        return [VectorHit(i, float(min(1.0, max(0.0, 1.0 - d)))) for i, d in zip(ids, distances, strict=True)]

    def count(self) -> int:
        return int(self._table.count_rows())

    def all_ids(self) -> set[str]:
        return set(self._table.to_arrow().column("id").to_pylist()) if self.count() else set()

    def wipe(self) -> None:
        with self._lock:
            self._db.drop_table(TABLE)
            self._table = self._open_or_create()


def drop_index(uri: str | Path) -> None:
    """Remove the index table (used before re-embedding with a model of another dimension)."""
    import lancedb

    db = lancedb.connect(str(uri))
    if TABLE in db.list_tables().tables:
        db.drop_table(TABLE)
