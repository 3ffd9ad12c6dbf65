"""Embedders: the bundled local model (default, offline) or any LiteLLM embedding model.

Vectors are float32 and L2-normalized, so cosine similarity is a dot product. ``CachedEmbedder``
puts an in-memory LRU and the ledger's persistent cache (keyed by model and text hash) in front
of any embedder, so re-adding or re-searching the same text never runs the model again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from memorch.errors import ConfigurationError, NetworkError
from memorch.models._static_embedder import STATIC_MODEL_ID

LOCAL_MODEL_ID = "local/all-MiniLM-L6-v2"
INT8_MODEL_ID = "local/all-MiniLM-L6-v2-int8"


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class LocalEmbedder:
    """all-MiniLM-L6-v2 from memorch's package data, run by onnxruntime (see
    ``memorch.models._minilm``); ``quantized``: its int8 model (``local-int8``), a model of its
    own for the store (``EMBEDDER_CHANGED`` guards a switch either way)."""

    def __init__(self, batch_size: int = 32, quantized: bool = False) -> None:
        from memorch.models._minilm import shared_encoder

        self.model_id = INT8_MODEL_ID if quantized else LOCAL_MODEL_ID
        self._encoder = shared_encoder(quantized)
        self._batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder.encode(list(texts), batch_size=self._batch_size)


class LiteLLMEmbedder:
    """Any embedding model LiteLLM can reach (``openai/text-embedding-3-small``, ``ollama/...``)."""

    def __init__(
        self,
        model: str,
        api_base: str | None,
        api_key: str | None,
        batch_size: int,
        call: Callable[..., object] | None = None,
    ) -> None:
        self.model_id = model
        self._api_base = api_base
        self._api_key = api_key
        self._batch_size = batch_size
        # ``call`` lets the resilience layer wrap the request (retries, circuit breaker).
        self._call = call

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        chunks = [list(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)]
        return _normalize(np.concatenate([self._embed_chunk(chunk) for chunk in chunks]))

    def _embed_chunk(self, chunk: list[str]) -> np.ndarray:
        from memorch.models._llm import import_litellm

        litellm = import_litellm()
        kwargs = {"model": self.model_id, "input": chunk, "api_base": self._api_base, "api_key": self._api_key}
        response = self._call(litellm.embedding, **kwargs) if self._call else litellm.embedding(**kwargs)
        data = sorted(response.data, key=lambda item: item["index"])  # type: ignore[attr-defined]
        vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
        if len(vectors) != len(chunk):
            raise NetworkError(
                f"the embedding model returned {len(vectors)} vectors for {len(chunk)} texts",
                error_code="EMBEDDING_BAD_RESPONSE",
                suggestion="check MEMORCH_EMBEDDER and MEMORCH_EMBEDDER_API_BASE",
            )
        return vectors


class VectorCache(Protocol):
    def cached_vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...
    def cache_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None: ...


class CachedEmbedder:
    """LRU in memory, then the persistent cache, then the model (one batched call for misses).

    New vectors are not written to the persistent cache here: they wait in ``take_unsaved`` for
    the next ledger transaction, so embedding costs no commit of its own and a search writes
    nothing. At most ``lru_size`` wait; past that the oldest are dropped (a cache entry can always
    be recomputed).
    """

    def __init__(self, inner: Embedder, store: VectorCache | None, lru_size: int = 4096) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        # An embedder that is cheaper than a SQLite lookup (the static tier) skips the
        # persistent cache; the in-memory LRU still serves repeated texts.
        self._store = store if getattr(inner, "persistent_cache", True) else None
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lru_size = lru_size
        self._unsaved: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.model_calls = 0  # texts actually sent to the model; read by tests and benchmarks

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        hashes = [text_hash(t) for t in texts]
        found = self._from_lru(hashes)
        missing = [h for h in dict.fromkeys(hashes) if h not in found]
        if missing and self._store is not None:
            stored = self._store.cached_vectors(self.model_id, missing)
            found.update(stored)
            self._remember(stored)
            missing = [h for h in missing if h not in stored]
        if missing:
            text_of = dict(zip(hashes, texts, strict=True))
            computed = self.inner.embed([text_of[h] for h in missing])
            fresh = dict(zip(missing, computed, strict=True))
            self.model_calls += len(missing)
            found.update(fresh)
            self._remember(fresh, unsaved=self._store is not None)
        return np.stack([found[h] for h in hashes]) if hashes else np.zeros((0, 0), np.float32)

    def _from_lru(self, hashes: list[str]) -> dict[str, np.ndarray]:
        with self._lock:
            out = {}
            for h in hashes:
                if h in self._lru:
                    self._lru.move_to_end(h)
                    out[h] = self._lru[h]
            return out

    def _remember(self, vectors: dict[str, np.ndarray], unsaved: bool = False) -> None:
        with self._lock:
            for h, v in vectors.items():
                self._lru[h] = v
                self._lru.move_to_end(h)
                if unsaved:
                    self._unsaved[h] = v
            while len(self._lru) > self._lru_size:
                self._lru.popitem(last=False)
            while len(self._unsaved) > self._lru_size:
                self._unsaved.popitem(last=False)

    def take_unsaved(self) -> tuple[str, dict[str, np.ndarray]]:
        """(model, vectors) computed since the last call, for the persistent cache."""
        with self._lock:
            taken, self._unsaved = dict(self._unsaved), OrderedDict()
        return self.model_id, taken


# The models that ship with memorch, as a store records them.
BUNDLED_MODEL_IDS = (LOCAL_MODEL_ID, INT8_MODEL_ID, STATIC_MODEL_ID)


def resolve_auto(recorded: str | None) -> str:
    """``MEMORCH_EMBEDDER=auto`` (the default) for a store that recorded ``recorded`` as its
    model: that model if it is one memorch ships (so a store keeps the vectors it has), else the
    int8 MiniLM (a new store; a store of a remote model is then refused with
    ``EMBEDDER_CHANGED``, as before). The int8 model because it embeds about twice as fast on
    CPUs with int8 dot-product instructions for the same recall (docs/embeddings.md)."""
    return recorded if recorded in BUNDLED_MODEL_IDS else INT8_MODEL_ID


def make_embedder(
    name: str,
    api_base: str | None,
    api_key: str | None,
    batch_size: int,
    call: Callable[..., object] | None = None,
    data_dir: Path | None = None,
) -> Embedder:
    """The embedder factory: ``local`` (bundled model), ``local-int8`` (its int8 matrices),
    ``static`` (its fast static tier, see ``memorch.models._static_embedder``) or a LiteLLM
    embedding model string."""
    if name in ("local", LOCAL_MODEL_ID, "all-MiniLM-L6-v2"):
        return LocalEmbedder(batch_size=batch_size)
    if name in ("local-int8", INT8_MODEL_ID):
        return LocalEmbedder(batch_size=batch_size, quantized=True)
    if name in ("static", STATIC_MODEL_ID):
        from memorch.models._static_embedder import StaticEmbedder

        return StaticEmbedder(None if data_dir is None else data_dir / "static-minilm")
    if "/" not in name:
        raise ConfigurationError(
            f"unknown embedder {name!r}",
            error_code="UNKNOWN_EMBEDDER",
            suggestion="set MEMORCH_EMBEDDER to 'auto', 'local', 'local-int8', 'static' or a LiteLLM model such as "
            "'openai/text-embedding-3-small'",
        )
    return LiteLLMEmbedder(name, api_base, api_key, batch_size, call=call)
