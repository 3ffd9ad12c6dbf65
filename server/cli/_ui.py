"""``memorch ui``: a local web page to see and fix memories (the app itself is ``serve/_ui_api.py``).

Loopback only by default; a non-loopback ``--host`` is refused unless ``MEMORCH_AUTH_TOKEN`` is
set, and then every request needs the token (``/?token=...`` once sets an HttpOnly cookie).
This module stays light: the CLI imports it on every command, Starlette and the store load only
when the page is served.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from memorch.config import MemoryConfig, package_version, warn_unknown_settings


def serve_ui(host: str, port: int, config: MemoryConfig) -> None:
    """Serve the page until Ctrl+C (refuses a non-loopback host without a token)."""
    from memorch.errors import ConfigurationError
    from memorch.serve._http_edge import is_loopback

    if not config.auth_token and not is_loopback(host):  # the page has one token, none of serve's options
        raise ConfigurationError(
            f"refusing to serve the page on {host} without MEMORCH_AUTH_TOKEN: anyone who can reach that "
            "address could read and change every memory",
            error_code="UNAUTHENTICATED_BIND",
            details={"host": host},
            suggestion="set MEMORCH_AUTH_TOKEN (the page takes that one token; per-caller tokens are the MCP "
            "server's), or keep --host 127.0.0.1 and reach it through an SSH tunnel",
        )
    import anyio
    import uvicorn

    from memorch.serve._app import listen
    from memorch.serve._ui_api import build_app

    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    hint = " (open it once with ?token=<MEMORCH_AUTH_TOKEN>)" if config.auth_token else ""
    print(f"memorch {package_version()}: memory UI on http://{shown}:{port}/{hint}", file=sys.stderr, flush=True)
    app = build_app(config, host)
    uv_config = uvicorn.Config(app, host=host, port=port, log_level=config.log_level.lower(), lifespan="on")
    anyio.run(uvicorn.Server(uv_config).serve, [sock])


def register_ui(app: typer.Typer) -> None:
    """Add ``memorch ui`` to the command line."""

    @app.command("ui")
    def ui(
        host: Annotated[str, typer.Option(help="Address to listen on (non-loopback needs MEMORCH_AUTH_TOKEN)")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option(help="Port to listen on (1-65535)")] = 8766,
        user_id: Annotated[
            str | None, typer.Option("--user-id", help="User shown first (default: MEMORCH_USER_ID)")
        ] = None,
    ) -> None:
        """A local web page to list, search, edit, delete and restore memories, see their history and the graph.
        Example: memorch ui --port 8766"""
        if not 1 <= port <= 65535:
            raise typer.BadParameter(f"must be a TCP port from 1 to 65535, not {port}", param_hint="'--port'")
        config = MemoryConfig()
        warn_unknown_settings()
        if user_id:
            config = config.with_overrides(user_id=user_id)
        config.prepare_data_dir()
        serve_ui(host, port, config)
