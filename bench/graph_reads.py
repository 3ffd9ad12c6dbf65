"""Multi-hop graph reads: each replica's Kuzu copy against the same question asked of the ledger.

    uv run --extra dev python bench/graph_reads.py [--relations 20000] [--entities 2000]
        [--pg-url postgresql://postgres@127.0.0.1:54329/postgres]

Why each replica keeps a Kuzu copy (README "Running several replicas") rather than answering
``memorch graph ENTITY --hops N`` from the ledger's relations table: this measures both on the
same data. One user's memories each state one relation between two entities of a pool (random,
seeded); then ``--queries`` neighbourhoods of random entities, at 1, 2 and 3 hops, are read
through ``AsyncMemory.graph`` (the Kuzu copy, in its child process) and through one SQL query on
the ledger (a recursive CTE over the indexed ``source_norm`` / ``destination_norm`` columns: the
entities within N-1 hops, then every relation touching them, at most 100 as the graph returns).
The ledger is SQLite, or PostgreSQL with ``--pg-url`` (a fresh schema, dropped afterwards).
Synthetic vectors: the embedder is not measured. Prints p50/p95 per hop count and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RELATIONSHIPS = ("knows", "lives_in", "works_at", "likes", "owns")
LEDGER_HOOD = """
WITH RECURSIVE near(n, depth) AS (
    SELECT CAST(? AS TEXT), 0
    UNION
    SELECT CASE WHEN r.source_norm = near.n THEN r.destination_norm ELSE r.source_norm END, near.depth + 1
    FROM relations r JOIN near ON r.user_id = ? AND (r.source_norm = near.n OR r.destination_norm = near.n)
    WHERE near.depth < ?
)
SELECT DISTINCT r.source, r.relationship, r.destination FROM relations r
WHERE r.user_id = ? AND (r.source_norm IN (SELECT n FROM near) OR r.destination_norm IN (SELECT n FROM near))
LIMIT 100
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fill(memory: Any, relations: int, entities: int, rng: random.Random) -> None:
    """Write the memories straight through the store, as inference would (no model)."""
    from memorch.records import new_record, utc_now
    from memorch.storage.base import Change, Scope

    names = [f"Entity{i}" for i in range(entities)]
    vectors = np.random.default_rng(7).standard_normal((relations, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store, now = memory.store, utc_now()
    for start in range(0, relations, 1000):
        changes = []
        for i in range(start, min(start + 1000, relations)):
            a, b = rng.sample(names, 2)
            rel = {"source": a, "relationship": rng.choice(RELATIONSHIPS), "destination": b}
            record = new_record(f"{a} {rel['relationship']} {b}", vectors[i], Scope("u"), {}, now)
            changes.append(Change("ADD", record, relations=(rel,)))
        with store.writing():
            store.commit(changes)


def ledger_hood(memory: Any, name: str, hops: int) -> list[Any]:
    from memorch.storage.base import normalize_entity

    ledger = memory.components.ledger
    with ledger._read() as conn:  # the bench's own query; the product reads through Kuzu
        return conn.execute(LEDGER_HOOD, (normalize_entity(name), "u", hops - 1, "u")).fetchall()


async def run(args: argparse.Namespace, url: str | None) -> None:
    from memorch import AsyncMemory, MemoryConfig

    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        memory = AsyncMemory(MemoryConfig(data_dir=Path(tmp), graph="on", ledger_url=url or ""))
        try:
            started = time.perf_counter()
            await memory.write(fill, memory, args.relations, args.entities, rng)
            await memory.flush_graph()
            print(
                f"{args.relations} relations among {args.entities} entities, written and graphed in "
                f"{time.perf_counter() - started:.1f} s ({'PostgreSQL' if url else 'SQLite'} ledger)"
            )
            picks = [f"Entity{rng.randrange(args.entities)}" for _ in range(args.queries)]
            for hops in (1, 2, 3):
                kuzu, sql, sizes = [], [], []
                for name in picks:
                    t = time.perf_counter()
                    found = await memory.graph(name, user_id="u", hops=hops)
                    kuzu.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    rows = await asyncio.to_thread(ledger_hood, memory, name, hops)
                    sql.append((time.perf_counter() - t) * 1000)
                    sizes.append((len(found["relations"]), len(rows)))
                k50, s50 = statistics.median(kuzu), statistics.median(sql)
                print(
                    f"hops {hops}: kuzu copy p50 {k50:.2f} ms p95 {pct(kuzu, 0.95):.2f} ms | ledger SQL p50 "
                    f"{s50:.2f} ms p95 {pct(sql, 0.95):.2f} ms | ratio ledger/kuzu p50 {s50 / k50:.2f} | "
                    f"relations returned (median) {statistics.median(a for a, _ in sizes):.0f} / "
                    f"{statistics.median(b for _, b in sizes):.0f}"
                )
        finally:
            await memory.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--relations", type=int, default=20_000)
    parser.add_argument("--entities", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    if args.pg_url:
        import os

        from tests.pg_helpers import fresh_schema

        os.environ["MEMORCH_TEST_PG_URL"] = args.pg_url
        with fresh_schema() as url:
            asyncio.run(run(args, url))
    else:
        asyncio.run(run(args, None))


if __name__ == "__main__":
    main()
