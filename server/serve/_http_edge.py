"""The edge of the server: who may talk to it over HTTP, and what a malformed stdio line gets.

HTTP (``serve --transport sse|streamable-http``):

- Host/Origin validation (the SDK's DNS-rebinding protection) is on for every bind: the loopback
  names are always accepted, plus the names given with ``--allowed-host`` / ``MEMORCH_ALLOWED_HOSTS``
  (a tunnel's public name, a LAN name) and the bind address itself when it is a specific address.
  The SDK answers 421 to another Host and 403 to another Origin.
- A non-loopback bind without a token refuses to start unless ``--allow-unauthenticated`` is given.
- ``Authorization: Bearer <token>`` is checked by the MCP SDK's own bearer middleware with
  memorch's ``TokenVerifier`` (``identities.py``: ``MEMORCH_AUTH_TOKEN`` or a token of
  ``MEMORCH_TOKENS_FILE``, compared in constant time); the scheme in any case, anything else 401.
- ``/.well-known/*`` (OAuth protected-resource / authorization-server metadata, OpenID
  configuration) is 404, also without a token: memorch offers no OAuth, and a 401 there makes
  clients such as the MCP Inspector start an interactive OAuth flow instead of saying that the
  token is missing.
- Bodies over ``MEMORCH_MAX_REQUEST_BYTES`` are refused with 413 by the SDK before parsing.

stdio: the SDK's reader drops a line it cannot read as JSON-RPC without a reply (the client
waits forever). ``ReplyingReadStream`` answers such a line with a JSON-RPC error instead:
``-32700`` (parse error) for text that is not JSON or a lone surrogate escape, ``-32600``
(invalid request) for JSON nested deeper than the SDK's parser reads (about 250 levels) and for
JSON that is not one JSON-RPC 2.0 message (batches, ``"jsonrpc": "1.0"``, ``params`` that is not
an object), with the request's id when it can be read, else ``null``. Blank lines are skipped.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from typing import Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings

from memorch.errors import ConfigurationError

log = logging.getLogger("memorch.http_edge")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
PARSE_ERROR = -32700
INVALID_REQUEST = -32600


# --- which Host / Origin values are accepted ---------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: only this machine can reach such a bind."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """``value`` as it appears in a Host header (IPv6 in brackets), or a ``ConfigurationError``."""
    name = value.strip().lower()
    if not name or any(ch in name for ch in "/@?# \t,") or name.startswith(":"):
        raise ConfigurationError(
            f"allowed host {value!r} (--allowed-host, MEMORCH_ALLOWED_HOSTS) is not a host name",
            error_code="INVALID_ALLOWED_HOST",
            details={"value": value},
            suggestion="give the bare name clients use in the URL, e.g. --allowed-host abc.ngrok.app "
            "(optionally with :PORT), without http:// or a path",
        )
    try:
        if ipaddress.ip_address(name.strip("[]")).version == 6:
            return f"[{name.strip('[]')}]"
    except ValueError:
        pass
    return name


def _with_ports(name: str) -> list[str]:
    """Host header values for a name: as given when it names a port, else bare and with any port."""
    has_port = name.rsplit("]", 1)[-1].count(":") == 1
    return [name] if has_port else [name, f"{name}:*"]


def transport_security(bind_host: str, allowed_hosts: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection for any bind: loopback names, ``allowed_hosts`` and the bind address.

    The SDK only protects loopback binds by itself (``host="0.0.0.0"`` turns it off); these
    settings keep it on everywhere and add the names a deployment is really reached by.
    """
    names = list(LOOPBACK_NAMES)
    if not _unspecified(bind_host):  # e.g. --host 127.0.0.2 or 192.168.1.20: clients use that address
        names.append(_host_name(bind_host))
    names += [_host_name(value) for value in allowed_hosts]
    hosts: list[str] = []
    origins: list[str] = []
    for name in dict.fromkeys(names):
        for value in _with_ports(name):
            hosts.append(value)
            origins += [f"http://{value}", f"https://{value}"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def check_exposure(bind_host: str, has_token: bool, allow_unauthenticated: bool) -> None:
    """Refuse to serve every memory to whoever can reach a non-loopback address without a token."""
    if has_token or allow_unauthenticated or is_loopback(bind_host):
        return
    raise ConfigurationError(
        f"refusing to listen on {bind_host} without a token: anyone who can reach that address could read "
        "and change every memory",
        error_code="UNAUTHENTICATED_BIND",
        details={"host": bind_host},
        suggestion="set MEMORCH_AUTH_TOKEN (or per-caller tokens: MEMORCH_TOKENS_FILE, `memorch token add`), "
        "or keep --host 127.0.0.1 (a tunnel reaches it with --allowed-host), "
        "or pass --allow-unauthenticated if only trusted machines can reach this network",
    )


# --- ASGI: the OAuth discovery paths, a refused token ---------------------------------------------


async def _respond(send: Any, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


# The SDK answers a missing and a refused token alike ("Authentication required"); a caller who
# sent one is told it was not recognised instead (a stale or mistyped token is the usual cause).
TOKEN_REFUSED = (
    "the bearer token was not recognised (mistyped, revoked, or another server's; or the server's "
    "tokens file is unreadable, which its log says): check MEMORCH_AUTH_TOKEN, or `memorch token list` "
    "for the tokens of MEMORCH_TOKENS_FILE"
)


class HttpEdge:
    """ASGI middleware in front of the SDK's app: 404 for OAuth discovery, before any token check;
    a 401 to a request that sent a bearer token says the token was refused; a 421 names the Host
    and how to allow it.

    The bearer token itself is checked behind it, by the SDK (``identities.auth_options``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/.well-known/"):
            # No OAuth here: say so plainly rather than 401, which clients read as "start OAuth".
            body = {"error": "not_found", "hint": "memorch offers no OAuth; send Authorization: Bearer <token>"}
            await _respond(send, 404, body, [])
            return
        if scope["type"] == "http":
            send = _refusal_reworded(send, _sent_bearer(scope), _header(scope, b"host"))
        await self.app(scope, receive, send)


def _sent_bearer(scope: dict[str, Any]) -> bool:
    """The request has ``Authorization: Bearer <something>`` (the scheme in any case)."""
    scheme, _, token = _header(scope, b"authorization").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _token_refused(start: dict[str, Any]) -> bool:
    """The SDK's bearer middleware refusing the token: 401 with ``Bearer error="invalid_token"``
    (another 401, should there be one, keeps its own words)."""
    headers = dict((name.lower(), value) for name, value in start.get("headers", []))
    challenge = headers.get(b"www-authenticate", b"")
    return start["status"] == 401 and challenge.startswith(b'Bearer error="invalid_token"')


def _header(scope: dict[str, Any], wanted: bytes) -> str:
    return next((value.decode("latin-1") for name, value in scope.get("headers", []) if name.lower() == wanted), "")


def _host_refused(host: str) -> dict[str, str]:
    """The SDK's 421 says only "Invalid Host header": the name, and how to allow it."""
    return {
        "error": "invalid_host",
        "error_description": f"this server does not answer to the Host {host[:100]!r} (DNS-rebinding "
        "protection): if clients reach it by that name, start it with --allowed-host NAME (or "
        "MEMORCH_ALLOWED_HOSTS)",
    }


def _refusal_reworded(send: Any, sent_bearer: bool, host: str) -> Any:
    """``send``, with two of the SDK's refusals said in full: a 401 to a request that sent a bearer
    token (the SDK's bearer middleware refusing it) as ``TOKEN_REFUSED``, the same status, error
    and header, its description and body replaced; a 421 (a Host not allowed) naming the Host
    and ``--allowed-host``."""
    replacing: tuple[int, dict[str, str], list[tuple[bytes, bytes]]] | None = None

    async def sending(message: dict[str, Any]) -> None:
        nonlocal replacing
        if message["type"] == "http.response.start":
            if sent_bearer and _token_refused(message):
                header = f'Bearer error="invalid_token", error_description="{TOKEN_REFUSED}"'.encode()
                body = {"error": "invalid_token", "error_description": TOKEN_REFUSED}
                replacing = (401, body, [(b"www-authenticate", header)])
                return
            if message["status"] == 421:
                replacing = (421, _host_refused(host), [])
                return
        if replacing is None:
            await send(message)
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            status, body, headers = replacing  # sent once, when the SDK's body ends
            replacing = None
            await _respond(send, status, body, headers)

    return sending


# --- stdio: a JSON-RPC error for every line the SDK's reader cannot use ----------------------


def _request_id(exc: Exception) -> int | str | None:
    """The id of a JSON object that failed validation, when it is a valid id."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return None
    for error in errors(include_url=False):
        given = error.get("input")
        if isinstance(given, dict):
            ident = given.get("id")
            return ident if isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool)) else None
    return None


# A message's top-level "id" before its first nested object or array: how JSON-RPC clients
# write it ({"jsonrpc": "2.0", "id": 7, "method": ..., "params": {...}}).
_LEADING_ID = re.compile(r'^\s*\{[^{}\[\]]*?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')


def _id_of_deep_line(line: str) -> int | str | None:
    """The id of a message too deeply nested for the SDK's parser, so the client waiting for it
    gets its answer instead of waiting until its own timeout: Python's parser reads deeper; past
    its recursion limit too, the id written before the first nested value."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        found = _LEADING_ID.match(line)
        if found is None:
            return None
        ident = json.loads(found.group(1))
    else:
        ident = message.get("id") if isinstance(message, dict) else None
    return ident if isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool)) else None


