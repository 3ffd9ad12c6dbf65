"""LOCOMO recall@k and latency: memorch vs brute-force dense vs mem0, in one run.

    python bench/locomo.py [../shared/bench/locomo_dev.json] [--baseline] [--mem0-python PY] [--embedder static]

The protocol is in ``bench/locomo_protocol.py``. ``--baseline`` adds (a) brute-force cosine in
numpy over the same embeddings and, with ``--mem0-python`` (an interpreter with ``mem0ai``,
``sentence-transformers`` and the CPU torch wheel; never memorch's environment), (b) the mem0
OSS library with the same all-MiniLM-L6-v2 weights, its default local vector store and
``infer=False``, given exactly the same add inputs and queries. The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "bench" / "locomo_dev.json"


def main() -> None:
    from locomo_protocol import load, run_dense_baseline, run_memorch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--mem0-python")
    parser.add_argument("--embedder", default="local", help="MEMORCH_EMBEDDER for memorch (local, local-int8, static)")
    args = parser.parse_args()
    data = load(args.data)
    result = {"memorch": run_memorch(data, progress=lambda m: print(m, file=sys.stderr), embedder=args.embedder)}
    if args.baseline:
        result["dense_bruteforce"] = run_dense_baseline(data)
    if args.baseline and args.mem0_python:
        proc = subprocess.run(
            [args.mem0_python, str(ROOT / "bench" / "_mem0_locomo.py"), str(args.data)],
            capture_output=True,
            text=True,
            check=True,
        )
        result["mem0"] = json.loads(proc.stdout.strip().splitlines()[-1])
        ours, theirs = result["memorch"], result["mem0"]
        result["ratios_memorch_over_mem0"] = {
            key: round(ours[key] / theirs[key], 2)
            for key in ("recall@5", "recall@10", "recall@30", "add_p50_ms", "search_p50_ms")
            if theirs.get(key)
        }
    for name, row in result.items():
        if "recall@10" in row:
            print(
                f"{name:>17}: recall@5 {row['recall@5']:.3f}  @10 {row['recall@10']:.3f}  "
                f"@30 {row['recall@30']:.3f}  search p50 {row['search_p50_ms']} ms  add p50 {row['add_p50_ms']} ms"
            )
    print(json.dumps(result if len(result) > 1 else result["memorch"]))


if __name__ == "__main__":
    main()
