"""The bundled MiniLM in float (``local``) against its int8 matrices (``local-int8``): texts/s on
LOCOMO and LongMemEval turns, one query's time, and how far apart their vectors are.

    python bench/int8_speed.py [--n 400] [--rounds 3]

Both models run in this process on the same texts, alternating round by round (so a change in
the machine's load hits both alike); each line is one round, the ratio int8 / float. The CPU's
int8 dot-product instructions decide most of the gain (``avx512_vnni`` / ``avx_vnni`` in
/proc/cpuinfo, printed first): docs/embeddings.md has the figures. Recall is measured by the
retrieval benchmarks with ``--embedder local-int8`` (bench/locomo.py, bench/longmemeval.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench"


def texts(n: int) -> dict[str, list[str]]:
    """The first ``n`` turns of each dev file, as the retrieval benchmarks store them."""
    import longmemeval
    from locomo_protocol import load, turns

    short = [turn.content for sample in load(SHARED / "locomo_dev.json") for turn in turns(sample)]
    long = [turn.text for question in load(longmemeval.DEFAULT)[:3] for turn in longmemeval.turns(question)]
    return {"LOCOMO turns": short[:n], "LongMemEval turns": long[:n]}


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags.split()]
    return " ".join(found) or "none of avx2/avx512/vnni"


QUERY = ["How many days ago did I meet Emma?"]


def query_p50_ms(model: Any, rounds: int) -> float:
    """Median time of one short query through ``model.encode``, after a warm-up."""
    model.encode(QUERY)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.encode(QUERY)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    from memorch.models._minilm import MiniLMEncoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU flags: {cpu_flags()}")
    models = {"float": MiniLMEncoder(), "int8": MiniLMEncoder(quantized=True)}
    for name, batch in texts(args.n).items():
        vectors = {}
        for round_ in range(1, args.rounds + 1):
            rates = {}
            for kind, model in models.items():
                start = time.perf_counter()
                vectors[kind] = model.encode(batch)
                rates[kind] = len(batch) / (time.perf_counter() - start)
            print(
                f"{name} round {round_}: float {rates['float']:.1f}/s  int8 {rates['int8']:.1f}/s  "
                f"x{rates['int8'] / rates['float']:.2f}"
            )
        cosines = (vectors["float"] * vectors["int8"]).sum(1)
        print(
            f"{name}: cosine int8 to float mean {cosines.mean():.4f}, 5th percentile "
            f"{np.percentile(cosines, 5):.4f}, min {cosines.min():.4f}"
        )
    for kind, model in models.items():
        print(f"one query, {kind}: p50 {query_p50_ms(model, 50):.2f} ms")


if __name__ == "__main__":
    main()
