"""Batched import throughput with real embeddings, against mem0's add throughput, in one run.

    python bench/import_rate.py [../shared/bench/locomo_dev.json] [--limit N] [--mem0-python PY]

Items are the LOCOMO turns as bench/locomo.py stores them ("<speaker>: <text>", metadata, one
user per conversation). memorch imports them with ``import_memories`` into a fresh data
directory once per embedder: ``local`` (MiniLM, the default) and ``static`` (the opt-in static
tier; its per-token vectors are learned during this import, since the directory is new). The
time is the whole import, embedding included; the embedder's share is measured separately by
embedding the same texts again with a fresh embedder. With ``--mem0-python`` (an interpreter
with mem0ai, sentence-transformers and the CPU torch wheel) mem0 adds the same items one by one
with infer=False (it has no batch add), and ratios memorch/mem0 are printed. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "bench" / "locomo_dev.json"


def items(path: Path, limit: int | None) -> list[dict]:
    from locomo_protocol import load, turns

    every = [t for sample in load(path) for t in turns(sample)]
    out = [{"memory": t.content, "user_id": t.sample_id, "metadata": t.metadata} for t in every]
    return out[:limit] if limit else out


async def memorch_import(batch: list[dict], embedder: str) -> dict:
    from memorch import AsyncMemory, MemoryConfig

    with tempfile.TemporaryDirectory() as work:
        memory = AsyncMemory(MemoryConfig(data_dir=Path(work), graph="off", embedder=embedder))
        await memory.add("warm-up", user_id="warm-up", infer=False)  # loads the model, opens the stores
        start = time.perf_counter()
        result = await memory.import_memories(batch)
        seconds = time.perf_counter() - start
        await memory.close()
    with tempfile.TemporaryDirectory() as work:
        from memorch.models._embeddings import make_embedder

        fresh = make_embedder(embedder, None, None, 32, data_dir=Path(work))
        start = time.perf_counter()
        for begin in range(0, len(batch), 512):
            fresh.embed([item["memory"] for item in batch[begin : begin + 512]])
        embed_seconds = time.perf_counter() - start
    return {
        "embedder": embedder,
        "imported": result["imported"],
        "memories_per_s": round(len(batch) / seconds, 1),
        "import_s": round(seconds, 2),
        "embed_only_s": round(embed_seconds, 2),
    }


def mem0_adds(python: str, batch: list[dict]) -> dict:
    script = str(ROOT / "bench" / "_mem0_import.py")
    proc = subprocess.run([python, script], input=json.dumps(batch), capture_output=True, text=True, check=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"adds_per_s": round(row["items"] / row["seconds"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--embedders", default="local,static")
    parser.add_argument("--mem0-python")
    args = parser.parse_args()
    batch = items(args.data, args.limit)
    result: dict = {"items": len(batch), "memorch": []}
    for embedder in args.embedders.split(","):
        row = asyncio.run(memorch_import(batch, embedder))
        result["memorch"].append(row)
        print(
            f"memorch import ({embedder}): {row['memories_per_s']:,.0f} memories/s "
            f"({row['import_s']} s for {len(batch)}; embedding the same texts alone: {row['embed_only_s']} s)"
        )
    if args.mem0_python:
        result["mem0"] = mem0_adds(args.mem0_python, batch)
        rate = result["mem0"]["adds_per_s"]
        print(f"mem0 add (infer=False, one by one): {rate:,.1f} adds/s")
        result["ratios_memorch_over_mem0"] = {
            row["embedder"]: round(row["memories_per_s"] / rate, 1) for row in result["memorch"]
        }
        print("ratios memorch/mem0:", result["ratios_memorch_over_mem0"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
