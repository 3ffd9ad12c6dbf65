"""Where a single verbatim add spends its time: latency p50/p95 and a per-stage breakdown.

    uv run python bench/add_stages.py [../shared/bench/locomo_dev.json] [--adds 400] [--embedder local]

Adds LOCOMO dev turns one by one (``infer=False``, one user per conversation, as
``bench/locomo.py`` does) into a fresh store and times each stage by wrapping the functions that
do it: embedding, the repeat check (ledger lookup by hash), the similar-memory check (a vector
search, plus the commits not indexed yet) and the ledger commit (one fsync'd transaction). What is
left is the rest (planning, thread hand-offs, the event loop). The LanceDB write follows the
answer (``Store.index_owed``, batched), so it is printed apart, per add, with its batch count.
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "bench" / "locomo_dev.json"


def timed(totals: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name].append((time.perf_counter() - started) * 1000)

    return wrapper


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(data: Path, adds: int, embedder: str) -> dict[str, Any]:
    from locomo_protocol import load, turns

    import memorch.engine._operations as operations
    from memorch import AsyncMemory, MemoryConfig

    samples = load(data)
    items = [t for sample in samples for t in turns(sample)][: adds + 20]
    stages: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        memory = AsyncMemory(MemoryConfig(data_dir=Path(tmp), graph="off", embedder=embedder))
        store, parts = memory.engine.store, memory.engine.components
        for warm in items[:20]:  # load the model and open the stores before measuring
            await memory.add(warm.content, user_id=warm.sample_id, metadata=warm.metadata, infer=False)
        parts.embedder.embed = timed(stages, "embedding", parts.embedder.embed)
        operations.find_repeat = timed(stages, "repeat check", operations.find_repeat)
        operations.closest_stored = timed(stages, "similar check", operations.closest_stored)
        parts.ledger.apply = timed(stages, "ledger commit", parts.ledger.apply)
        after: dict[str, list[float]] = defaultdict(list)  # off the add's path: not in its latency
        store.sync_vectors = timed(after, "index write", store.sync_vectors)
        totals = []
        for turn in items[20:]:
            started = time.perf_counter()
            await memory.add(turn.content, user_id=turn.sample_id, metadata=turn.metadata, infer=False)
            totals.append((time.perf_counter() - started) * 1000)
        per_add = {name: sum(values) / len(totals) for name, values in stages.items()}  # adds only
        index_batches = len(after["index write"])
        index_per_add = sum(after["index write"]) / len(totals)
        searches = []
        for turn in items[20:220]:
            started = time.perf_counter()
            await memory.search(turn.text, user_id=turn.sample_id, limit=10)
            searches.append((time.perf_counter() - started) * 1000)
        await memory.close()
    per_add["rest"] = statistics.mean(totals) - sum(per_add.values())
    return {
        "adds": len(totals),
        "add_p50_ms": round(statistics.median(totals), 2),
        "add_p95_ms": round(pct(totals, 0.95), 2),
        "add_mean_ms": round(statistics.mean(totals), 2),
        "stages_mean_ms": {k: round(v, 2) for k, v in per_add.items()},
        "index_write_after_answer_ms_per_add": round(index_per_add, 2),
        "index_batches": index_batches,
        "search_p50_ms": round(statistics.median(searches), 2),
        "search_p95_ms": round(pct(searches, 0.95), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--adds", type=int, default=400)
    parser.add_argument("--embedder", default="local")
    args = parser.parse_args()
    result = asyncio.run(run(args.data, args.adds, args.embedder))
    print(f"add p50 {result['add_p50_ms']} ms, p95 {result['add_p95_ms']} ms (mean {result['add_mean_ms']} ms)")
    for name, ms in result["stages_mean_ms"].items():
        print(f"  {name:<14} {ms:6.2f} ms per add")
    print(
        f"  and after the answer: index write {result['index_write_after_answer_ms_per_add']:.2f} ms per add "
        f"({result['index_batches']} batches for {result['adds']} adds)"
    )
    print(f"search p50 {result['search_p50_ms']} ms, p95 {result['search_p95_ms']} ms", file=sys.stdout)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
