"""Both protocol generations the SDK speaks, against `memorch serve` as a real subprocess.

``mode="legacy"`` is the initialize handshake Claude Desktop speaks today; the default
``mode="auto"`` speaks the stateless 2026-07-28 protocol (``server/discover``). Each is tried over
stdio and streamable HTTP: list the tools, add a memory, find it, and read ``serverInfo.version``.
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from memorch.config import package_version

from .mcp_helpers import memorch_command, server_env
from .proto_helpers import serve_http

MODES = ["legacy", "auto"]
STATELESS = "2026-07-28"
TOOLS = {"add_memory", "search_memories", "list_memories", "get_memory", "update_memory", "delete_memory"}


async def _exercise(client: Client, mode: str, user: str) -> None:
    info = client.server_info
    assert info is not None and info.name == "memorch"
    assert info.version == package_version() != ""
    if mode == "legacy":
        assert client.protocol_version != STATELESS
    else:
        assert client.protocol_version == STATELESS
    assert {tool.name for tool in (await client.list_tools()).tools} >= TOOLS

    text = f"My {mode} bicycle is a green Brompton"
    added = await client.call_tool("add_memory", {"text": text, "user_id": user})
    assert not added.is_error, added.content
    memory_id = added.structured_content["results"][0]["id"]
    found = await client.call_tool("search_memories", {"query": "what bike do I ride?", "user_id": user})
    assert not found.is_error, found.content
    assert [(r["id"], r["memory"]) for r in found.structured_content["results"]][:1] == [(memory_id, text)]


@pytest.mark.parametrize("mode", MODES)
async def test_stdio(tmp_path: Path, mode: str) -> None:
    command = memorch_command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=server_env(tmp_path))
    async with Client(params, mode=mode) as client:
        await _exercise(client, mode, user=f"stdio-{mode}")


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    served, port, url = serve_http("streamable-http", tmp_path_factory.mktemp("http"))
    yield port, url
    assert served.stop() == ""  # nothing on stdout


@pytest.mark.parametrize("mode", MODES)
async def test_streamable_http(http_server: tuple[int, str], mode: str) -> None:
    port, url = http_server
    assert url == f"http://127.0.0.1:{port}/mcp"  # the endpoint it announced is the one that works
    async with Client(url, mode=mode) as client:
        await _exercise(client, mode, user=f"http-{mode}")


def test_sse_says_its_endpoint(tmp_path: Path) -> None:
    served, port, url = serve_http("sse", tmp_path)
    try:
        assert url == f"http://127.0.0.1:{port}/sse"
    finally:
        assert served.stop() == ""


def test_stdio_on_a_terminal_says_it_waits_for_a_client(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*memorch_command(), "serve"],
        env=server_env(tmp_path),
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "waiting for an MCP client" in line and "stdio" in line
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        os.close(controller)
    assert out == ""  # stdout carries JSON-RPC only
