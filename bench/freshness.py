"""Two processes on one data directory: how soon one sees the other's writes, and what the
freshness check costs a search.

    uv run python bench/freshness.py [--rows 5000] [--probes 30] [--searches 400]

1. Visibility: this process appends one row at a time to a LanceDB index; a second OS process,
   which holds the same table open, searches for it until it is found. Prints the delay from
   the acknowledged write to the first search that finds it (p50 / p95 / max).
2. Cost: search p50 / p95 on one table opened three ways, interleaved round by round so load on
   the machine hits all alike: no read-consistency check (LanceDB's default, never sees other
   processes' writes), memorch's interval (``FRESHNESS_S``), and a check on every read (0 s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from memorch.domain._records import new_record, utc_now
from memorch.storage import vectors
from memorch.storage.base import Scope

DIM = 384
SCOPE = Scope(user_id="bench")
READER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from memorch.storage.base import Scope
    from memorch.storage.vectors import LanceVectorIndex

    index = LanceVectorIndex(sys.argv[1], int(sys.argv[2]))
    index.search(np.ones(int(sys.argv[2]), dtype=np.float32), Scope(user_id="bench"), 5)
    print("ready", flush=True)
    for line in sys.stdin:
        acked, wanted, vector = json.loads(line)
        probe = np.asarray(vector, dtype=np.float32)
        while True:
            hits = index.search(probe, Scope(user_id="bench"), 1)
            if hits and hits[0].id == wanted:
                print(json.dumps(time.time() - acked), flush=True)
                break
            time.sleep(0.005)
    """
)


def unit_rows(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    now = utc_now()
    return [new_record(f"memory {seed}-{i}", v[i], SCOPE, {}, now) for i in range(n)]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def visibility(uri: Path, probes: int) -> list[float]:
    writer = vectors.LanceVectorIndex(uri, DIM)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(uri), str(DIM)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert reader.stdin is not None and reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    delays = []
    rng = np.random.default_rng(1)
    for i in range(probes):
        time.sleep(float(rng.uniform(0.05, 0.5)))  # writes arrive at any point of the interval
        record = unit_rows(1, 10_000 + i)[0]
        writer.upsert([record])
        reader.stdin.write(json.dumps([time.time(), record.id, record.embedding.tolist()]) + "\n")
        reader.stdin.flush()
        delays.append(float(json.loads(reader.stdout.readline())))
    reader.stdin.close()
    reader.wait(timeout=30)
    writer.close()
    return delays


def search_cost(uri: Path, searches: int) -> dict[str, list[float]]:
    settings = {"off (LanceDB default)": None, f"{vectors.FRESHNESS_S} s (memorch)": vectors.FRESHNESS_S, "0 s": 0.0}
    indexes = {name: vectors.LanceVectorIndex(uri, DIM, freshness_s=s) for name, s in settings.items()}
    rng = np.random.default_rng(2)
    times: dict[str, list[float]] = {name: [] for name in settings}
    for round_ in range(searches + 20):
        probe = rng.standard_normal(DIM).astype(np.float32)
        for name, index in indexes.items():
            start = time.perf_counter()
            index.search(probe, SCOPE, 30)
            index.text_search("memory 3", SCOPE, 30)
            if round_ >= 20:  # warm-up rounds excluded
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--searches", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        uri = Path(work) / "lance"
        index = vectors.LanceVectorIndex(uri, DIM)
        for seed in range(0, args.rows, 500):
            index.upsert(unit_rows(min(500, args.rows - seed), seed))
        index.maintain_now()
        index.close()
        delays = visibility(uri, args.probes)
        print(f"visibility in another process ({args.probes} writes, FRESHNESS_S = {vectors.FRESHNESS_S} s):")
        print(f"  p50 {pct(delays, 50):.0f} ms   p95 {pct(delays, 95):.0f} ms   max {max(delays) * 1000:.0f} ms")
        print(f"search cost (vector + full-text, {args.rows} rows, {args.searches} rounds):")
        for name, values in search_cost(uri, args.searches).items():
            print(f"  {name:24s} p50 {pct(values, 50):6.2f} ms   p95 {pct(values, 95):6.2f} ms")


if __name__ == "__main__":
    main()
