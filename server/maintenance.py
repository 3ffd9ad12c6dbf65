"""Whole-store maintenance: rebuilding indexes from the ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memorch.storage.base import Scope

from .components import VECTORS, Components

BATCH = 256


def reindex(components: Components, re_embed: bool, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """Rebuild the vector index from SQLite; with ``re_embed`` recompute embeddings first."""
    from memorch.storage.vectors import drop_index

    ledger = components.ledger
    ids = ledger.ids(Scope())
    if re_embed:
        for start in range(0, len(ids), BATCH):
            records = ledger.get_many(ids[start : start + BATCH])
            vectors = components.embedder.embed([r.memory for r in records])
            ledger.set_embeddings({r.id: v for r, v in zip(records, vectors, strict=True)})
            if progress:
                progress(min(start + BATCH, len(ids)), len(ids) * 2)
        components.forget_embedding_model()
        drop_index(components.config.data_dir / "lance")
    else:
        components.vectors.wipe()
    ledger.mark_all_pending(VECTORS)
    done = len(ids) if re_embed else 0
    total = len(ids) * (2 if re_embed else 1)
    for start in range(0, len(ids), 1000):
        components.sync_vectors(ids[start : start + 1000])
        if progress:
            progress(done + min(start + 1000, len(ids)), total)
    components.replayed = True
    return {"memories": len(ids), "re_embedded": re_embed}
