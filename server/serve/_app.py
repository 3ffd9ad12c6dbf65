"""The MCP server: the tools of ``memorch.tools`` on stdio, SSE or streamable HTTP.

Only the MCP SDK is imported here; the orchestrator, LanceDB, LiteLLM and the embedding model
load on the first tool call, so ``tools/list`` is answered quickly after launch.

``serve`` says on stderr where it listens (stdout belongs to JSON-RPC on stdio); an HTTP port that
cannot be bound is a ``ConfigurationError`` before anything is announced.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.mcpserver import MCPServer

from memorch.config import MemoryConfig, package_version, warn_unknown_settings
from memorch.errors import ConfigurationError
from memorch.serve._http_edge import HttpEdge, check_exposure, run_stdio, transport_security
from memorch.serve._identities import auth_options, check_tokens_file

if TYPE_CHECKING:
    from memorch.tools import MemorchServer

Transport = Literal["stdio", "sse", "streamable-http"]

INSTRUCTIONS = """memorch is the user's long-term memory. Search it (search_memories) before
answering questions that may depend on earlier conversations; add durable facts, preferences and
plans the user shares (add_memory); correct outdated ones (update_memory, delete_memory)."""


def server_config(project: str | None = None) -> MemoryConfig:
    """The server's settings: ``MEMORCH_*``, ``--project`` (``auto`` resolved here), and background
    inference on unless set, since a server never makes the assistant wait for the model."""
    config = MemoryConfig(**({"project": project} if project is not None else {}))
    if config.background_inference is None:
        config = config.with_overrides(background_inference="on")
    return config


log = logging.getLogger("memorch")

# How long in-flight requests may take to finish once a stop is asked for (a search or an add
# takes milliseconds; an open event stream would otherwise hold the process forever).
GRACEFUL_SHUTDOWN_S = 10
# When the stores' imports start if no client has listed the tools by then (seconds after launch).
WARM_UNLISTED_S = 1.5


def build_server(config: MemoryConfig | None = None) -> MemorchServer:
    from memorch.tools import MemorchServer, ServerState, register_all

    config = config or MemoryConfig()
    state = ServerState(config)
    # No lifespan closes the stores: on HTTP transports a lifespan runs per session, and every
    # acknowledged write is already durable in SQLite, so process exit needs no cleanup.
    server = MemorchServer(
        "memorch",
        version=package_version(),
        instructions=INSTRUCTIONS,
        log_level=_sdk_level(config.log_level),
        **auth_options(config),  # the SDK's bearer check on HTTP transports (identities.py)
    )
    register_all(server, state)
    server.state = state  # serve() closes it when an HTTP server stops
    return server


def _sdk_level(level: str) -> Any:
    level = level.upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "WARNING"


def http_app(
    server: MCPServer,
    transport: Transport,
    host: str,
    config: MemoryConfig,
    allowed_hosts: list[str] | None = None,
) -> Any:
    """The Starlette app for an HTTP transport, behind ``HttpEdge`` (OAuth discovery 404); the SDK
    checks the bearer token (``build_server`` passes ``identities.auth_options``).

    Host/Origin validation stays on for every bind (``http_edge.transport_security``) and bodies over
    ``config.max_request_bytes`` get 413 from the SDK before they are parsed.
    """
    security = transport_security(host, [*config.allowed_hosts, *(allowed_hosts or [])])
    limit = config.max_request_bytes
    if transport == "sse":
        app = server.sse_app(host=host, transport_security=security, max_request_body_size=limit)
    else:
        app = server.streamable_http_app(host=host, transport_security=security, max_request_body_size=limit)
    return HttpEdge(app)


def _store_words(config: MemoryConfig) -> str:
    """The start line's store: which data directory, and whose memories a call without a
    ``user_id`` reads and writes (two clients with different MEMORCH_USER_ID see different
    memories; the line is where that shows, a newcomer's trial)."""
    return f"data directory {config.data_dir}, user_id {config.user_id!r} by default, "


def _project_words(config: MemoryConfig) -> str:
    """The start line's project: which layer a workspace's server writes to shows in its log."""
    return f"project {config.project}, " if config.project else ""


def _llm_words(config: MemoryConfig) -> str:
    """The start line's model: a client's log is where a wrong MEMORCH_LLM_MODEL shows first."""
    if not config.llm_enabled:
        return "no LLM (memories are stored as said)"
    where = f" at {_without_credentials(config.llm_api_base)}" if config.llm_api_base else ""
    return f"LLM {config.llm_model}{where}"


def _without_credentials(url: str) -> str:
    """``url`` without a user and password in it (``https://user:secret@host/v1``): a client's log
    is no place for them."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))


def endpoint_url(transport: Transport, host: str, port: int) -> str:
    """The URL a client connects to (``/mcp`` for streamable HTTP, ``/sse`` for SSE)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{'/sse' if transport == 'sse' else '/mcp'}"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a ``ConfigurationError`` naming the address that cannot be used."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            error_code="CANNOT_LISTEN",
            details={"host": host, "port": port},
            suggestion="choose another --port (or stop the program using it), or check --host",
        ) from exc
    return sock


