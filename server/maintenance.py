"""Whole-store maintenance: rebuilding indexes from the ledger, and health checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from memorch.storage.base import Scope

from .components import Components
from .errors import MemoryError, StorageError
from .store import REPLAY_BATCH, Store

BATCH = 256


def reindex(store: Store, re_embed: bool, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """Rebuild the vector index from SQLite; with ``re_embed`` recompute embeddings first. The
    old index is dropped without being opened, so a damaged one (a broken manifest) is repaired too."""
    parts = store.parts
    ledger = parts.ledger
    with store.locked():  # not ``writing``: replaying into the damaged index is what fails
        ids = ledger.ids(Scope())
        if re_embed:
            for start in range(0, len(ids), BATCH):
                records = ledger.get_many(ids[start : start + BATCH])
                vectors = parts.embedder.embed([r.memory for r in records])
                ledger.set_embeddings({r.id: v for r, v in zip(records, vectors, strict=True)})
                if progress:
                    progress(min(start + BATCH, len(ids)), len(ids) * 2)
            parts.forget_embedding_model()
        parts.drop_vectors()
        if store.config.graph_enabled:
            parts.graph.wipe()
            if store.config.ledger_url:  # this replica's copy replays the ledger from the start
                from .graph_feed import forget_cursor

                forget_cursor(store.config)
        for target in store.index_targets():
            ledger.mark_all_pending(target)
        done = len(ids) if re_embed else 0
        total = len(ids) * (2 if re_embed else 1)
        for start in range(0, len(ids), REPLAY_BATCH):
            store.sync_vectors(ids[start : start + REPLAY_BATCH])
            store.drain_graph()
            if progress:
                progress(done + min(start + REPLAY_BATCH, len(ids)), total)
        store.mark_ready()
    return {"memories": len(ids), "re_embedded": re_embed}


class _Ping(BaseModel):
    ok: bool


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


def _timed(name: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail = probe()
    except MemoryError as exc:
        return Check(name, False, str(exc), time.perf_counter() - start)
    return Check(name, True, detail, time.perf_counter() - start)


def doctor(components: Components) -> list[Check]:
    """Check each part with a real operation: data directory, ledger, embedder, index, LLM."""
    config = components.config

    def data_dir() -> str:
        probe = config.data_dir / ".memorch-write-test"
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(
                f"cannot write to {config.data_dir}: {exc}", suggestion="set MEMORCH_DATA_DIR to a writable directory"
            ) from exc
        return str(config.data_dir)

    def ledger() -> str:
        counts = components.ledger.counts()
        return (
            f"{counts['memories']} memories, {counts['pending_index']} index rows and "
            f"{counts['pending_inference']} messages awaiting reprocess"
        )

    def embedder() -> str:
        return f"{components.embedder.model_id}, {components.dimension()} dimensions"

    def vectors() -> str:
        return f"{components.vectors.count()} vectors"

    checks = [
        _timed("data directory", data_dir),
        _timed("ledger (SQLite)", ledger),
        _timed("embedder", embedder),
        _timed("vector index (LanceDB)", vectors),
    ]
    if config.llm_enabled:

        def llm() -> str:
            message = [{"role": "user", "content": 'Reply with exactly this JSON object: {"ok": true}'}]
            components.llm.structured(message, _Ping)
            return ", ".join(components.llm.models)

        checks.append(_timed("LLM", llm))
    else:
        checks.append(Check("LLM", True, "none configured: add() stores text verbatim (set MEMORCH_LLM_MODEL)", 0.0))
    return checks
