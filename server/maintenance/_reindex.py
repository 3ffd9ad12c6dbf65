"""Whole-store maintenance: rebuilding indexes from the ledger, and health checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from memorch.engine._components import Components
from memorch.engine._index_health import probe_data_dir, probe_graph, probe_ledger, probe_vectors, refuse_lost_ledger
from memorch.engine._store import GRAPH, GRAPH_BATCH, INDEX_UNAVAILABLE, REPLAY_BATCH, VECTORS, Store
from memorch.errors import MemoryError, StorageError, ValidationError
from memorch.models._llm import LLMOutputError
from memorch.results import MaintainResult, ReindexResult
from memorch.storage.base import Scope
from memorch.storage.sql import chunks

if TYPE_CHECKING:
    from memorch.engine._engine import Engine

BATCH = 256
log = logging.getLogger("memorch")


async def rebuild(
    engine: Engine,
    *,
    re_embed: bool = False,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> ReindexResult:
    """``reindex`` on the engine's writer, with the graph's debouncer held off meanwhile; first
    (unless ``force``, for a ledger the index is ahead of) expired memories are purged and old
    history text removed (``Engine.maintain``), so the rebuilt indexes never hold them. That
    sweep also finishes purges left unfinished, which needs the index: when the index is what is
    broken (``INDEX_UNAVAILABLE``, what a reindex repairs), it runs after the rebuild instead."""
    swept = None if force else await _sweep_unless_the_index_is_broken(engine)
    async with engine.graph_sync.lock:
        result = await engine.write(reindex, engine.store, re_embed, progress, force)
    if swept is None and not force:
        swept = await engine.maintain()
    if swept is not None and (swept["expired"] or swept["history_events_cleared"]):
        result["expired"], result["history_events_cleared"] = swept["expired"], swept["history_events_cleared"]
    return result


async def _sweep_unless_the_index_is_broken(engine: Engine) -> MaintainResult | None:
    try:
        return await engine.maintain()
    except StorageError as exc:
        if exc.error_code not in INDEX_UNAVAILABLE:
            raise
        log.warning("maintenance could not reach the broken index; it runs after the rebuild (%s)", exc.error_code)
        return None


def reindex(
    store: Store, re_embed: bool, progress: Callable[[int, int], None] | None, force: bool = False
) -> ReindexResult:
    """Rebuild the vector index and the graph from the ledger (``storage.rebuild``: each is built
    beside the live copy and swapped in when complete, so a failure keeps the old one; a vector
    index on object storage, shared by replicas, is refilled in place instead, see
    ``_refill_shared_vectors``); with ``re_embed`` recompute embeddings first. Refuses
    (``LEDGER_BEHIND_INDEX``) when the index holds more memories than the ledger, unless ``force``."""
    parts = store.parts
    ledger = parts.ledger
    report = progress or (lambda done, total: None)
    if parts.read_only:
        from memorch.storage.readonly import read_only_error

        raise read_only_error("rebuild the indexes", store.config.data_dir)
    with store.locked():  # not ``writing``: its replay and health check are what this replaces
        if not force:
            refuse_lost_ledger(parts)
        if re_embed and parts.vectors_remote:
            _refuse_new_dimension(parts)
        ids = ledger.ids(Scope())
        total = len(ids) * (2 if re_embed else 1)
        if re_embed:
            for start in range(0, len(ids), BATCH):
                records = ledger.get_many(ids[start : start + BATCH])
                vectors = parts.embedder.embed([r.memory for r in records])
                ledger.set_embeddings({r.id: v for r, v in zip(records, vectors, strict=True)})
                report(min(start + BATCH, len(ids)), total)
            parts.forget_embedding_model()
        done = len(ids) if re_embed else 0
        failures: dict[str, StorageError] = {}
        try:
            _rebuild_vectors(store, ids, lambda n: report(done + n, total))
        except StorageError as exc:
            failures["vector index"] = exc
        if store.config.graph_copy:
            try:
                _rebuild_graph(store, ids)
            except StorageError as exc:
                failures["graph"] = exc
        if not failures:
            store.mark_ready()
    if failures:
        raise _partial(failures)
    return ReindexResult(memories=len(ids), re_embedded=re_embed)


def _rebuild_vectors(store: Store, ids: list[str], progress: Callable[[int], None]) -> None:
    from memorch.storage.rebuild import build_vectors

    parts, ledger = store.parts, store.parts.ledger
    if parts.vectors_remote:
        _refill_shared_vectors(store, progress)
        return
    tokens = ledger.outbox_tokens(VECTORS, ledger.pending(VECTORS))  # read before the state it covers
    batches = (ledger.get_many(batch) for batch in chunks(ids, REPLAY_BATCH))
    dimension = parts.dimension()
    parts.release_vectors()  # this process's handle must not outlive the copy it points at
    build_vectors(parts.vectors_path, dimension, batches, len(ids), progress)
    ledger.clear_pending(VECTORS, tokens)


def _refill_shared_vectors(store: Store, progress: Callable[[int], None]) -> None:
    """The vector index on object storage (several replicas): there is no atomic rename to swap
    a rebuilt copy in, and the other replicas have the dataset open, so it is refilled in place.
    Every memory is queued and its row written again from the ledger (claimed in batches, so
    other replicas' sweeps can share the work); rows the ledger no longer has are deleted last.
    The index is never dropped: a failure half-way leaves old rows plus queued work, which any
    replica's next sweep finishes."""
    from memorch.engine._replica_claims import work_owed_vectors

    parts, ledger = store.parts, store.parts.ledger
    ledger.mark_all_pending(VECTORS)
    progress(work_owed_vectors(store, VECTORS, REPLAY_BATCH))
    # Read the index first: a row it holds was committed to the ledger before it was written, so
    # an id absent from the ledger read afterwards was deleted there (or lost with the ledger,
    # which ``force`` accepted), never added by another replica meanwhile.
    indexed = parts.vectors.all_ids()
    parts.vectors.delete(sorted(indexed - set(ledger.ids(Scope()))))


def _refuse_new_dimension(parts: Components) -> None:
    """Re-embedding into a shared (object-storage) index cannot change the vector size: that
    table would have to be replaced under the other replicas, with no copy to fall back on."""
    from memorch.engine._components import META_EMBED_DIM

    stored = parts.ledger.get_meta(META_EMBED_DIM)
    new = int(parts.embedder.embed(["dimension probe"]).shape[1])
    if stored is not None and int(stored) != new:
        raise ValidationError(
            f"the shared vector index holds {stored}-d vectors and the embedder makes {new}-d ones; "
            "re-embedding in place cannot change the size",
            error_code="REINDEX_UNSUPPORTED",
            details={"stored": int(stored), "embedder": new},
            suggestion="point MEMORCH_VECTOR_URI at a new, empty prefix and run `memorch reindex --re-embed` on one "
            "replica (then on the others), or set MEMORCH_EMBEDDER back",
        )


def _rebuild_graph(store: Store, ids: list[str]) -> None:
    from memorch.storage.graph import GraphWork
    from memorch.storage.rebuild import build_graph

    parts, ledger = store.parts, store.parts.ledger
    tokens = ledger.outbox_tokens(GRAPH, ledger.pending(GRAPH))

    def batches() -> Iterator[list[GraphWork]]:
        for batch in chunks(ids, GRAPH_BATCH):
            relations = ledger.relations_for(batch)
            records = [r for r in ledger.get_many(batch) if relations.get(r.id)]
            yield [GraphWork(r.id, r.scope, relations[r.id], r.updated_at) for r in records]

    build_graph(parts.graph_path, parts.graph_lock_path, batches())
    ledger.clear_pending(GRAPH, tokens)


def _partial(failures: dict[str, StorageError]) -> StorageError:
    """One error for what could not be rebuilt; each failed index kept its previous copy."""
    reasons = "; ".join(f"{what}: {exc.message}" for what, exc in failures.items())
    return StorageError(
        f"reindex could not rebuild the {' or the '.join(failures)} ({reasons}); each kept its previous copy",
        error_code="REINDEX_FAILED",
        details={what: exc.error_code for what, exc in failures.items()},
        suggestion=next(iter(failures.values())).next_step,
    )


class _Ping(BaseModel):
    ok: bool


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float
    error: dict[str, Any] | None = None  # a failure's typed fields, as every error has them


def _timed(name: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail = probe()
    except MemoryError as exc:
        return Check(name, False, str(exc), time.perf_counter() - start, exc.to_dict())
    return Check(name, True, detail, time.perf_counter() - start)


def doctor(components: Components) -> list[Check]:
    """Check each part with a real operation: data directory, ledger, embedder, vector index,
    graph, LLM. Nothing is created or repaired here (see ``index_health``)."""
    config = components.config

    def embedder() -> str:
        return f"{components.embedder.model_id}, {components.dimension()} dimensions"

    checks = [
        _timed("data directory", lambda: probe_data_dir(components)),
        _timed("ledger (PostgreSQL)" if config.ledger_url else "ledger (SQLite)", lambda: probe_ledger(components)),
        _timed("embedder", embedder),
        _timed("vector index (LanceDB)", lambda: probe_vectors(components)),
    ]
    if config.graph_enabled:
        checks.append(_timed("graph (Kuzu)" if config.graph_copy else "graph", lambda: probe_graph(components)))
    if config.llm_enabled:

        def llm() -> str:
            message = [{"role": "user", "content": 'Reply with exactly this JSON object: {"ok": true}'}]
            try:
                components.llm.structured(message, _Ping)
            except LLMOutputError as exc:  # "missing 'ok'" named a question the reader never saw
                exc.message = f'asked to reply with the JSON object {{"ok": true}}: {exc.message}'
                raise
            return ", ".join(components.llm.models)

        checks.append(answered := _timed("LLM", llm))
        # How the reply schema travels, as the probe found it ("enforced (json_schema)", "JSON mode only, ...").
        form = _timed("structured output", components.llm.structure_report)
        if not answered.ok and form.ok:  # what the server says it enforces, not seen in a reply
            form = Check(form.name, True, f"{form.detail} (unconfirmed: the LLM check failed)", form.seconds)
        checks.append(form)
    else:
        checks.append(Check("LLM", True, "none configured: add() stores text verbatim (set MEMORCH_LLM_MODEL)", 0.0))
    return checks
