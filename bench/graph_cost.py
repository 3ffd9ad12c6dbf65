"""What the graph costs per operation: add and search with MEMORCH_GRAPH on vs off.

    python bench/graph_cost.py [--adds 60]

Both runs use the same scripted fake LLM (tests/fake_llm.py; two facts and two relations per
add) and the bundled embedder. The graph opens Kuzu for each operation under a cross-process
file lock (so two servers can share a data directory); this prints that price.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_llm import FakeLLM, Request  # noqa: E402


def responder(request: Request) -> dict:
    said = request.prompt.split("CONVERSATION:")[1].strip().split(": ", 1)[1]
    i = said.split()[-1]
    return {
        "memory": [
            {"event": "ADD", "text": f"Person{i} lives in City{i}"},
            {"event": "ADD", "text": f"Person{i} works at Company{i}"},
        ],
        "relations": [
            {"fact": 0, "source": f"Person{i}", "relationship": "lives_in", "destination": f"City{i}"},
            {"fact": 1, "source": f"Person{i}", "relationship": "works_at", "destination": f"Company{i}"},
        ],
    }


async def run(graph: str, fake: FakeLLM, adds: int) -> dict:
    from memorch import AsyncMemory, MemoryConfig

    with tempfile.TemporaryDirectory() as work:
        memory = AsyncMemory(
            MemoryConfig(data_dir=work, graph=graph, llm_model="openai/fake", llm_api_base=fake.url, llm_api_key="k")
        )
        await memory.add("warm up 0", user_id="u")
        add_ms, search_ms = [], []
        for i in range(1, adds + 1):
            start = time.perf_counter()
            await memory.add(f"note number {i}", user_id="u")
            add_ms.append((time.perf_counter() - start) * 1000)
        for i in range(1, adds + 1):
            start = time.perf_counter()
            await memory.search(f"Where does Person{i} live?", user_id="u")
            search_ms.append((time.perf_counter() - start) * 1000)
        await memory.close()
    return {
        "graph": graph,
        "add_p50_ms": round(statistics.median(add_ms), 1),
        "search_p50_ms": round(statistics.median(search_ms), 1),
    }


def kuzu_apply_cost() -> dict:
    """The price of one cross-process-safe graph write: lock, open, write, commit, close."""
    from memorch.storage.base import Scope
    from memorch.storage.graph import GraphWork, KuzuGraph

    def work(i: int) -> GraphWork:
        rel = {"source": f"P{i}", "relationship": "knows", "destination": f"Q{i}"}
        return GraphWork(f"00000000-0000-4000-8000-{i:012d}", Scope("u"), [rel], "t")

    with tempfile.TemporaryDirectory() as d:
        graph = KuzuGraph(Path(d) / "g.kuzu", Path(d) / "g.lock")
        graph.counts()
        single = []
        for i in range(20):
            start = time.perf_counter()
            graph.apply([work(i)])
            single.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        graph.apply([work(1000 + i) for i in range(100)])
        batch = (time.perf_counter() - start) * 1000
    return {
        "kuzu_write_one_memory_p50_ms": round(statistics.median(single), 1),
        "kuzu_write_batch_of_100_ms": round(batch, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--adds", type=int, default=60)
    args = parser.parse_args()
    fake = FakeLLM().start()
    fake.responder = responder
    off = asyncio.run(run("off", fake, args.adds))
    on = asyncio.run(run("on", fake, args.adds))
    fake.stop()
    for row in (off, on):
        print(f"graph {row['graph']:>3}: add p50 {row['add_p50_ms']} ms, search p50 {row['search_p50_ms']} ms")
    raw = kuzu_apply_cost()
    print(
        f"Kuzu write under the cross-process lock: one memory {raw['kuzu_write_one_memory_p50_ms']} ms, "
        f"a batch of 100 {raw['kuzu_write_batch_of_100_ms']} ms"
    )
    print(
        json.dumps(
            {
                "off": off,
                "on": on,
                **raw,
                "add_overhead_ms": round(on["add_p50_ms"] - off["add_p50_ms"], 1),
                "search_overhead_ms": round(on["search_p50_ms"] - off["search_p50_ms"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
