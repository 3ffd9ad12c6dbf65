"""The server's edge, probed from outside: Host/Origin, bearer token, OAuth discovery, body limit,
refusal of an unauthenticated non-loopback bind, and malformed JSON-RPC on stdio.

Real ``memorch serve`` subprocesses on 127.0.0.1 and real HTTP requests; the non-loopback bind's
Host/Origin rules are checked on the app built for ``--host 0.0.0.0``, served on 127.0.0.1 (tests
never listen beyond loopback).
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from memorch import MemoryConfig
from memorch.errors import ConfigurationError

from .mcp_helpers import memorch_command, server_env, start_http_server, stdio_server

TOKEN = "s3cret"
LIMIT = 64 * 1024
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "edge", "version": "1"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def _post(url: str, headers: dict[str, str] | None = None, body: Any = None, **kwargs: Any) -> int:
    """The status of a POST (the response body, possibly an open SSE stream, is not read)."""
    content = json.dumps(INITIALIZE).encode() if body is None else body
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url, headers={**MCP_HEADERS, **(headers or {})}, content=content, **kwargs) as response,
    ):
        return response.status_code


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """streamable HTTP with a token, one allowed host from the environment, one from the CLI, a 64 KiB limit."""
    data_dir = tmp_path_factory.mktemp("edge")
    proc, port = start_http_server(
        "streamable-http",
        data_dir,
        "--allowed-host",
        "cli.example.org",
        MEMORCH_AUTH_TOKEN=TOKEN,
        MEMORCH_ALLOWED_HOSTS="tunnel.example.com, other.example.net",
        MEMORCH_MAX_REQUEST_BYTES=str(LIMIT),
    )
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("authorization", ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR  s3cret"])
def test_bearer_scheme_in_any_case(edge_server: str, authorization: str) -> None:
    assert _post(edge_server, {"Authorization": authorization}) == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer", "Basic s3cret", "s3cret", "Bearer s3cret2"])
def test_anything_else_is_401(edge_server: str, authorization: str | None) -> None:
    assert _post(edge_server, {"Authorization": authorization} if authorization else {}) == 401


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic s3cret"])
def test_a_refused_token_is_told_from_a_missing_one(edge_server: str, authorization: str | None) -> None:
    """A caller who sent a bearer token that is not known is told so, not "authentication required"."""
    headers = {**MCP_HEADERS, **({"Authorization": authorization} if authorization else {})}
    response = httpx.post(edge_server, headers=headers, content=json.dumps(INITIALIZE).encode(), timeout=30)
    said = response.json()["error_description"]
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    if authorization == "Bearer wrong":
        assert "not recognised" in said and "memorch token list" in said
        assert "not recognised" in response.headers["www-authenticate"]
    else:
        assert said == "Authentication required"


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration",
    ],
)
def test_oauth_discovery_is_404_not_401(edge_server: str, path: str) -> None:
    response = httpx.get(edge_server.replace("/mcp", path), timeout=10)
    assert response.status_code == 404
    assert "www-authenticate" not in response.headers


def test_bodies_over_the_limit_get_413_before_parsing(edge_server: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    too_big = b"x" * (LIMIT + 1)  # not even JSON: refused for its size, not parsed
    assert _post(edge_server, auth, too_big) == 413
    assert _post(edge_server, auth, iter([too_big[:1000], too_big[1000:]])) == 413  # chunked, no Content-Length
    padded = json.dumps(INITIALIZE).encode() + b" " * (LIMIT - 1000)  # just under: served
    assert _post(edge_server, auth, padded) == 200


def test_allowed_hosts_pass_and_others_are_refused(edge_server: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for host in ("tunnel.example.com", "other.example.net", "cli.example.org", "tunnel.example.com:443"):
        assert _post(edge_server, {**auth, "Host": host}) == 200, host
    assert _post(edge_server, {**auth, "Host": "tunnel.example.com", "Origin": "https://tunnel.example.com"}) == 200
    assert _post(edge_server, {**auth, "Host": "evil.example"}) == 421
    assert _post(edge_server, {**auth, "Host": "tunnel.example.com.evil.example"}) == 421
    assert _post(edge_server, {**auth, "Origin": "http://evil.example"}) == 403  # forged Origin, loopback Host
    assert _post(edge_server, {**auth, "Host": "tunnel.example.com", "Origin": "https://evil.example"}) == 403
    # The refusal names the Host and the option that allows it (the SDK said "Invalid Host header").
    refused = httpx.post(edge_server, headers={**MCP_HEADERS, **auth, "Host": "evil.example"}, json=INITIALIZE)
    assert refused.status_code == 421 and refused.json()["error"] == "invalid_host"
    assert "'evil.example'" in refused.json()["error_description"]
    assert "--allowed-host NAME" in refused.json()["error_description"]


async def test_a_real_client_through_a_tunnel_host(edge_server: str) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Host": "tunnel.example.com", "Authorization": f"bearer {TOKEN}"}
    target = streamable_http_client(edge_server, http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    async with Client(target) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "add_memory" in tools and "search_memories" in tools


# --- a non-loopback bind ----------------------------------------------------------------------


def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the refusal must come before any bind.
    result = subprocess.run(
        [*memorch_command(), "serve", "--transport", "streamable-http", "--host", "192.0.2.1", "--port", "8765"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error [UNAUTHENTICATED_BIND] "), result.stderr
    assert "Suggestion:" in lines[0] and "MEMORCH_AUTH_TOKEN" in lines[0] and "--allow-unauthenticated" in lines[0]


def test_which_binds_need_a_token() -> None:
    from memorch.serve._http_edge import check_exposure

    for host in ("0.0.0.0", "::", "192.168.1.5", "memory.lan"):
        with pytest.raises(ConfigurationError) as caught:
            check_exposure(host, has_token=False, allow_unauthenticated=False)
        assert caught.value.error_code == "UNAUTHENTICATED_BIND"
        check_exposure(host, has_token=True, allow_unauthenticated=False)
        check_exposure(host, has_token=False, allow_unauthenticated=True)
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        check_exposure(host, has_token=False, allow_unauthenticated=False)


def test_allowed_host_values_are_checked() -> None:
    from memorch.serve._http_edge import transport_security

    with pytest.raises(ConfigurationError) as caught:
        transport_security("127.0.0.1", ["https://abc.ngrok.app/"])
    assert caught.value.error_code == "INVALID_ALLOWED_HOST"
    settings = transport_security("127.0.0.1", ["fd00::1", "abc.ngrok.app:8443"])
    assert "[fd00::1]:*" in settings.allowed_hosts and "abc.ngrok.app:8443" in settings.allowed_hosts
    assert "abc.ngrok.app" not in settings.allowed_hosts  # a given port is the only one
    assert "127.0.0.2:*" in transport_security("127.0.0.2", []).allowed_hosts  # a loopback bind's own address
    wildcard = transport_security("0.0.0.0", ["lan.example"])
    assert wildcard.enable_dns_rebinding_protection and "lan.example:*" in wildcard.allowed_hosts
    assert not any(host.startswith("0.0.0.0") for host in wildcard.allowed_hosts)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORCH_ALLOWED_HOSTS", " a.example ,b.example,")
    monkeypatch.setenv("MEMORCH_MAX_REQUEST_BYTES", "1000")
    config = MemoryConfig()
    assert config.allowed_hosts == ["a.example", "b.example"] and config.max_request_bytes == 1000
    monkeypatch.setenv("MEMORCH_MAX_REQUEST_BYTES", "0")
    with pytest.raises(ConfigurationError, match="MEMORCH_MAX_REQUEST_BYTES must be a positive number of bytes"):
        MemoryConfig()


@pytest.fixture(params=["streamable-http", "sse"])
def wildcard_bind_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The app ``serve --host 0.0.0.0 --allow-unauthenticated --allowed-host lan.example`` builds,
    served here on 127.0.0.1 (uvicorn in a thread), with a 1 KiB body limit."""
    import uvicorn

    from memorch.serve._app import build_server, http_app

    transport = request.param
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", max_request_bytes=1024)
    app = http_app(build_server(config), transport, "0.0.0.0", config, ["lan.example"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
            assert thread.is_alive()
        yield transport, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _sse_status(url: str, headers: dict[str, str]) -> int:
    with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as response:
        return response.status_code


def test_host_and_origin_are_checked_on_a_wildcard_bind(wildcard_bind_app: tuple[str, str]) -> None:
    transport, base = wildcard_bind_app
    if transport == "sse":

        def status(headers: dict[str, str]) -> int:
            return _sse_status(f"{base}/sse", headers)
    else:

        def status(headers: dict[str, str]) -> int:
            return _post(f"{base}/mcp", headers)

    port = base.rsplit(":", 1)[1]
    # the rebinding attack that wrote a memory before: a foreign Host with its own Origin
    assert status({"Host": "evil.example", "Origin": "http://evil.example"}) == 421
    assert status({"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"}) == 403
    assert status({"Host": f"localhost:{port}"}) == 200
    assert status({"Host": "lan.example", "Origin": "https://lan.example"}) == 200
    if transport == "streamable-http":
        assert _post(f"{base}/mcp", {}, b"x" * 1025) == 413
    else:
        assert _post(f"{base}/messages/?session_id=00000000000000000000000000000000", {}, b"x" * 1025) == 413


# --- stdio: every malformed line gets a JSON-RPC error ----------------------------------------


MALFORMED = [
    # (line, expected code, expected id)
    ('{"jsonrpc":"2.0","id":11,"method":"ping","params":{"x":"\\ud800"}}', -32700, None),  # lone surrogate
    # JSON deeper than the SDK reads: refused with its id, so the client is not left waiting.
    ('{"jsonrpc":"2.0","id":12,"method":"ping","params":{"x":' + "[" * 250 + "]" * 250 + "}}", -32600, 12),
    ('[{"jsonrpc":"2.0","id":13,"method":"ping"}]', -32600, None),  # batch
    ('{"jsonrpc":"1.0","id":14,"method":"ping"}', -32600, 14),
    ('{"jsonrpc": "2.0", "id": 15, ', -32700, None),  # invalid JSON
    ('{"jsonrpc":"2.0","id":"sixteen","method":"ping","params":"x"}', -32600, "sixteen"),
    ("not json at all", -32700, None),
]


def test_malformed_stdio_lines_get_a_json_rpc_error(tmp_path: Path) -> None:
    proc = stdio_server(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    replies: queue.Queue[dict[str, Any]] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: [replies.put(json.loads(line)) for line in stdout], daemon=True).start()

    def exchange(line: str, timeout: float = 15) -> dict[str, Any]:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        try:
            return replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply within {timeout} s to {line[:60]!r}") from None

    try:
        assert exchange(json.dumps(INITIALIZE), timeout=60)["id"] == 1
        exchange('{"jsonrpc":"2.0","method":"notifications/initialized"}\n{"jsonrpc":"2.0","id":2,"method":"ping"}')
        for line, code, ident in MALFORMED:
            reply = exchange(line)
            assert reply["jsonrpc"] == "2.0" and reply["id"] == ident, (line[:60], reply)
            assert reply["error"]["code"] == code and reply["error"]["message"], (line[:60], reply)
        # a blank line is no message (no reply), and the server still serves a valid request
        listed = exchange('\n{"jsonrpc":"2.0","id":3,"method":"tools/list"}')
        assert listed["id"] == 3 and any(tool["name"] == "add_memory" for tool in listed["result"]["tools"])
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
    assert proc.returncode == 0
