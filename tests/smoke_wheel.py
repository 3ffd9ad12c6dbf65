"""Smoke session against an installed memorch (not collected by pytest: no ``test_`` prefix).

Run with the Python of the environment memorch was installed into, e.g. after
``pip install dist/memorch-*.whl`` in a fresh venv:

    venv/bin/python tests/smoke_wheel.py venv/bin/memorch

It checks that the environment has no torch and no nvidia packages, launches ``memorch serve``
over stdio (with no network at all when ``unshare -rn`` is available, so "offline on first run"
is tested, not assumed), lists the tools with the legacy initialize handshake, adds a memory
and finds it again, all with ``MEMORCH_DATA_DIR`` in a temporary directory. Prints the time
from launch to the tools/list answer. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time

EXPECTED_TOOLS = {"add_memory", "search_memories", "list_memories", "get_memory", "delete_memory"}


def check_no_torch() -> None:
    assert importlib.util.find_spec("torch") is None, "torch is installed"
    names = sorted(d.metadata["Name"] for d in importlib.metadata.distributions())
    heavy = [n for n in names if n.lower().startswith(("nvidia", "torch", "triton", "sentence-transformers"))]
    assert not heavy, f"heavy packages installed: {heavy}"
    assert "memorch" in {n.lower() for n in names}, "memorch is not installed in this environment"
    print(f"environment: {len(names)} distributions, no torch, no nvidia/triton/sentence-transformers")


def offline_prefix() -> list[str]:
    """``unshare -rn`` (a user namespace without network interfaces) when this kernel allows it."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-rn"]
    return []


async def session(memorch: str, data_dir: str, prefix: list[str]) -> float:
    from mcp import Client, StdioServerParameters

    command = [*prefix, memorch, "serve"]
    params = StdioServerParameters(command=command[0], args=command[1:], env={"MEMORCH_DATA_DIR": data_dir})
    started = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        first_answer = time.perf_counter() - started
        assert tools >= EXPECTED_TOOLS, f"tools/list lacks {EXPECTED_TOOLS - tools}: {sorted(tools)}"
        print(f"tools/list: {len(tools)} tools, {first_answer:.2f} s after launch")
        t0 = time.perf_counter()
        added = await client.call_tool("add_memory", {"text": "I am allergic to peanuts", "user_id": "smoke"})
        assert not added.is_error, added.content
        await client.call_tool("add_memory", {"text": "My car is a red hatchback", "user_id": "smoke"})
        found = await client.call_tool("search_memories", {"query": "which foods must I avoid?", "user_id": "smoke"})
        assert not found.is_error, found.content
        results = found.structured_content["results"]
        assert results and results[0]["memory"] == "I am allergic to peanuts", results
        took = time.perf_counter() - t0
        print(f"add_memory x2 + search_memories (loads the model): {took:.2f} s, top hit {results[0]['memory']!r}")
    return first_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("memorch", help="path of the installed memorch executable")
    parser.add_argument("--allow-network", action="store_true", help="do not run the server under unshare -rn")
    args = parser.parse_args()
    check_no_torch()
    prefix = [] if args.allow_network else offline_prefix()
    print("server network:", "none (unshare -rn)" if prefix else "not cut (unshare unavailable or --allow-network)")
    with tempfile.TemporaryDirectory(prefix="memorch-smoke-") as data_dir:
        asyncio.run(session(args.memorch, data_dir, prefix))
    print("smoke session passed")


if __name__ == "__main__":
    sys.exit(main())
