"""Import throughput and search latency at 10k-1M memories.

    python bench/scale.py [--sizes 10000,100000] [--queries 200] [--embed-sample 512]

Memories are synthetic but varied sentences ("<name> <verb> <object> in <place> <when>") for
many users. To isolate what the store costs, import and search use **precomputed synthetic
vectors** (random unit vectors, labelled as such in the output); the real embedder's throughput
and per-query time are measured separately on a sample and reported next to them. For each size
two layouts are measured: one user among many (100 memories per user) and one large user.
Reports batched import throughput (memories/s, store only), index maintenance time (compaction,
FTS, and the ANN index past 50k rows), search p50/p95 excluding query embedding, and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "Dan",
    "Eve",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Wendy",
    "Zoe",
]
VERBS = [
    "bought",
    "sold",
    "painted",
    "visited",
    "loves",
    "hates",
    "borrowed",
    "repaired",
    "studied",
    "photographed",
    "cooked",
    "planted",
    "found",
    "lost",
]
OBJECTS = [
    "a red bicycle",
    "an old piano",
    "the garden shed",
    "a sourdough starter",
    "two tickets",
    "a vintage camera",
    "the blue notebook",
    "a kayak",
    "an oak table",
    "a chess set",
    "the recipe book",
    "a telescope",
]
PLACES = [
    "Lisbon",
    "Oslo",
    "Kyoto",
    "Lima",
    "Nairobi",
    "Toronto",
    "Berlin",
    "Austin",
    "Hanoi",
    "Quito",
    "Porto",
    "Dublin",
]
WHEN = [
    "last week",
    "yesterday",
    "in March",
    "on Sunday",
    "two years ago",
    "this morning",
    "after work",
    "before the trip",
    "during the holidays",
    "at the weekend",
]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    parts = [rng.integers(0, len(x), n) for x in (NAMES, VERBS, OBJECTS, PLACES, WHEN)]
    return [
        f"{NAMES[a]} {VERBS[b]} {OBJECTS[c]} in {PLACES[d]} {WHEN[e]} (note {i})"
        for i, (a, b, c, d, e) in enumerate(zip(*parts, strict=True))
    ]


class PrecomputedEmbedder:
    """Synthetic unit vectors, fixed per text: isolates the store's cost from the model's."""

    model_id = "synthetic/precomputed-384"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(abs(hash(text)) % (2**32))
            v = rng.standard_normal(384).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def measure(size: int, layout: str, queries: int, progress=None) -> dict:
    from memorch import AsyncMemory, MemoryConfig
    from memorch.models._embeddings import CachedEmbedder

    texts = sentences(size)
    per_user = 100 if layout == "many-users" else size
    items = [{"memory": t, "user_id": f"user-{i // per_user}", "metadata": {"i": i}} for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as work:
        memory = AsyncMemory(MemoryConfig(data_dir=Path(work), graph="off"))
        memory.engine.components._embedder = CachedEmbedder(PrecomputedEmbedder(), None, lru_size=1024)
        start = time.perf_counter()
        result = await memory.import_memories(items, progress=progress)
        import_s = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.to_thread(memory.engine.components.vectors.maintain_now)
        maintain_s = time.perf_counter() - start
        rng = np.random.default_rng(1)
        latencies = []
        for q in range(queries):
            user = f"user-{int(rng.integers(0, max(1, size // per_user)))}"
            query = f"{NAMES[q % len(NAMES)]} {VERBS[q % len(VERBS)]} something in {PLACES[q % len(PLACES)]}"
            start = time.perf_counter()
            await memory.search(query, user_id=user, limit=10)
            latencies.append((time.perf_counter() - start) * 1000)
        await memory.close()
    return {
        "size": size,
        "layout": layout,
        "imported": result["imported"],
        "import_memories_per_s_store_only": round(size / import_s, 1),
        "import_s": round(import_s, 1),
        "maintenance_s": round(maintain_s, 1),
        "search_p50_ms": percentile(latencies, 0.5),
        "search_p95_ms": percentile(latencies, 0.95),
    }


def embedder_costs(sample: int) -> dict:
    from memorch.models._embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    texts = sentences(sample, seed=7)
    embedder.embed(texts[:16])
    start = time.perf_counter()
    embedder.embed(texts)
    rate = sample / (time.perf_counter() - start)
    singles = []
    for text in texts[:50]:
        start = time.perf_counter()
        embedder.embed([text])
        singles.append((time.perf_counter() - start) * 1000)
    return {"embedder_sentences_per_s": round(rate, 1), "query_embedding_p50_ms": round(statistics.median(singles), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-sample", type=int, default=512)
    parser.add_argument("--layouts", default="many-users,one-user")
    args = parser.parse_args()
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for layout in args.layouts.split(","):
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task(f"importing {size:,} ({layout})", total=size)
                row = asyncio.run(
                    measure(size, layout, args.queries, lambda done, total, t=task: bar.update(t, completed=done))
                )
            rows.append(row)
            print(
                f"{size:>9,} {layout:>10}: import {row['import_memories_per_s_store_only']:>8,.0f}/s (store only), "
                f"maintenance {row['maintenance_s']} s, search p50 {row['search_p50_ms']} ms "
                f"p95 {row['search_p95_ms']} ms"
            )
    costs = embedder_costs(args.embed_sample)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"embedder: {costs['embedder_sentences_per_s']} sentences/s; query embedding p50 "
        f"{costs['query_embedding_p50_ms']} ms (not included in search times); peak RSS {peak_mb:.0f} MB"
    )
    print(
        json.dumps(
            {
                "vectors": "synthetic, precomputed (store cost only)",
                "rows": rows,
                **costs,
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


if __name__ == "__main__":
    main()
