"""Load and soak over streamable HTTP: 50 concurrent clients, then one long single-client soak.

Starts ``memorch serve --transport streamable-http`` on 127.0.0.1 (a free port, a temporary data
directory, no graph, no model), then:

- load: ``--clients`` clients at once, each doing ``--requests`` mixed operations (add, search,
  update, delete, get, list) in its own user scope; reports throughput, errors and p50/p95;
- soak: one client doing ``--ops`` mixed operations; reports errors, p50/p95 of the first and
  last 10 % of operations, the server's RSS every 2,000 operations (/proc/<pid>/status VmRSS),
  the LanceDB version count and the data directory size per live memory at the end, and again
  at rest (``AT_REST_S`` later, after the server's pass once writes stop).

Every loop is bounded by a count and by ``--max-seconds``; the server is stopped at the end.
Goals (issue 14): 0 errors, RSS growth ≤ 10 % over the last half of the soak, data directory
≤ 10 kB per live memory plus indexes, late p95 ≤ 1.2 x early p95.

    uv run python bench/soak.py --ops 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORDS = tuple(
    [
        "garden",
        "lisbon",
        "coffee",
        "sister",
        "piano",
        "allergy",
        "peanuts",
        "marathon",
        "berlin",
        "python",
        "novel",
        "cat",
        "dog",
        "birthday",
        "project",
        "deadline",
        "recipe",
        "pasta",
        "violin",
        "tennis",
        "hiking",
        "kyoto",
        "museum",
        "dentist",
        "train",
    ]
)
AT_REST_S = 6.0  # after the last request: the idle pass (2 s) and its prune
RSS_EVERY = 2_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    script = Path(sys.executable).parent / "memorch"
    command = [str(script)] if script.exists() else [shutil.which("memorch") or "memorch"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORCH_")}
    env.update({"MEMORCH_DATA_DIR": str(data_dir), "MEMORCH_GRAPH": "off"})
    proc = subprocess.Popen(
        [*command, "serve", "--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start listening")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A /proc status figure in MB: VmRSS, or its parts RssAnon (heap) and RssFile (mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dir_bytes(path: Path) -> int:
    """Bytes under ``path``; a file the running server removes meanwhile counts as gone."""
    total = 0
    for f in path.rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except FileNotFoundError:
            continue
    return total


def report_data(title: str, data: Path, live: int) -> None:
    """The data directory's size per live memory, and by part."""
    lance = data / "lance"
    versions = sum(1 for _ in lance.rglob("_versions/*.manifest"))
    total, lance_bytes = dir_bytes(data), dir_bytes(lance)
    indexes = sum(dir_bytes(p) for p in lance.rglob("_indices"))
    print(
        f"{title}: {live} live memories, {total / 1e6:.1f} MB ({total / 1e3 / max(live, 1):.1f} kB/memory; "
        f"LanceDB {lance_bytes / 1e6:.1f} MB of which indexes {indexes / 1e6:.1f} MB; "
        f"{(total - indexes) / 1e3 / max(live, 1):.1f} kB/memory without indexes); LanceDB versions {versions}"
    )
    parts = {p.name: dir_bytes(p) for p in lance.glob("*.lance/*") if p.is_dir()}
    parts["ledger"] = sum(f.stat().st_size for f in data.glob("memorch.db*") if f.exists())
    print("  by part (MB):", {name: round(size / 1e6, 1) for name, size in sorted(parts.items())})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Worker:
    """One client's mixed operations in its own user scope; latencies in ms, errors as text."""

    def __init__(self, client: Any, user: str, rng: random.Random) -> None:
        self.client, self.user, self.rng = client, user, rng
        self.live: list[str] = []
        self.latencies: list[float] = []
        self.tools: list[str] = []  # which tool each latency is of
        self.errors: list[str] = []
        self.counter = 0

    def text(self) -> str:
        self.counter += 1
        return f"{self.user} note {self.counter}: " + " ".join(self.rng.choices(WORDS, k=8))

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            result = await self.client.call_tool(tool, args)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure, of any kind
            self.errors.append(f"{tool}: {exc!r}"[:300])
            return None
        finally:
            self.latencies.append((time.perf_counter() - start) * 1000)
            self.tools.append(tool)
        if result.is_error:
            self.errors.append(f"{tool}: {result.content[0].text if result.content else '?'}"[:300])
            return None
        return result.structured_content

    async def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.35 or len(self.live) < 5:
            out = await self.call("add_memory", {"text": self.text(), "user_id": self.user})
            if out:
                self.live += [r["id"] for r in out["results"] if r.get("event") == "ADD"]
        elif roll < 0.60:
            await self.call("search_memories", {"query": " ".join(self.rng.choices(WORDS, k=3)), "user_id": self.user})
        elif roll < 0.72:
            await self.call("update_memory", {"memory_id": self.rng.choice(self.live), "text": self.text()})
        elif roll < 0.82:
            memory_id = self.live.pop(self.rng.randrange(len(self.live)))
            await self.call("delete_memory", {"memory_id": memory_id})
        elif roll < 0.94:
            await self.call("get_memory", {"memory_id": self.rng.choice(self.live)})
        else:
            await self.call("list_memories", {"user_id": self.user, "limit": 20})


