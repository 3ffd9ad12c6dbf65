"""The bundled embedder: same vectors as sentence-transformers, offline, cached."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memorch.embeddings import CachedEmbedder, LocalEmbedder
from memorch.storage.history import SQLiteLedger

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


def test_numpy_forward_pass_reproduces_reference_vectors() -> None:
    data = json.loads(REFERENCE.read_text())
    ours = LocalEmbedder().embed(data["sentences"])
    reference = np.array(data["vectors"], dtype=np.float32)
    cosines = (ours * reference).sum(axis=1)
    assert ours.shape == (len(data["sentences"]), 384)
    assert cosines.min() >= 0.99999, cosines


def test_vectors_are_normalized_and_batch_independent() -> None:
    embedder = LocalEmbedder(batch_size=2)
    texts = ["one", "a much longer sentence about peanuts and allergies", "three words here"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_cache_avoids_recomputing_in_memory_and_across_instances(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "db.sqlite")
    first = CachedEmbedder(LocalEmbedder(), ledger, lru_size=8)
    a = first.embed(["alpha", "beta", "alpha"])
    assert first.model_calls == 2  # the repeated text is embedded once
    first.embed(["beta"])
    assert first.model_calls == 2
    second = CachedEmbedder(LocalEmbedder(), ledger, lru_size=8)  # fresh LRU, same ledger
    b = second.embed(["alpha", "beta"])
    assert second.model_calls == 0
    np.testing.assert_allclose(a[:2], b, atol=1e-7)
    ledger.close()
