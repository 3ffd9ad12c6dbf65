"""Multi-hop graph reads: a Kuzu graph against the same question asked of the ledger.

    uv run --extra dev python bench/graph_reads.py [--relations 20000] [--entities 2000]
        [--pg-url postgresql://postgres@127.0.0.1:54329/postgres]

Why replicas answer ``memorch graph ENTITY --hops N`` from the ledger (``LedgerGraph``) instead of
each keeping a Kuzu copy, and why one process on SQLite keeps Kuzu (docs/replicas.md): this measures
both on the same data. One user's memories each state one relation between two entities of a pool
(random, seeded); then ``--queries`` neighbourhoods of random entities, at 1, 2 and 3 hops, are read
from a Kuzu graph in its child process (``GraphProcess``, as a single process runs it, built from
the ledger's relations) and from the ledger (``neighbourhood``: one recursive query over the indexed
``source_norm`` / ``destination_norm`` columns). The ledger is SQLite, or PostgreSQL with
``--pg-url`` (a fresh schema, dropped afterwards). Synthetic vectors: the embedder is not measured. Prints
p50/p95 per hop count, the ratio, and how many answers were the same set of relations."""

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

from memorch.storage.base import Scope

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RELATIONSHIPS = ("knows", "lives_in", "works_at", "likes", "owns")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fill(memory: Any, relations: int, entities: int, rng: random.Random) -> None:
    """Write the memories straight through the store, as inference would (no model)."""
    from memorch.domain._records import new_record, utc_now
    from memorch.storage.base import Change

    names = [f"Entity{i}" for i in range(entities)]
    vectors = np.random.default_rng(7).standard_normal((relations, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store, now = memory.engine.store, utc_now()
    for start in range(0, relations, 1000):
        changes = []
        for i in range(start, min(start + 1000, relations)):
            a, b = rng.sample(names, 2)
            rel = {"source": a, "relationship": rng.choice(RELATIONSHIPS), "destination": b}
            record = new_record(f"{a} {rel['relationship']} {b}", vectors[i], Scope("u"), {}, now)
            changes.append(Change("ADD", record, relations=(rel,)))
        with store.writing():
            store.commit(changes)


def kuzu_copy(memory: Any, path: Path) -> Any:
    """A Kuzu graph in its child process holding the ledger's relations."""
    from memorch.storage.graph import GraphWork
    from memorch.storage.graph_process import GraphProcess
    from memorch.storage.sql import chunks

    ledger = memory.engine.components.ledger
    graph = GraphProcess(path / "graph.kuzu", path / "graph.lock")
    for batch in chunks(ledger.ids(Scope("u")), 1000):
        relations = ledger.relations_for(batch)
        graph.apply([GraphWork(r.id, r.scope, relations[r.id], r.updated_at) for r in ledger.get_many(batch)])
    return graph


def answer(rows: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    return {(r["source"], r["relationship"], r["destination"], r["memory_id"]) for r in rows}


async def run(args: argparse.Namespace, url: str | None) -> None:
    from memorch import AsyncMemory, MemoryConfig

    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        # graph off: the ledger holds the relations either way; the Kuzu graph is built below
        memory = AsyncMemory(MemoryConfig(data_dir=Path(tmp) / "data", graph="off", ledger_url=url or ""))
        try:
            started = time.perf_counter()
            await memory.engine.write(fill, memory, args.relations, args.entities, rng)
            graph = await asyncio.to_thread(kuzu_copy, memory, Path(tmp))
            print(
                f"{args.relations} relations among {args.entities} entities, written and graphed in "
                f"{time.perf_counter() - started:.1f} s ({'PostgreSQL' if url else 'SQLite'} ledger)"
            )
            ledger, scope = memory.engine.components.ledger, Scope("u")
            picks = [f"Entity{rng.randrange(args.entities)}" for _ in range(args.queries)]
            for hops in (1, 2, 3):
                kuzu, sql, same = [], [], 0
                for name in picks:
                    t = time.perf_counter()
                    found = await asyncio.to_thread(graph.neighbourhood, scope, name, hops)
                    kuzu.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    rows = await asyncio.to_thread(ledger.neighbourhood, scope, name, hops, 100)
                    sql.append((time.perf_counter() - t) * 1000)
                    # Equal sets when the answer is under the 100-relation limit (which 100 a
                    # longer answer keeps differs: Kuzu has no order).
                    same += answer(found) == answer(rows) or (len(found) == len(rows) == 100)
                k50, s50 = statistics.median(kuzu), statistics.median(sql)
                print(
                    f"hops {hops}: kuzu p50 {k50:.2f} ms p95 {pct(kuzu, 0.95):.2f} ms | ledger p50 "
                    f"{s50:.2f} ms p95 {pct(sql, 0.95):.2f} ms | ratio ledger/kuzu p50 {s50 / k50:.2f} | "
                    f"same answer {same}/{len(picks)}"
                )
            graph.close()
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
