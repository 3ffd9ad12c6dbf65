"""Several replicas: write throughput with 1, 2 and 3 replicas, and search latency through object
storage against local disk.

Needs the services ``.ci/run`` starts (a PostgreSQL and an S3-compatible endpoint on 127.0.0.1):

    uv run --extra dev python bench/replicas.py \\
        --pg-url postgresql://postgres@127.0.0.1:54329/postgres --s3-endpoint http://127.0.0.1:54330

Throughput: N ``memorch serve --transport streamable-http`` processes over one fresh ledger
schema and one fresh bucket; ``--clients`` concurrent clients send verbatim adds (each its own
scope), spread round-robin over the replicas as a load balancer would, ``--ops`` in all.
Search: ``--memories`` verbatim memories in one scope, then ``--queries`` searches, in-process,
once with the defaults (SQLite + LanceDB on local disk) and once with the ledger on PostgreSQL
and the vectors on the S3 endpoint. Every loop is bounded; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mcp_helpers import start_http_server  # noqa: E402 - after the path is set
from tests.pg_helpers import S3_ENV  # noqa: E402

WORDS = ["garden", "tomato", "basil", "Lisbon", "train", "dentist", "violin", "Marta", "Sunday", "coffee", "river"]
DEADLINE_S = 600  # per measurement


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def text(rng: random.Random, tag: str) -> str:
    return f"{tag}: " + " ".join(rng.choices(WORDS, k=8))


def fresh_schema(pg_url: str) -> str:
    import uuid

    import psycopg

    from tests.pg_helpers import with_schema

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_schema(pg_url, schema)


def fresh_bucket() -> str:
    from tests.pg_helpers import fresh_bucket as make

    return make()


async def throughput(replicas: int, args: argparse.Namespace, root: Path, shared: bool = True) -> dict[str, Any]:
    """Adds/s through ``replicas`` servers; ``shared=False``: one server on the single-machine
    defaults (SQLite and LanceDB in its data directory), the baseline."""
    from mcp import Client

    env = {"MEMORCH_LEDGER_URL": fresh_schema(args.pg_url), "MEMORCH_VECTOR_URI": fresh_bucket(), **S3_ENV}
    env = env if shared else {}
    tag = "shared" if shared else "local"
    procs = [start_http_server("streamable-http", root / f"{tag}{replicas}-r{i}", **env) for i in range(replicas)]
    urls = [f"http://127.0.0.1:{port}/mcp" for _, port in procs]
    try:
        for url in urls:  # warm: model and LanceDB loaded before the clock starts
            async with Client(url) as client:
                await client.call_tool("add_memory", {"text": "warm up", "user_id": "warm", "infer": False})
        rng = random.Random(replicas)
        counter = iter(range(args.ops))
        errors: list[str] = []
        deadline = time.monotonic() + DEADLINE_S

        async def worker(c: int) -> None:
            async with AsyncExitStack() as stack:  # each task opens and closes its own sessions
                clients = [await stack.enter_async_context(Client(u)) for u in urls]
                await ready.wait()
                for i in counter:
                    if time.monotonic() > deadline:
                        return
                    result = await clients[i % len(clients)].call_tool(
                        "add_memory", {"text": text(rng, f"client {c} op {i}"), "user_id": f"c{c}", "infer": False}
                    )
                    if result.is_error:
                        errors.append(str(result.content[0].text)[:200] if result.content else "?")

        ready = asyncio.Event()
        tasks = [asyncio.create_task(worker(c)) for c in range(args.clients)]
        await asyncio.sleep(1.0)  # sessions open before the clock starts
        started = time.perf_counter()
        ready.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        per_s = args.ops / elapsed
        return {"replicas": replicas, "adds": args.ops, "seconds": elapsed, "per_s": per_s, "errors": errors}
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(30)


async def search_latency(kind: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from memorch import AsyncMemory, MemoryConfig

    settings: dict[str, Any] = {"data_dir": root / f"search-{kind}", "graph": "off"}
    if kind == "object storage":
        settings |= {"ledger_url": fresh_schema(args.pg_url), "vector_uri": fresh_bucket()}
    memory = AsyncMemory(MemoryConfig(**settings))
    rng = random.Random(7)
    try:
        items = [{"memory": text(rng, f"memory {i}")} for i in range(args.memories)]
        await memory.import_memories(items, user_id="u")
        await memory.search("warm up", user_id="u")
        times = []
        for _ in range(args.queries):
            query = " ".join(rng.choices(WORDS, k=3))
            started = time.perf_counter()
            await memory.search(query, user_id="u", limit=10)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await memory.close()
    return {"where": kind, "p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("MEMORCH_TEST_PG_URL", ""))
    parser.add_argument("--s3-endpoint", default=os.environ.get("MEMORCH_TEST_S3_ENDPOINT", ""))
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--memories", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    if not args.pg_url or not args.s3_endpoint:
        raise SystemExit("give --pg-url and --s3-endpoint (or MEMORCH_TEST_PG_URL / MEMORCH_TEST_S3_ENDPOINT)")
    S3_ENV["AWS_ENDPOINT_URL"] = args.s3_endpoint
    os.environ.update(S3_ENV)
    import tests.pg_helpers as helpers

    helpers.S3_ENDPOINT = args.s3_endpoint
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local_row = await throughput(1, args, root, shared=False)
        print(
            f"baseline, 1 server on local SQLite + LanceDB: {local_row['per_s']:.1f} adds/s, "
            f"errors {len(local_row['errors'])}"
        )
        base = None
        for n in [int(x) for x in args.replicas.split(",")]:
            row = await throughput(n, args, root)
            base = base or row["per_s"]
            print(
                f"{n} replica(s): {row['adds']} adds by {args.clients} clients in {row['seconds']:.1f} s = "
                f"{row['per_s']:.1f} adds/s (x{row['per_s'] / base:.2f} of 1 replica), errors {len(row['errors'])}"
            )
        local = await search_latency("local disk", args, root)
        remote = await search_latency("object storage", args, root)
        for row in (local, remote):
            print(f"search, {row['where']}: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")
        print(f"ratio object storage / local disk: p50 x{remote['p50_ms'] / local['p50_ms']:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