def connect(url: str) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(timeout=120)))


async def load(url: str, clients: int, requests: int, deadline: float) -> dict[str, Any]:
    async def one(i: int) -> Worker:
        async with connect(url) as client:
            worker = Worker(client, f"load-{i}", random.Random(i))
            for _ in range(requests):
                if time.monotonic() > deadline:
                    break
                await worker.step()
            return worker

    start = time.perf_counter()
    workers = await asyncio.gather(*(one(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    latencies = [x for w in workers for x in w.latencies]
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(elapsed, 1),
        "per_s": round(len(latencies) / elapsed, 1),
        "errors": sum(len(w.errors) for w in workers),
        "first_errors": [e for w in workers for e in w.errors][:5],
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(pct(latencies, 0.95), 1),
        "live": sum(len(w.live) for w in workers),
    }


async def soak(url: str, ops: int, pid: int, deadline: float) -> dict[str, Any]:
    rss = [(0, round(rss_mb(pid)))]
    async with connect(url) as client:
        worker = Worker(client, "soak", random.Random(2026))
        for n in range(1, ops + 1):
            if time.monotonic() > deadline:
                break
            await worker.step()
            if n % RSS_EVERY == 0:
                rss.append((n, round(rss_mb(pid))))
                print(
                    f"  {n} ops: RSS {rss[-1][1]} MB (anon {rss_mb(pid, 'RssAnon'):.0f}, files "
                    f"{rss_mb(pid, 'RssFile'):.0f}), p50 {statistics.median(worker.latencies[-RSS_EVERY:]):.1f} ms"
                )
    lat, tenth = worker.latencies, max(1, len(worker.latencies) // 10)
    half = [mb for n, mb in rss if n >= len(lat) // 2]
    return {
        "ops": len(lat),
        "errors": len(worker.errors),
        "first_errors": worker.errors[:5],
        "early_p50_ms": round(statistics.median(lat[:tenth]), 1),
        "early_p95_ms": round(pct(lat[:tenth], 0.95), 1),
        "late_p50_ms": round(statistics.median(lat[-tenth:]), 1),
        "late_p95_ms": round(pct(lat[-tenth:], 0.95), 1),
        "p95_ms_by_tool_early_late": _by_tool(worker, tenth),
        "rss_mb": rss,
        "rss_growth_last_half": round(half[-1] / half[0] - 1, 3) if len(half) > 1 else None,
        "live": len(worker.live),
    }


def _by_tool(worker: Worker, tenth: int) -> dict[str, tuple[float, float]]:
    """Each tool's p95 over the first and the last tenth of the operations: which one grows."""
    spans = {"early": slice(None, tenth), "late": slice(-tenth, None)}
    timed = {name: list(zip(worker.tools[span], worker.latencies[span], strict=True)) for name, span in spans.items()}
    return {
        tool: tuple(round(pct([ms for t, ms in timed[name] if t == tool], 0.95), 1) for name in spans)  # type: ignore[misc]
        for tool in sorted(set(worker.tools))
    }


async def warm_up(url: str) -> None:
    """Load the embedder and open the store before anything is timed."""
    async with connect(url) as client:
        await client.call_tool("search_memories", {"query": "warm up", "user_id": "warm-up"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2_000, help="single-client soak operations (0 skips)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in the load phase (0 skips)")
    parser.add_argument("--requests", type=int, default=20, help="operations per load client")
    parser.add_argument("--max-seconds", type=float, default=3_600, help="stop every loop after this long")
    parser.add_argument("--keep", type=Path, help="copy the data directory here at the end (to look inside)")
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="memorch-soak-") as tmp:
        data = Path(tmp) / "data"
        proc, url = start_server(data)
        try:
            live = 0
            asyncio.run(warm_up(url))
            if args.clients:
                result = asyncio.run(load(url, args.clients, args.requests, deadline))
                live += result.pop("live")
                print("load:", result)
            if args.ops:
                result = asyncio.run(soak(url, args.ops, proc.pid, deadline))
                live += result.pop("live")
                print("soak:", result)
                growth = result["rss_growth_last_half"]
                print(
                    f"goals: errors 0: {result['errors'] == 0}; RSS growth over the last half ≤ 10 %: "
                    f"{growth is not None and growth <= 0.10} ({growth}); late p95 ≤ 1.2 x early: "
                    f"{result['late_p95_ms'] <= 1.2 * result['early_p95_ms']}"
                )
            report_data("data at the end", data, live)
            time.sleep(AT_REST_S)  # the server's pass once writes stop (IDLE_PASS_S) and its prune
            report_data(f"data at rest ({AT_REST_S:.0f} s later, RSS {rss_mb(proc.pid):.0f} MB)", data, live)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.keep:  # after the server stopped: a copy of a directory in use can be torn
            shutil.copytree(data, args.keep)


if __name__ == "__main__":
    main()
