"""Factories for the stores and models, created lazily on first use.

Nothing heavy is imported until an operation needs it: the MCP server answers ``tools/list``
before LanceDB, LiteLLM or the embedding model is loaded. The ledger is opened first because
it is cheap and is the source of truth; the vector index needs the embedding dimension,
which the ledger remembers from the first embedding ever made.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .config import MemoryConfig
from .errors import ValidationError
from .resilience import Resilience, RetryPolicy

if TYPE_CHECKING:
    from filelock import FileLock

    from memorch.storage.base import Change
    from memorch.storage.graph import KuzuGraph
    from memorch.storage.history import SQLiteLedger
    from memorch.storage.vectors import LanceVectorIndex

    from .embeddings import CachedEmbedder
    from .llm import LLMClient

VECTORS = "vectors"
GRAPH = "graph"
META_EMBED_MODEL = "embedding_model"
META_EMBED_DIM = "embedding_dim"


class Components:
    """Holds the ledger, embedder and indexes of one data directory."""

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._ledger: SQLiteLedger | None = None
        self._embedder: CachedEmbedder | None = None
        self._vectors: LanceVectorIndex | None = None
        self._graph: Any = None
        self._llm: LLMClient | None = None
        self._index_file_lock: FileLock | None = None
        self.replayed = False
        self.resilience = Resilience(
            RetryPolicy(config.llm_max_retries, config.llm_backoff_base, config.llm_backoff_max),
            config.circuit_failure_threshold,
            config.circuit_cooldown,
        )

    @property
    def ledger(self) -> SQLiteLedger:
        with self._lock:
            if self._ledger is None:
                from memorch.storage.history import SQLiteLedger

                self._ledger = SQLiteLedger(self.config.prepare_data_dir() / "memorch.db")
            return self._ledger

    @property
    def embedder(self) -> CachedEmbedder:
        with self._lock:
            if self._embedder is None:
                from .embeddings import CachedEmbedder, make_embedder

                c = self.config
                inner = make_embedder(
                    c.embedder,
                    c.embedder_api_base,
                    c.embedder_api_key,
                    c.embedding_batch_size,
                    call=self.resilience.caller(c.embedder, "MEMORCH_EMBEDDER"),
                    data_dir=c.data_dir,
                )
                self._embedder = CachedEmbedder(inner, self.ledger, c.embedding_cache_size)
            return self._embedder

    @property
    def llm(self) -> LLMClient:
        with self._lock:
            if self._llm is None:
                from .llm import LLMClient

                self._llm = LLMClient(self.config, self.resilience)
            return self._llm

    @property
    def vectors(self) -> LanceVectorIndex:
        with self._lock:
            if self._vectors is None:
                from memorch.storage.vectors import LanceVectorIndex

                dimension = self.dimension()
                with self._index_lock():  # two processes may create the table and its indexes at once
                    self._vectors = LanceVectorIndex(self.config.data_dir / "lance", dimension)
            return self._vectors

    def dimension(self) -> int:
        """The embedding dimension, recorded at first use and checked on every later start."""
        ledger, model = self.ledger, self.embedder.model_id
        stored_model = ledger.get_meta(META_EMBED_MODEL)
        stored_dim = ledger.get_meta(META_EMBED_DIM)
        if stored_model is not None and stored_dim is not None:
            if stored_model != model:
                raise ValidationError(
                    f"this data directory was embedded with {stored_model}, not {model}",
                    error_code="EMBEDDER_CHANGED",
                    details={"stored_model": stored_model, "configured_model": model},
                    suggestion="run `memorch reindex --re-embed` to re-embed every memory with the "
                    "new model, or set MEMORCH_EMBEDDER back",
                )
            return int(stored_dim)
        dim = int(self.embedder.embed(["dimension probe"]).shape[1])
        ledger.set_meta(META_EMBED_MODEL, model)
        ledger.set_meta(META_EMBED_DIM, str(dim))
        return dim

    def forget_embedding_model(self) -> None:
        """Used by ``reindex --re-embed``: the next start records the current model."""
        with self._lock:
            self.ledger.set_meta(META_EMBED_MODEL, self.embedder.model_id)
            self.ledger.set_meta(META_EMBED_DIM, str(int(self.embedder.embed(["dimension probe"]).shape[1])))

    def drop_vectors(self) -> None:
        """Remove the vector index from disk without opening it (``reindex`` rebuilds it)."""
        from memorch.storage.vectors import drop_index

        with self._lock, self._index_lock():
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
            drop_index(self.config.data_dir / "lance")

    @property
    def graph(self) -> KuzuGraph:
        with self._lock:
            if self._graph is None:
                from memorch.storage.graph import KuzuGraph

                d = self.config.data_dir
                self._graph = KuzuGraph(d / "graph.kuzu", d / "graph.lock")
            return self._graph

    def write(self, changes: list[Change]) -> None:
        """The ledger transaction for ``changes``, owing index work to each derived index."""
        self.ledger.apply(changes, [VECTORS], [GRAPH] if self.config.graph_enabled else [])

    def index_targets(self) -> list[str]:
        return [VECTORS, GRAPH] if self.config.graph_enabled else [VECTORS]

    def _index_lock(self) -> FileLock:
        # Two processes on one data directory take turns writing the derived indexes. One
        # instance per process: it is reentrant in a thread, while separate instances on the
        # same file would block each other.
        with self._lock:
            if self._index_file_lock is None:
                from filelock import FileLock

                self.config.prepare_data_dir()
                self._index_file_lock = FileLock(str(self.config.data_dir / "index.lock"), timeout=120)
            return self._index_file_lock

    def sync_vectors(self, ids: list[str]) -> None:
        """Make the vector index match the ledger for ``ids``, then clear their outbox rows."""
        if not ids:
            return
        with self._index_lock():
            tokens = self.ledger.outbox_tokens(VECTORS, ids)  # read before the state it covers
            records = self.ledger.get_many(ids)
            present = {r.id for r in records}
            self.vectors.upsert(records)
            self.vectors.delete([i for i in ids if i not in present])
            self.ledger.clear_pending(VECTORS, tokens)

    def sync_graph(self, ids: list[str]) -> None:
        """Make the graph hold exactly the ledger's relations for ``ids``."""
        if not ids or not self.config.graph_enabled:
            return
        from memorch.storage.graph import GraphWork

        tokens = self.ledger.outbox_tokens(GRAPH, ids)  # read before the state it covers
        records = {r.id: r for r in self.ledger.get_many(ids)}
        relations = self.ledger.relations_for(ids)
        work = [
            GraphWork(
                i,
                records[i].scope if i in records else None,
                relations.get(i, []),
                records[i].updated_at if i in records else "",
            )
            for i in ids
        ]
        self.graph.apply(work)
        self.ledger.clear_pending(GRAPH, tokens)

    def drain_graph(self) -> int:
        """Apply all graph work the ledger owes, in batches (one Kuzu open per batch)."""
        if not self.config.graph_enabled:
            return 0
        pending = self.ledger.pending(GRAPH)
        for start in range(0, len(pending), 500):
            self.sync_graph(pending[start : start + 500])
        return len(pending)

    def replay_pending(self) -> int:
        """Finish vector-index work a crash left behind (idempotent); the graph drains apart."""
        pending = self.ledger.pending(VECTORS)
        for start in range(0, len(pending), 1000):
            self.sync_vectors(pending[start : start + 1000])
        self.replayed = True
        return len(pending)

    def close(self) -> None:
        with self._lock:
            if self._vectors is not None:
                self._vectors.close()
            if self._ledger is not None:
                self._ledger.close()
            self._ledger = self._embedder = self._vectors = self._graph = None
