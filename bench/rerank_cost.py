"""What a cross-encoder reranker would cost per search on these cores, measured, not estimated.

    python bench/rerank_cost.py [../shared/bench/longmemeval_s_dev.json.gz] [--questions 12] [--top 30,10]

A cross-encoder (the usual reranker: ms-marco-MiniLM-L-6-v2, bge-reranker, flashrank's models)
reads the query and each candidate together, one pass of a BERT per candidate, so its cost is
that of embedding "query + candidate" once per candidate. ms-marco-MiniLM-L-6-v2 has
all-MiniLM-L6-v2's shape exactly (6 layers, hidden 384, 12 heads, intermediate 1536; a one-number
head instead of mean pooling, a rounding error in cost), so the bundled model run on the same
pairs, cut at 256 word pieces as memorch cuts a memory, times that reranker without its weights
(which no package on PyPI ships: flashrank and fastembed download them from Hugging Face at first
use, and memorch fetches nothing at run time). Two-layer rerankers (ms-marco-TinyBERT-L-2) do a
third of the layers' work at the same width: divide by three.

For each question: ``--top`` candidates drawn from its own history (fixed seed; LongMemEval turns,
~1,000 characters, the shape a real assistant's memories have), paired with the question, run
through the int8 and the float model as one call, as a reranker would; each timed after one
warm-up. Prints p50 / p95 per search, by k, against memorch's own search p50 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from locomo_protocol import load
from longmemeval import DEFAULT, select, turns

from memorch.models._minilm import MiniLMEncoder


def pairs(question: dict, k: int, rng: random.Random) -> list[str]:
    history = [t.text for t in turns(question)]
    return [f"{question['question']} {text}" for text in rng.sample(history, min(k, len(history)))]


def timed(model: MiniLMEncoder, batch: list[str]) -> float:
    started = time.perf_counter()
    model.encode(batch)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT))
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--top", default="30,10")
    args = parser.parse_args()
    questions = select(load(args.data), args.questions, None)
    for quantized in (True, False):
        model = MiniLMEncoder(quantized=quantized)
        for k in (int(x) for x in args.top.split(",")):
            rng = random.Random(7)
            batches = [pairs(q, k, rng) for q in questions]
            timed(model, batches[0])  # warm-up: the session's first run allocates
            times = sorted(timed(model, batch) for batch in batches)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            name = "int8" if quantized else "float"
            print(f"{name:5} top {k:2}: rerank p50 {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms per search")


if __name__ == "__main__":
    main()
