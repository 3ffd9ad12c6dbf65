"""The edges a client meets (issue 28, item 7): a server stopped by SIGTERM while adds arrive
(``docker stop``, systemd) finishes them, writes what the index owes and exits 0.

A real ``memorch serve`` over streamable HTTP, real MCP client sessions, a real store read back
after the process is gone.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

from mcp import Client

from memorch import AsyncMemory, MemoryConfig

from .mcp_helpers import server_log, start_http_server

CLIENTS = 4


async def _add_until_stopped(url: str, worker: int, acknowledged: list[str], started: asyncio.Event) -> None:
    """Add memories one after another until the server goes away; keep each acknowledged id."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(timeout=30)
    try:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            for n in range(10_000):
                result = await client.call_tool("add_memory", {"text": f"client {worker} fact number {n}"})
                if result.is_error:
                    return
                acknowledged.append(result.structured_content["results"][0]["id"])
                started.set()
    except Exception:  # noqa: BLE001 - the server stopping mid-call ends this client in any way
        return


async def test_sigterm_during_a_burst_of_adds_exits_0_with_every_acknowledged_add_indexed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, port = start_http_server("streamable-http", data, MEMORCH_INDEX_FLUSH_DELAY="5")
    acknowledged: list[str] = []
    started = asyncio.Event()
    url = f"http://127.0.0.1:{port}/mcp"
    workers = [asyncio.create_task(_add_until_stopped(url, i, acknowledged, started)) for i in range(CLIENTS)]
    try:
        await asyncio.wait_for(started.wait(), timeout=60)
        while len(acknowledged) < 20:
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
        await asyncio.gather(*workers)
    log = server_log(data).read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "stopped; acknowledged writes are stored and indexed" in log
    assert "Traceback" not in log
    # The index flush delay is 5 s, so rows were owed at the signal: the stop wrote them.
    with sqlite3.connect(data / "memorch.db") as db:
        stored = {row[0] for row in db.execute("SELECT id FROM memories")}
        owed = db.execute("SELECT count(*) FROM index_outbox").fetchone()[0]
    assert set(acknowledged) <= stored and len(acknowledged) >= 20
    assert owed == 0
    async with AsyncMemory(MemoryConfig(data_dir=data, graph="off")) as memory:
        indexed = memory.engine.components.vectors.all_ids()
    assert set(acknowledged) <= indexed


def test_a_deeply_nested_request_is_answered_with_its_id(tmp_path: Path) -> None:
    """JSON deeper than the SDK's parser reads was answered with ``"id": null``, so the client
    waited until its own timeout: every request gets an answer naming its id."""
    import json
    import subprocess

    from .mcp_helpers import memorch_command, server_env

    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    lines = [
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ]
    depths = (50, 300, 700, 3000)
    for depth in depths:
        nested: object = "x"
        for _ in range(depth):
            nested = {"a": nested}
        arguments = {"query": "q", "filters": nested}
        request = {"jsonrpc": "2.0", "id": depth, "method": "tools/call", "params": {"name": "search_memories"}}
        request["params"]["arguments"] = arguments  # type: ignore[index]
        lines.append(_dumps_deep(request))
    done = subprocess.run(
        [*memorch_command(), "serve"],
        input="\n".join(lines) + "\n",
        env=server_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
    assert set(depths) <= set(replies), done.stdout[-2000:]
    assert replies[50]["result"]["isError"] is True  # read, and refused as a bad filter
    for depth in depths[1:]:
        assert replies[depth]["error"]["code"] == -32600, replies[depth]
        assert "nested deeper" in replies[depth]["error"]["message"]


def _dumps_deep(message: object) -> str:
    import json
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # the encoder recurses once per level
    try:
        return json.dumps(message)
    finally:
        sys.setrecursionlimit(limit)


def test_with_an_llm_configured_litellm_is_imported_at_start_not_at_the_first_add(tmp_path: Path) -> None:
    import json
    import subprocess

    from .mcp_helpers import memorch_command, server_env

    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    env = server_env(tmp_path / "data", MEMORCH_LLM_MODEL="openai/fake", MEMORCH_LOG_LEVEL="DEBUG")
    proc = subprocess.Popen(
        [*memorch_command(), "serve"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}) + "\n")
    proc.stdin.flush()
    assert '"id":1' in proc.stdout.readline().replace(" ", "")  # answered while LiteLLM loads
    try:
        stderr = _stderr_until(proc, "LiteLLM imported")
    finally:
        proc.kill()
        proc.wait()
    assert "memorch.llm:LiteLLM imported in " in stderr  # no add was sent: the launch imported it


def _stderr_until(proc: object, marker: str, timeout: float = 90) -> str:
    """stderr lines until one holds ``marker`` (or the timeout), without closing stdin."""
    import threading
    import time

    lines: list[str] = []
    stream = proc.stderr  # type: ignore[attr-defined]
    threading.Thread(target=lambda: [lines.append(line) for line in stream], daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(marker in line for line in lines):
        time.sleep(0.1)
    return "".join(lines)


async def test_a_list_of_2500_memories_is_paged_completely(tmp_path: Path) -> None:
    """list_memories stopped at 1,000 with no way on: ``next_cursor`` pages through all of them,
    newest first, each once, while a write between pages shifts nothing."""
    from memorch.serve._app import build_server

    # The static embedder: paging is under test, not 2,500 MiniLM passes (~100 s on two cores).
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="static")
    async with AsyncMemory(config) as memory:
        items = [{"memory": f"fact number {n} about the garden"} for n in range(2500)]
        assert (await memory.import_memories(items, user_id="u"))["imported"] == 2500
    seen: list[str] = []
    pages = 0
    async with Client(build_server(config)) as client:
        arguments: dict[str, object] = {"user_id": "u", "limit": 1000}
        while True:
            page = (await client.call_tool("list_memories", arguments)).structured_content
            seen += [hit["id"] for hit in page["results"]]
            pages += 1
            if pages == 1:  # a new memory after the first page lands before it, not inside the rest
                await client.call_tool("add_memory", {"text": "a newer fact", "user_id": "u"})
            if "next_cursor" not in page:
                break
            arguments["cursor"] = page["next_cursor"]
        bad = await client.call_tool("list_memories", {"user_id": "u", "cursor": "not-a-cursor"})
    assert pages == 3 and len(seen) == 2500 and len(set(seen)) == 2500
    async with AsyncMemory(config) as memory:
        newest = (await memory.get_all(user_id="u", limit=1))["results"][0]
    assert newest["memory"] == "a newer fact" and newest["id"] not in seen
    assert bad.is_error and "INVALID_CURSOR" in bad.content[0].text
