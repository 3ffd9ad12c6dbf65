"""Where a search spends its time as a store grows, under the soak's mix of operations.

    uv run python bench/search_stages.py [--ops 20000] [--base 0] [--window 2000]

Runs ``bench/soak.py``'s single-client mix (add, search, update, delete, get, list, one user,
``infer=False``) in-process on a fresh store, after ``--base`` plain adds, and times each stage of
a search by wrapping the functions that do it: the flush of the index rows still owed
(``Store.searchable``), the embedder's calls (a search's query, and each add's text too), the
vector signal from the held embeddings
(``NearestCache.top``) and the BM25 query (``LanceVectorIndex.text_search``). Also times each
background maintenance pass. Prints p50/p95 per stage for every ``--window`` operations with the
live memory count, so the late windows can be set against the early ones; then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from add_stages import timed  # beside this script: its directory is on sys.path
from soak import WORDS, pct

STAGES = ("search", "flush", "embed", "vector", "text", "maintenance")


def instrument(memory: Any, totals: dict[str, list[float]]) -> None:
    from memorch.storage import vectors

    store, parts = memory.engine.store, memory.engine.components
    store.searchable = timed(totals, "flush", store.searchable)
    parts.embedder.embed = timed(totals, "embed", parts.embedder.embed)
    held = store.nearest_cache()
    held.top = timed(totals, "vector", held.top)
    parts.vectors.text_search = timed(totals, "text", parts.vectors.text_search)
    index_class = vectors.LanceVectorIndex
    index_class._maintain_pass = timed(totals, "maintenance", index_class._maintain_pass)


def text(rng: random.Random, n: int) -> str:
    return f"soak note {n}: " + " ".join(rng.choices(WORDS, k=8))


async def run(ops: int, base: int, window: int) -> list[dict[str, Any]]:
    from memorch import AsyncMemory, MemoryConfig

    rng, live, made, rows = random.Random(2026), [], 0, []
    totals: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        memory = AsyncMemory(MemoryConfig(data_dir=Path(tmp), graph="off"))
        instrument(memory, totals)

        async def add() -> None:
            nonlocal made
            made += 1
            out = await memory.add(text(rng, made), user_id="soak", infer=False)
            live.extend(r["id"] for r in out["results"] if r["event"] == "ADD")

        for _ in range(base):
            await add()
        totals.clear()
        for n in range(1, ops + 1):
            roll = rng.random()
            if roll < 0.35 or len(live) < 5:
                await add()
            elif roll < 0.60:
                started = time.perf_counter()
                await memory.search(" ".join(rng.choices(WORDS, k=3)), user_id="soak")
                totals["search"].append((time.perf_counter() - started) * 1000)
            elif roll < 0.72:
                made += 1
                await memory.update(rng.choice(live), text(rng, made))
            elif roll < 0.82:
                await memory.delete(live.pop(rng.randrange(len(live))))
            elif roll < 0.94:
                await memory.get(rng.choice(live))
            else:
                await memory.get_all(user_id="soak", limit=20)
            if n % window == 0:
                rows.append(report(n, len(live), totals))
                totals.clear()
        await memory.close()
    return rows


def report(n: int, live: int, totals: dict[str, list[float]]) -> dict[str, Any]:
    row: dict[str, Any] = {"ops": n, "live": live}
    for stage in STAGES:
        values = totals.get(stage, [])
        row[stage] = [round(statistics.median(values), 1), round(pct(values, 0.95), 1)] if values else None
    parts = "  ".join(f"{s} {row[s][0]}/{row[s][1]}" for s in STAGES if row[s])
    print(f"{n:>6} ops, {live:>5} live (p50/p95 ms): {parts}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=20_000, help="operations of the mix")
    parser.add_argument("--base", type=int, default=0, help="plain adds before the mix")
    parser.add_argument("--window", type=int, default=2_000, help="operations per printed line")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.ops, args.base, args.window))))


if __name__ == "__main__":
    main()
