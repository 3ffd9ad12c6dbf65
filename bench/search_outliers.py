"""Search latency right after imports, with Python's full collections timed beside it.

    python bench/search_outliers.py [../shared/bench/longmemeval_s_dev.json.gz] [--questions 24]
        [--vector-cache FILE] [--no-freeze]

For each LongMemEval question (taken round-robin over the types, as ``bench/longmemeval.py``
takes them), its haystack is imported into a scope of one memory, then searched six times: a
warm-up query (the first search after the import), then the question five times. Printed: p50,
p95 and the longest of those searches, and every full (generation-2) garbage collection of over
20 ms that ran meanwhile, with its duration. ``--no-freeze`` leaves out the freeze the process's
first search makes (``server/engine/_heap.py``), to measure what it does; run both, alternating,
on a quiet machine. ``--vector-cache`` reads the model's vectors from a file
(``bench/longmemeval.py``), so the imports take seconds and the searches' own time is measured.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import longmemeval as lme
from locomo_protocol import percentile

LONG_COLLECTION_MS = 20.0


class Collections:
    """Full collections of over ``LONG_COLLECTION_MS``, timed through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.long: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif info["generation"] == 2 and (ms := (time.perf_counter() - self._start) * 1000) > LONG_COLLECTION_MS:
            self.long.append(round(ms, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=lme.DEFAULT)
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--vector-cache", type=Path, help="a SQLite file memoizing the model's vectors")
    parser.add_argument("--no-freeze", action="store_true", help="without the first search's freeze")
    args = parser.parse_args()
    if args.no_freeze:
        import memorch.retrieval._search as search

        search.freeze_loaded = lambda: None
    if args.vector_cache:
        lme.remember_vectors(args.vector_cache)
    with gzip.open(args.data) as f:
        questions = lme.select(json.load(f), args.questions, None)
    collections = Collections()
    first: list[float] = []
    searches: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        system = lme.MemorchSystem(Path(work), "auto")
        collections.long.clear()  # the system's own warm-up (and, with the freeze, its collection)
        try:
            for question in questions:
                system.load(question["question_id"], list(lme.turns(question)))
                asked = lme.iso(question["question_date"])
                for i in range(6):
                    query = question["question"] if i else lme.warm_up_query(question)
                    start = time.perf_counter()
                    system.memory.search(query, user_id=question["question_id"], limit=30, asked_at=asked)
                    (searches if i else first).append((time.perf_counter() - start) * 1000)
        finally:
            system.close()
    result = {
        "freeze": not args.no_freeze,
        "questions": len(questions),
        "search_p50_ms": round(statistics.median(searches), 1),
        "search_p95_ms": percentile(searches, 0.95),
        "search_max_ms": round(max(searches), 1),
        "first_p50_ms": round(statistics.median(first), 1),
        "first_max_ms": round(max(first), 1),
        "full_collections_over_20_ms": collections.long,
    }
    print(
        f"{'with' if result['freeze'] else 'without'} the freeze: {len(searches)} searches p50 "
        f"{result['search_p50_ms']} ms, p95 {result['search_p95_ms']} ms, longest {result['search_max_ms']} ms; "
        f"first after an import p50 {result['first_p50_ms']} ms, longest {result['first_max_ms']} ms; "
        f"full collections over 20 ms: {collections.long or 'none'}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
