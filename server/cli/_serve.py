"""``memorch serve``: the MCP server's command line (transport, address, project)."""

from __future__ import annotations

from typing import Annotated

import typer

from memorch.cli._options import ProjectOpt


def serve(
    transport: Annotated[str, typer.Option(help="stdio | sse | streamable-http")] = "stdio",
    host: Annotated[str, typer.Option(help="Address for HTTP transports")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for HTTP transports (1-65535)")] = 8765,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="Also accept this Host name, e.g. a tunnel's (repeatable; MEMORCH_ALLOWED_HOSTS)"
        ),
    ] = None,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="Serve a non-loopback --host without MEMORCH_AUTH_TOKEN (trusted networks only)",
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Run the MCP server (stdio, as MCP clients launch it).

    It says on stderr where it listens; stdout carries only JSON-RPC.
    Example: memorch serve --transport streamable-http --port 8765"""
    if transport not in ("stdio", "sse", "streamable-http"):
        raise typer.BadParameter(
            f"must be stdio, sse or streamable-http, not {transport!r}", param_hint="'--transport'"
        )
    if not 1 <= port <= 65535:
        raise typer.BadParameter(f"must be a TCP port from 1 to 65535, not {port}", param_hint="'--port'")
    from memorch.serve._app import serve as run_server
    from memorch.serve._app import server_config

    config = server_config(project)
    run_server(transport, host, port, config, allowed_host, allow_unauthenticated)  # type: ignore[arg-type]
