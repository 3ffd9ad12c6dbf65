"""The bundled MiniLM's attention core (12 heads of 32 dimensions) two ways in onnxruntime, on one
thread: its fused float ``MultiHeadAttention`` operator, and the same attention with int8
products (``DynamicQuantizeLinear`` + ``MatMulInteger`` for Q.K and for P.V, softmax in float).
Prints ms per layer for a text of 256 and of 128 pieces, with and without a padding mask, and how
close the int8 form's output is to exact attention (cosine).

    uv run --with onnx==1.23.2 python bench/attention_ops.py

Why: in the int8 model the matrices are int8 but attention's own products are float, and for a
256-piece turn they are the largest part of its time (docs/embeddings.md "Residual LayerNorms").
"""

from __future__ import annotations

import time

import numpy as np

HEADS, HEAD = 12, 32
WIDTH = HEADS * HEAD


def session(nodes: list, inputs: list, initializers: list, opsets: list) -> object:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph(nodes, "attention", inputs, [out], initializers), opset_imports=opsets)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def fused(batch: int, length: int, mask: bool) -> object:
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, length, WIDTH]) for n in "qkv"]
    names = ["q", "k", "v", ""]
    if mask:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, [batch]))
        names.append("lengths")
    node = helper.make_node("MultiHeadAttention", names, ["o"], domain="com.microsoft", num_heads=HEADS)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return session([node], inputs, [], opsets)


def int8_products(batch: int, length: int, mask: bool) -> object:
    from onnx import TensorProto, helper, numpy_helper

    nodes = []

    def add(op: str, ins: list[str], outs: list[str], **attrs: object) -> None:
        nodes.append(helper.make_node(op, ins, outs, **attrs))

    initializers = [
        numpy_helper.from_array(np.array([0, 0, HEADS, HEAD], np.int64), "heads"),
        numpy_helper.from_array(np.array([0, 0, WIDTH], np.int64), "joined"),
        numpy_helper.from_array(np.array(1 / np.sqrt(HEAD), np.float32), "inverse_root"),
    ]
    for x in "qkv":
        add("DynamicQuantizeLinear", [x], [f"{x}8", f"{x}s", f"{x}z"])
        add("Reshape", [f"{x}8", "heads"], [f"{x}h"])
    add("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3])
    add("Transpose", ["kh"], ["kt"], perm=[0, 2, 3, 1])
    add("Transpose", ["vh"], ["vt"], perm=[0, 2, 1, 3])
    add("MatMulInteger", ["qt", "kt", "qz", "kz"], ["qk"])
    add("Cast", ["qk"], ["qkf"], to=TensorProto.FLOAT)
    add("Mul", ["qs", "ks"], ["s1"])
    add("Mul", ["s1", "inverse_root"], ["s2"])
    add("Mul", ["qkf", "s2"], ["logits"])
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, length, WIDTH]) for n in "qkv"]
    if mask:
        inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, [batch, 1, 1, length]))
        add("Add", ["logits", "bias"], ["masked"])
    add("Softmax", ["masked" if mask else "logits"], ["p"], axis=-1)
    add("DynamicQuantizeLinear", ["p"], ["p8", "ps", "pz"])
    add("MatMulInteger", ["p8", "vt", "pz", "vz"], ["pv"])
    add("Cast", ["pv"], ["pvf"], to=TensorProto.FLOAT)
    add("Mul", ["ps", "vs"], ["s3"])
    add("Mul", ["pvf", "s3"], ["context"])
    add("Transpose", ["context"], ["back"], perm=[0, 2, 1, 3])
    add("Reshape", ["back", "joined"], ["o"])
    return session(nodes, inputs, initializers, [helper.make_opsetid("", 17)])


def exact(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    b, n = q.shape[:2]
    q, v = (x.reshape(b, n, HEADS, HEAD).transpose(0, 2, 1, 3) for x in (q, v))
    k = k.reshape(b, n, HEADS, HEAD).transpose(0, 2, 3, 1)
    logits = q @ k / np.sqrt(HEAD)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(b, n, WIDTH)


def ms_per_run(model: object, feed: dict[str, np.ndarray], runs: int = 50) -> float:
    for _ in range(3):
        model.run(None, feed)
    start = time.perf_counter()
    for _ in range(runs):
        model.run(None, feed)
    return (time.perf_counter() - start) / runs * 1000


def main() -> None:
    rng = np.random.default_rng(0)
    for batch, length in ((1, 256), (2, 256), (4, 128)):
        qkv = {x: rng.standard_normal((batch, length, WIDTH), dtype=np.float32) for x in "qkv"}
        reference = exact(qkv["q"], qkv["k"], qkv["v"])
        for mask in (False, True):
            float_feed = {**qkv, **({"lengths": np.full(batch, length, np.int32)} if mask else {})}
            int8_feed = {**qkv, **({"bias": np.zeros((batch, 1, 1, length), np.float32)} if mask else {})}
            quantized = int8_products(batch, length, mask)
            out = quantized.run(None, int8_feed)[0]
            cosine = float((out * reference).sum() / np.linalg.norm(out) / np.linalg.norm(reference))
            fused_ms, int8_ms = ms_per_run(fused(batch, length, mask), float_feed), ms_per_run(quantized, int8_feed)
            print(
                f"{batch} x {length} pieces, mask {'yes' if mask else 'no '}: MultiHeadAttention {fused_ms:.2f} ms "
                f"({batch * HEADS * length * length * HEAD * 4 / fused_ms / 1e6:.0f} GFLOP/s), int8 products "
                f"{int8_ms:.2f} ms (cosine to exact {cosine:.4f}); per layer"
            )


if __name__ == "__main__":
    main()
