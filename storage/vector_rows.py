"""The LanceDB table's row format: its Arrow schema, and memory records as rows of it.

One row per memory: the text the FTS index reads, the scope columns the pre-filter reads
(``vector_plan``; the layer column is the project), the metadata as JSON and the embedding as a
fixed-size float32 list. The ledger is the source of every row (``Store.sync_vectors``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from memorch.storage.base import SCOPE_KEYS, MemoryRecord
from memorch.storage.vector_plan import LAYER


def table_schema(dimension: int) -> Any:
    """The table's Arrow schema for ``dimension``-d embeddings."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("memory", pa.string()),
            pa.field("hash", pa.string()),
            *(pa.field(key, pa.string()) for key in SCOPE_KEYS),
            pa.field("metadata", pa.string()),
            pa.field("created_at", pa.string()),
            pa.field("updated_at", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
            pa.field(LAYER, pa.string()),
        ]
    )


def arrow_rows(records: Sequence[MemoryRecord], schema: Any) -> Any:
    """``records`` (at least one) as an Arrow table of ``schema``."""
    import pyarrow as pa

    dimension = schema.field("vector").type.list_size
    vectors = np.stack([np.asarray(r.embedding, dtype=np.float32) for r in records])
    columns: dict[str, Any] = {
        "id": [r.id for r in records],
        "memory": [r.memory for r in records],
        "hash": [r.hash for r in records],
        **{key: [getattr(r, key) for r in records] for key in SCOPE_KEYS},
        "metadata": [json.dumps(r.metadata) for r in records],
        "created_at": [r.created_at for r in records],
        "updated_at": [r.updated_at for r in records],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dimension),
        LAYER: [r.project for r in records],
    }
    return pa.table(columns, schema=schema)
