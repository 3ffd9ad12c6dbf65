"""A static embedder derived from the bundled MiniLM: ~100x faster, somewhat less accurate.

Opt-in with ``MEMORCH_EMBEDDER=static`` (never the default). Each WordPiece token gets one fixed
vector: MiniLM's output at that token when it is read alone as ``[CLS] token [SEP]``, weighted
by ``log(1 + token id)`` (BERT's vocabulary is roughly ordered by frequency, so common pieces
count less, as in model2vec's Zipf weighting). A text's vector is the normalized sum of its
tokens' vectors: no attention, no matrix products per text.

Nothing is downloaded: a token's vector is computed from the bundled weights the first time a
text contains it (about 0.9 ms per new token) and kept in ``<data dir>/static-minilm/`` as two
memory-mapped arrays (vectors, and which rows are done), so later runs and other processes
reuse it. A crash between the two writes leaves a row marked not done: it is computed again.

Measured on LOCOMO dev (``bench/locomo.py --embedder static``): recall@10 0.609 against 0.664
with MiniLM and 0.510 for mem0; the import rate is bounded by the store instead of the model
(``bench/import_rate.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

STATIC_MODEL_ID = "local/static-MiniLM-L6-v2"
LEARN_BATCH = 1024


class TokenTable:
    """Per-token vectors, computed on first sight and persisted (when given a directory)."""

    def __init__(self, directory: Path | None, vocab: int, dim: int) -> None:
        self._lock = threading.Lock()
        self.learned = 0  # tokens computed by this instance (the tests read it)
        if directory is None:
            self.vectors = np.zeros((vocab, dim), np.float32)
            self.done = np.zeros(vocab, np.bool_)
            return
        from filelock import FileLock

        if directory.is_dir() and not os.access(directory, os.W_OK):  # a read-only data directory
            self.vectors = _read_array(directory / "vectors.npy", (vocab, dim), np.float32)
            self.done = _read_array(directory / "done.npy", (vocab,), np.bool_)
            return  # tokens learned now stay in memory
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory / "open.lock"), timeout=60):
            self.vectors = _open_array(directory / "vectors.npy", (vocab, dim), np.float32)
            self.done = _open_array(directory / "done.npy", (vocab,), np.bool_)

    def ensure(self, token_ids: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> None:
        missing = token_ids[~self.done[token_ids]]
        if not missing.size:
            return
        with self._lock:
            missing = missing[~self.done[missing]]
            for start in range(0, len(missing), LEARN_BATCH):
                chunk = missing[start : start + LEARN_BATCH]
                self.vectors[chunk] = compute(chunk)
                _flush(self.vectors)
                self.done[chunk] = True  # marked only once the vectors are on disk
                _flush(self.done)
                self.learned += len(chunk)


def _open_array(path: Path, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if path.exists():
        try:
            array = np.load(path, mmap_mode="r+")
            if array.shape == shape and array.dtype == dtype:
                return array
        except (OSError, ValueError):
            pass  # unreadable or from another model: start again (it is only a cache)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def _read_array(path: Path, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A copy in memory of a table that cannot be written (zeros: nothing learned yet)."""
    try:
        array = np.load(path)
        if array.shape == shape and array.dtype == dtype:
            return array
    except (OSError, ValueError):
        pass
    return np.zeros(shape, dtype)


def _flush(array: np.ndarray) -> None:
    if isinstance(array, np.memmap):
        array.flush()


class StaticEmbedder:
    model_id = STATIC_MODEL_ID
    persistent_cache = False  # a vector costs less to compute than to look up in SQLite

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        from memorch.models._minilm import bundled_model_dir, shared_encoder

        self._encoder = shared_encoder()
        # A tokenizer of its own, as tokenizer.json sets it: texts cut at 128 pieces (as the static
        # tier was measured) and padded to 128 with id 0, whose weight log1p(0) is 0.
        self._tokenizer = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
        vocab = self._tokenizer.get_vocab_size()
        self._weights = np.log1p(np.arange(vocab, dtype=np.float32))[:, None]
        self.table = TokenTable(directory, vocab, self._encoder.dimension)

    def _token_vectors(self, token_ids: np.ndarray) -> np.ndarray:
        return self._encoder.token_states(token_ids) * self._weights[token_ids]

    def embed(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        lengths = np.array([len(e.ids) for e in encodings])
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(lengths.sum()))
        self.table.ensure(np.unique(ids), self._token_vectors)
        rows = self.table.vectors[ids]
        out = np.zeros((len(encodings), self._encoder.dimension), np.float32)
        # A slice sum per text: np.add.reduceat over axis 0 was 28x slower (0.98 vs 0.035 s for
        # 4,096 texts).
        start = 0
        for i, length in enumerate(lengths):
            out[i] = rows[start : start + length].sum(0)
            start += length
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