def error_reply(exc: Exception) -> Any | None:
    """The JSON-RPC error for a line the SDK could not read (None for a blank line)."""
    from mcp.shared.message import SessionMessage
    from mcp.types import ErrorData, JSONRPCError

    errors = exc.errors(include_url=False) if callable(getattr(exc, "errors", None)) else []  # type: ignore[attr-defined]
    if errors and all(error["type"] == "json_invalid" for error in errors):
        if not str(errors[0].get("input", "x")).strip():
            return None
        reason = str(errors[0]["msg"]).removeprefix("Invalid JSON: ")
        code, message, ident = PARSE_ERROR, f"Parse error: {reason}", None
        if reason.startswith("recursion limit exceeded"):  # JSON, only deeper than the SDK reads
            code, ident = INVALID_REQUEST, _id_of_deep_line(str(errors[0].get("input", "")))
            message = f"Invalid Request: nested deeper than the server reads ({reason})"
    else:
        code, ident = INVALID_REQUEST, _request_id(exc)
        message = 'Invalid Request: expected one JSON-RPC 2.0 object with jsonrpc "2.0", method, and object params'
    return SessionMessage(JSONRPCError(jsonrpc="2.0", id=ident, error=ErrorData(code=code, message=message)))


class ReplyingReadStream:
    """The SDK's stdio read stream, answering the lines it could not read instead of passing them on.

    The SDK's dispatcher drops an ``Exception`` item with a debug log; this stream writes a JSON-RPC
    error for it on the same write stream (so replies never interleave) and hands on the rest.
    """

    def __init__(self, inner: Any, write_stream: Any) -> None:
        self._inner = inner
        self._write = write_stream
        self.last_context = None

    async def receive(self) -> Any:
        while True:
            item = await self._inner.receive()
            self.last_context = getattr(self._inner, "last_context", None)
            if not isinstance(item, Exception):
                return item
            reply = error_reply(item)
            if reply is None:
                continue
            try:
                await self._write.send(reply)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                log.debug("dropped the reply to a malformed line: write stream closed")

    def __aiter__(self) -> ReplyingReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> ReplyingReadStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def run_stdio(server: Any) -> None:
    """``MCPServer.run_stdio_async`` with ``ReplyingReadStream`` in front of the dispatcher."""
    from mcp.server.stdio import stdio_server

    # The SDK's own run_stdio_async does exactly this, but takes no stream of ours.
    lowlevel = server._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(
            ReplyingReadStream(read_stream, write_stream), write_stream, lowlevel.create_initialization_options()
        )
