"""Write server/models/_weights/model_int8.onnx: the bundled MiniLM with int8 matrices, the model
of ``MEMORCH_EMBEDDER=local-int8``.

Run once after ``bench/make_bundled_weights.py`` (the output is committed); it reads the
committed ``model.onnx`` and needs the ``onnx`` package at build time only:

    uv run --with onnx==1.23.2 python bench/make_int8_weights.py

What it does: the float16 matrices of ``model.onnx`` (cast to float32 when a session loads) are
folded into float32 constants, then onnxruntime's dynamic quantization stores every matrix of
the MatMul and Attention operators as int8 with one scale per output channel; activations are
quantized per batch at run time (``DynamicQuantizeLinear``). Embeddings, biases and LayerNorm
stay float32. 45 MB becomes 23 MB. CPUs with int8 dot-product instructions (AVX-512 VNNI,
AVX-VNNI, Arm dotprod) run it about twice as fast as ``model.onnx``; others 10-20 % faster
(docs/embeddings.md). The script then embeds the reference sentences
(tests/data/minilm_reference.json, made by sentence-transformers) and refuses the result if any
is under cosine ``MIN_COSINE`` to the reference.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from make_bundled_weights import min_cosine

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "server" / "models" / "_weights"
MIN_COSINE = 0.98
# The paragraph this script keeps at the end of NOTICE (Apache-2.0 asks modified files to say so).
NOTICE_HEAD = "\nAlso modified by memorch (bench/make_int8_weights.py):"
NOTICE = (
    NOTICE_HEAD + " model_int8.onnx is model.onnx with its MatMul and\n"
    "Attention matrices quantized to int8 (onnxruntime dynamic quantization, one scale per output\n"
    "channel); embeddings, biases and LayerNorm parameters kept in float32.\n"
    "Bundled model_int8.onnx sha256: {sha}\n"
    "Vectors from it match the reference implementation to cosine >= {min_cos:.5f} on the same sentences.\n"
)


def float32_constants(source: Path, target: Path) -> None:
    """``source`` with each ``Cast`` of a float16 constant replaced by the float32 constant, so
    the quantizer sees the matrices as the operators' own weights."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    kept = []
    for node in graph.node:
        tensor = constants.get(node.input[0]) if node.op_type == "Cast" else None
        if tensor is not None and tensor.data_type == onnx.TensorProto.FLOAT16:
            matrix = numpy_helper.to_array(tensor).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(matrix, node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    onnx.save(model, str(target))


def main() -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        float32_constants(WEIGHTS / "model.onnx", work / "model_fp32.onnx")
        for name in ("config.json", "tokenizer.json"):
            (work / name).write_bytes((WEIGHTS / name).read_bytes())
        quantize_dynamic(
            work / "model_fp32.onnx",
            work / "model_int8.onnx",
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The contrib operators (Attention) carry no type the shape inference can read.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        cos = min_cosine(work, quantized=True)
        if cos < MIN_COSINE:
            raise SystemExit(f"the int8 model gives min cosine {cos:.5f} < {MIN_COSINE}: not written")
        converted = (work / "model_int8.onnx").read_bytes()
    (WEIGHTS / "model_int8.onnx").write_bytes(converted)
    notice = (WEIGHTS / "NOTICE").read_text().split(NOTICE_HEAD)[0]
    sha = hashlib.sha256(converted).hexdigest()
    (WEIGHTS / "NOTICE").write_text(notice + NOTICE.format(sha=sha, min_cos=cos))
    print(f"wrote {WEIGHTS / 'model_int8.onnx'} ({len(converted) / 1e6:.1f} MB), min cosine {cos:.5f}")


if __name__ == "__main__":
    main()
