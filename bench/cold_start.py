"""Time from launching `memorch serve` (stdio) to the answer to tools/list.

    python bench/cold_start.py [--runs 21] [--first-search]

Prints each run and the median; also the same for a bare MCP server with one tool (the
baseline: what the SDK alone costs), so the ratio shows what memorch adds. The two sides'
starts alternate. Goal: <= 1.0 s, and <= 1.1 x the baseline. ``--first-search PAUSE``: memorch
alone, a first ``search_memories`` sent PAUSE seconds after tools/list (a client starts its
servers when it starts; a model calls later), timed from sending it to its answer, on a store of
one memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
SEARCH = {
    "jsonrpc": "2.0",
    "id": 3,
    "method": "tools/call",
    "params": {"name": "search_memories", "arguments": {"query": "what is my job?"}},
}
BASELINE = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("baseline")
@server.tool()
def echo(text: str) -> str:
    return text
server.run("stdio")
"""


def time_to_tools_list(command: list[str], env: dict[str, str], pause: float | None = None) -> tuple[float, int]:
    """Seconds from launch to the tools/list answer and how many tools were listed; with
    ``pause``: seconds from sending a first search, ``pause`` s after that answer, to its answer."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    assert proc.stdin and proc.stdout
    for message in (INITIALIZE, INITIALIZED, LIST):
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    tools = 0
    for line in proc.stdout:
        reply = json.loads(line)
        if reply.get("id") == 2:
            tools = len(reply["result"]["tools"])
            if pause is None:
                break
            time.sleep(pause)
            start = time.perf_counter()
            proc.stdin.write(json.dumps(SEARCH) + "\n")
            proc.stdin.flush()
        elif reply.get("id") == 3:
            assert "error" not in reply and not reply["result"].get("isError"), reply
            break
    elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    return elapsed, tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--first-search", type=float, metavar="PAUSE", help="time a first search, PAUSE s in")
    args = parser.parse_args()

    memorch = str(Path(sys.executable).parent / "memorch")
    if args.first_search is not None:
        first_search(memorch, args.runs, args.first_search)
        return
    ours: list[tuple[float, int]] = []
    base: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as data:
        # One untimed start of each side writes the compiled-module caches (``launch_env``).
        env = launch_env(data)
        time_to_tools_list([memorch, "serve"], env)
        time_to_tools_list([sys.executable, "-c", BASELINE], env)
        for run in range(args.runs):  # alternated, so a busy moment slows both sides alike
            pair = [([memorch, "serve"], ours), ([sys.executable, "-c", BASELINE], base)]
            for command, times in pair if run % 2 == 0 else pair[::-1]:  # neither side always first
                times.append(time_to_tools_list(command, env))
    for name, runs in (("memorch serve", ours), ("bare MCPServer", base)):
        print(f"{name:>15}: " + "  ".join(f"{t:.3f}s" for t, _ in runs) + f"  ({runs[0][1]} tools)")
    median_ours = statistics.median(t for t, _ in ours)
    median_base = statistics.median(t for t, _ in base)
    print(
        json.dumps(
            {
                "memorch_median_s": round(median_ours, 3),
                "baseline_median_s": round(median_base, 3),
                "ratio": round(median_ours / median_base, 2),
                # each start against the baseline's started just after it: steadier on a busy machine
                "paired_ratio": round(statistics.median(o / b for (o, _), (b, _) in zip(ours, base, strict=True)), 2),
                "goal_s": 1.0,
                "goal_ratio": 1.1,
            }
        )
    )


def launch_env(data: str) -> dict[str, str]:
    """This environment for a server on ``data``. Python caches compiled modules after the first
    start; a PYTHONDONTWRITEBYTECODE here would make every start compile the uncached ones again,
    which no MCP client's launch does."""
    import os

    return {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "MEMORCH_DATA_DIR": data}


def first_search(memorch: str, runs: int, pause: float) -> None:

    with tempfile.TemporaryDirectory() as data:
        env = launch_env(data)
        subprocess.run([memorch, "add", "I work as a nurse"], env=env, check=True, capture_output=True)
        time_to_tools_list([memorch, "serve"], env, pause)  # compiled-module caches, untimed
        times = [time_to_tools_list([memorch, "serve"], env, pause)[0] for _ in range(runs)]
    print(f"first search, {pause} s after tools/list: " + "  ".join(f"{t:.3f}s" for t in times))
    print(json.dumps({"first_search_median_s": round(statistics.median(times), 3), "pause_s": pause, "runs": runs}))


if __name__ == "__main__":
    main()
