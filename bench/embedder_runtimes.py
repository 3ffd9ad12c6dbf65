"""The bundled MiniLM on onnxruntime vs the numpy forward pass it replaced, in one process.

    uv run --with safetensors python bench/embedder_runtimes.py [locomo|longmemeval]

The numpy encoder and its float16 safetensors are taken from git (commit 18728d2, the last with
them) into a temporary directory; both encoders then embed the same texts, alternating, three
rounds, and one short query 50 times each. Prints texts/s for both and the ratio, and the largest
difference between their vectors.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench"
OLD = "18728d2"


def old_encoder(work: Path):
    def show(path: str) -> bytes:
        return subprocess.run(["git", "show", f"{OLD}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout

    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (work / name).write_bytes(show(f"server/models/_weights/{name}"))
    (work / "old_minilm.py").write_bytes(show("server/models/_minilm.py"))
    sys.path.insert(0, str(work))
    import old_minilm  # type: ignore[import-not-found]

    return old_minilm.MiniLMEncoder(work)


def texts(kind: str) -> list[str]:
    if kind == "locomo":
        conversation = json.loads((SHARED / "locomo_dev.json").read_text())[0]["conversation"]
        sessions = [v for k, v in conversation.items() if k.startswith("session_") and isinstance(v, list)]
        return [f"{t['speaker']}: {t['text']}" for session in sessions for t in session][:256]
    with gzip.open(SHARED / "longmemeval_s_dev.json.gz") as file:
        data = json.load(file)
    return [f"{t['role']}: {t['content']}" for s in data[0]["haystack_sessions"][:8] for t in s][:64]


def main() -> None:
    from memorch.models._minilm import MiniLMEncoder

    kind = sys.argv[1] if len(sys.argv) > 1 else "locomo"
    batch = texts(kind)
    with tempfile.TemporaryDirectory() as work:
        old, new = old_encoder(Path(work)), MiniLMEncoder()
        diff = np.abs((old.encode(batch[:16]) * new.encode(batch[:16])).sum(1) - 1).max()
        print(f"max |cosine - 1| between the two: {diff:.2e}")
        for _ in range(3):
            start = time.perf_counter()
            old.encode(batch)
            a = time.perf_counter() - start
            start = time.perf_counter()
            new.encode(batch)
            b = time.perf_counter() - start
            rates = f"numpy {len(batch) / a:.1f} texts/s  onnxruntime {len(batch) / b:.1f} texts/s"
            print(f"{kind}: {rates}  ratio {a / b:.2f}")
        for name, encoder in (("numpy", old), ("onnxruntime", new)):
            start = time.perf_counter()
            for _ in range(50):
                encoder.encode(["what is my job?"])
            print(f"one short query, {name}: {(time.perf_counter() - start) * 20:.1f} ms")


if __name__ == "__main__":
    main()