# glibc's mallopt parameters (malloc.h): how many arenas a server process keeps, and the size
# from which a block is mapped on its own (and unmapped whole when freed).
_M_ARENA_MAX, _ARENAS = -8, 2
_M_MMAP_THRESHOLD, _MAPPED_FROM = -3, 1 << 20


def steady_heap() -> None:
    """Keep a long-running server's native heap from growing by fragmentation (glibc only).

    The server's Python heap stays flat under load (tracemalloc: +7 MB over 3,000 operations),
    but its RSS grew ~17 MB per 1,000 operations: memory LanceDB's and numpy's threads freed
    stayed in glibc's per-thread arenas (up to 8 per core). Two arenas flattened it with no
    latency cost: 6,000-operation soak, RSS over the last 2,000 operations +11 MB instead of
    +25 MB, p50 13.3 ms instead of 14.2.

    Blocks from 1 MB up are mapped on their own. glibc's default threshold moves: each time a
    mapped block is freed it rises to that block's size (up to 32 MB), after which multi-MB
    buffers (LanceDB reading the table to compact it, the held embeddings growing) come from
    the heap and leave holes that live blocks pin. 20,000-operation soak (``bench/soak.py``):
    RSS over the last half +14 % (458 → 524 MB) with the moving threshold, -1.5 to +1.3 % in
    three runs at 1 MB; load 49-53 requests/s and soak p50 15-17 ms either way. ``MALLOC_*`` in
    the environment, when set, win."""
    if sys.platform != "linux" or any(name.startswith("MALLOC_") for name in os.environ):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt  # glibc; musl's libc has another name
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, _ARENAS)
    mallopt(_M_MMAP_THRESHOLD, _MAPPED_FROM)


def _warm_litellm() -> None:
    """Import LiteLLM on a thread while the server starts answering: the first inferring add or
    background inference would otherwise wait for it. ``tools/list`` does not: nothing it needs
    imports LiteLLM."""
    from memorch.models._litellm import start_litellm_import

    start_litellm_import()


