"""Factories for the stores and models, created lazily on first use.

Nothing heavy is imported until an operation needs it: the MCP server answers ``tools/list``
before LanceDB, LiteLLM or the embedding model is loaded. The ledger is opened first because
it is cheap and is the source of truth; the vector index needs the embedding dimension,
which the ledger remembers from the first embedding ever made.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memorch.config import MemoryConfig
from memorch.errors import ValidationError
from memorch.models._resilience import Resilience, RetryPolicy

if TYPE_CHECKING:
    from filelock import FileLock

    from memorch.models._embeddings import CachedEmbedder
    from memorch.models._llm import LLMClient
    from memorch.storage.graph_process import GraphProcess
    from memorch.storage.ledger import Ledger
    from memorch.storage.ledger_graph import LedgerGraph
    from memorch.storage.vectors import LanceVectorIndex

META_EMBED_MODEL = "embedding_model"
META_EMBED_DIM = "embedding_dim"


def usable_data_dir(config: MemoryConfig) -> None:
    """``prepare_data_dir``, except that an existing read-only directory holding a ledger is
    accepted: reads work there, and writes raise ``READ_ONLY`` (see ``Components.read_only``)."""
    d = config.data_dir
    if (d / "memorch.db").is_file() and not os.access(d, os.W_OK | os.X_OK):
        return
    config.prepare_data_dir()


def closed_error() -> ValidationError:
    """Any call on a memory after ``close``."""
    return ValidationError(
        "this memory was closed",
        error_code="CLOSED",
        suggestion="open a new Memory or AsyncMemory on the same data directory",
    )


class Components:
    """Holds the ledger, embedder and indexes of one data directory."""

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._ledger: Ledger | None = None
        self._embedder: CachedEmbedder | None = None
        self._vectors: LanceVectorIndex | None = None
        # Kuzu in its child process (one data directory), or the ledger's relations (replicas).
        self._graph: GraphProcess | LedgerGraph | None = None
        self._llm: LLMClient | None = None
        self._index_file_lock: FileLock | None = None
        self._read_only: bool | None = None
        self._closed = False  # for good: ``close`` is the memory's (``release_vectors`` reopens)
        self.resilience = Resilience(
            RetryPolicy(config.llm_max_retries, config.llm_backoff_base, config.llm_backoff_max),
            config.circuit_failure_threshold,
            config.circuit_cooldown,
        )

    def _refuse_if_closed(self) -> None:
        """A store opened after the memory closed would stay open, never closed again."""
        if self._closed:
            raise closed_error()

    @property
    def read_only(self) -> bool:
        """Whether the data directory exists but cannot be written (a read-only mount, no write
        permission): then reads work and writes raise ``READ_ONLY`` (``storage.readonly``)."""
        if self._read_only is None:
            d = self.config.data_dir
            self._read_only = d.is_dir() and not os.access(d, os.W_OK | os.X_OK)
        return self._read_only

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                self._refuse_if_closed()
                if self.config.ledger_url:  # several replicas: README "Running several replicas"
                    from memorch.storage.postgres import PostgresLedger

                    # Not in the data directory, so not read-only with it (the local indexes are).
                    self._ledger = PostgresLedger(self.config.ledger_url)
                elif self.read_only:
                    from memorch.storage.readonly import ReadOnlyLedger

                    self._ledger = ReadOnlyLedger(self.config.data_dir / "memorch.db")
                else:
                    from memorch.storage.history import SQLiteLedger

                    path = self.config.prepare_data_dir() / "memorch.db"
                    self._ledger = SQLiteLedger(path, cache_rows=self.config.embedding_cache_size)
            return self._ledger

    @property
    def embedder(self) -> CachedEmbedder:
        with self._lock:
            if self._embedder is None:
                self._refuse_if_closed()
                from memorch.models._embeddings import CachedEmbedder, make_embedder, resolve_auto

                c = self.config
                name = resolve_auto(self.ledger.get_meta(META_EMBED_MODEL)) if c.embedder == "auto" else c.embedder
                inner = make_embedder(
                    name,
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
                from memorch.models._llm import LLMClient

                self._llm = LLMClient(self.config, self.resilience)
            return self._llm

    @property
    def vectors(self) -> LanceVectorIndex:
        vectors = self._vectors
        if vectors is not None:
            return vectors
        from memorch.engine._shared_stores import open_vector_index

        dimension, ledger = self.dimension(), self.ledger
        # Two processes may create the table and its indexes at once, hence the index lock. It
        # is taken before this object's lock, never while holding it: a writer holds the index
        # lock while it asks for the ledger (this object's lock), and the reverse order made the
        # two threads wait for each other.
        with self.index_lock(), self._lock:
            if self._vectors is None:
                self._refuse_if_closed()
                # On object storage the writers hold no common lock: no unverified-file cleanup.
                writers = None if self.vectors_remote else self.index_lock
                self._vectors = open_vector_index(self.config, ledger, dimension, writers)
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

    def release_vectors(self) -> None:
        """Close this process's handle on the vector index (before a rebuilt one is swapped in);
        the next use opens whatever is then on disk."""
        with self._lock:
            vectors, self._vectors = self._vectors, None
        if vectors is not None:  # outside the lock, as in ``close``
            vectors.close()

    @property
    def vectors_path(self) -> Path:
        """The vector index's local directory (rebuilt beside itself by ``reindex``); with
        ``vectors_remote`` the index is on object storage instead (``vectors_uri``)."""
        uri = self.vectors_uri
        return Path(uri) if isinstance(uri, Path) or not self.vectors_remote else self.config.data_dir / "lance"

    @property
    def vectors_uri(self) -> str | Path:
        """Where the vector dataset lives: ``MEMORCH_VECTOR_URI`` or the data directory."""
        from memorch.engine._shared_stores import vector_uri

        return vector_uri(self.config)

    @property
    def vectors_remote(self) -> bool:
        """The vector index is on object storage (``s3://...``), shared by several replicas."""
        return "://" in str(self.vectors_uri)

    @property
    def graph_path(self) -> Path:
        return self.config.data_dir / "graph.kuzu"

    @property
    def graph_lock_path(self) -> Path:
        return self.config.data_dir / "graph.lock"

    @property
    def graph(self) -> GraphProcess | LedgerGraph:
        with self._lock:
            if self._graph is None and self.config.ledger_url:
                from memorch.storage.ledger_graph import LedgerGraph

                self._graph = LedgerGraph(self.ledger)
            elif self._graph is None:
                self._refuse_if_closed()
                # Kuzu runs in a child process: on a full disk it can abort the process it runs in.
                from memorch.storage.graph_process import GraphProcess

                self._graph = GraphProcess(self.graph_path, self.graph_lock_path, read_only=self.read_only)
            return self._graph

    def index_lock(self) -> AbstractContextManager[Any]:
        # Two processes on one data directory take turns writing the derived indexes. One
        # instance per process: it is reentrant in a thread, while separate instances on the
        # same file would block each other. A read-only directory has no writers to wait for
        # (and no lock file can be created there).
        if self.read_only:
            return nullcontext()
        if self._index_file_lock is not None:  # without the lock: a pass asks while ``close`` holds it
            return self._index_file_lock
        with self._lock:
            if self._index_file_lock is None:
                from filelock import FileLock

                self.config.prepare_data_dir()
                self._index_file_lock = FileLock(str(self.config.data_dir / "index.lock"), timeout=120)
            return self._index_file_lock

    @property
    def opened(self) -> bool:
        """Whether anything has opened the ledger (a close then has work to finish)."""
        return self._ledger is not None

    def loaded_embedder(self) -> CachedEmbedder | None:
        """The embedder if something already made it (a delete need not load a model)."""
        return self._embedder

    def close(self) -> None:
        # The stores are closed outside the lock: the vector index waits for its maintenance
        # pass, which takes ``index_lock`` (and so this lock) to prune.
        with self._lock:
            vectors, ledger, graph = self._vectors, self._ledger, self._graph
            self._ledger = self._embedder = self._vectors = self._graph = None
            self._closed = True
        if vectors is not None:
            vectors.close()
        if ledger is not None:
            ledger.close()
        if graph is not None:
            graph.close()
