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