def _warm_stores() -> None:
    """Import what the first tool call would, on a thread once the client has listed the tools:
    LanceDB's import alone takes 1.5-2 s (its REST client's models), and the first search after a
    launch paid it with the model's runtime: 2.7 s, 0.5 s once these are imported (a newcomer's
    trial measured 4.4-6.2 s for the first search on a loaded machine). Only imports: the stores
    and the model are opened by the first call, as before."""
    import importlib

    def stores() -> None:
        for module in ("lancedb", "onnxruntime", "tokenizers"):
            importlib.import_module(module)

    _import_on_thread("the stores' modules", "memorch-import-stores", stores)


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn``, run by the first of its callers only (the first tools/list, or the timer)."""
    first = threading.Lock()  # taken once, never released

    def run() -> None:
        if first.acquire(blocking=False):
            fn()

    return run


def _import_on_thread(what: str, name: str, load: Callable[[], object]) -> None:
    """Run ``load`` (imports) on a thread, its time in the debug log. Not a daemon: the
    interpreter waits for it before it exits. A client that closes stdin at once would otherwise
    end the process in the middle of a native library's import, which aborts it (SIGABRT, seen
    once in CI)."""
    import time

    def run() -> None:
        started = time.perf_counter()
        load()
        log.debug("%s imported in the background in %.1f s", what, time.perf_counter() - started)

    threading.Thread(target=run, name=name, daemon=False).start()


def _has_token(config: MemoryConfig) -> bool:
    """A bearer token, or a tokens file of per-caller tokens when the configuration has one."""
    return bool(config.auth_token or config.tokens_in_use)


def _announce(message: str) -> None:
    """Tell the person at the terminal; never on stdout, which carries JSON-RPC."""
    print(message, file=sys.stderr, flush=True)


def serve(
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    config: MemoryConfig | None = None,
    allowed_hosts: list[str] | None = None,
    allow_unauthenticated: bool = False,
) -> None:
    config = config or MemoryConfig()
    logging.basicConfig(level=_sdk_level(config.log_level))
    warn_unknown_settings()  # once, first: a misspelt MEMORCH_AUTH_TOKEN explains a refusal below
    steady_heap()
    tokens = None
    if transport != "stdio":  # before anything loads: a refused bind is one error line
        check_exposure(host, _has_token(config), allow_unauthenticated)
        tokens = check_tokens_file(config)  # a missing or broken tokens file stops here
        transport_security(host, [*config.allowed_hosts, *(allowed_hosts or [])])  # names checked up front
    server = build_server(config)
    # Not before: the imports' hold on the GIL made the start-up answers 10 % slower.
    warm = _once(_warm_stores)
    server.on_first_list = warm
    # A client that calls a tool without listing first (the TypeScript SDK's Client does not
    # list on connect) waited 2.4-3 s for its first search: the imports start anyway, a moment
    # after the start-up answers.
    unlisted = threading.Timer(WARM_UNLISTED_S, warm)
    unlisted.start()
    if config.llm_enabled:
        _warm_litellm()
    try:
        _serve(server, transport, host, port, config, allowed_hosts, tokens)
    finally:
        unlisted.cancel()  # a process done before it fires does not wait for it


def _serve(
    server: Any,
    transport: Transport,
    host: str,
    port: int,
    config: MemoryConfig,
    allowed_hosts: list[str] | None,
    tokens: int | None,
) -> None:
    import anyio

    if transport == "stdio":
        # One line, always: MCP clients start servers with a minimal environment, so a client's
        # log is where one finds which data directory (and so which memories) it is serving.
        started = (
            f"memorch {package_version()}: MCP server on stdio, {_store_words(config)}"
            f"{_project_words(config)}{_llm_words(config)}"
        )
        if sys.stdin.isatty():
            started += (
                "; waiting for an MCP client to speak JSON-RPC on stdin (MCP clients such as Claude Desktop "
                "start this command themselves; Ctrl+C stops it)"
            )
        _announce(started)
        anyio.run(_serve_stdio, server)
        return
    import uvicorn

    sock = listen(host, port)
    app = http_app(server, transport, host, config, allowed_hosts)
    url = endpoint_url(transport, host, port)
    auth = " (requests need Authorization: Bearer <MEMORCH_AUTH_TOKEN>)" if config.auth_token else ""
    if tokens is not None:
        auth = f" (requests need Authorization: Bearer <a token>: {tokens} in {config.tokens_in_use}"
        auth += ", or MEMORCH_AUTH_TOKEN)" if config.auth_token else ")"
    # The URL last but for the token's note: scripts read it as "listening on (http://\S+)".
    _announce(
        f"memorch {package_version()}: MCP server ({transport}), {_store_words(config)}{_project_words(config)}"
        f"{_llm_words(config)}, listening on {url}{auth}"
    )
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=config.log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    anyio.run(_serve_until_stopped, uvicorn.Server(uv_config), sock, server.state)


class _Stopped(Exception):
    """SIGTERM arrived and uvicorn has finished its graceful shutdown."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


async def _serve_stdio(server: Any) -> None:
    """Serve one client on stdin/stdout (malformed lines get a JSON-RPC error, see
    ``http_edge.ReplyingReadStream``) until it closes stdin, then write the index rows and graph
    work the store owes before the process exits, as an HTTP server does when it stops (they
    were left queued in the ledger for the next start, and `memorch doctor` counted them owed)."""
    try:
        await run_stdio(server)
    finally:
        await server.state.close()


async def _serve_until_stopped(http: Any, sock: socket.socket, state: Any) -> None:
    """Serve until Ctrl+C or SIGTERM (``docker stop``, systemd), then stop cleanly: uvicorn stops
    accepting, lets in-flight requests finish (at most ``GRACEFUL_SHUTDOWN_S``), and the store
    writes the index work it owes before the process exits 0.

    uvicorn re-raises the signal it caught once it has shut down, to end the process the default
    way (SIGTERM: killed, exit -15, nothing printed); the handler installed here turns that into
    ``_Stopped`` instead, which ends this coroutine normally."""
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        await http.serve([sock])
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        await state.close()
    _announce(f"memorch {package_version()}: stopped; acknowledged writes are stored and indexed")
