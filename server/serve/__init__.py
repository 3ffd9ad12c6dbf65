"""Serving memorch: the MCP app on stdio, SSE and streamable HTTP, and the web page.

Public: ``build_server(config)`` (an ``MCPServer`` with memorch's tools) and ``serve``.

- ``_app``: the MCP server: building it, its settings (``server_config``) and running a transport.
- ``_http_edge``: who may talk to the server over HTTP (hosts, auth, body size), and what a
  malformed stdio line gets.
- ``_identities``: per-caller bearer tokens kept hashed in a tokens file, and their verifier.
- ``_ui_api``: the web app behind ``memorch ui``; its static files are in ``ui_static/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memorch.serve._app import build_server, serve

__all__ = ["build_server", "serve"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``memorch token`` (which reads ``_identities``) does not load the MCP server.
    if name in __all__:
        from memorch.serve import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'memorch.serve' has no attribute {name!r}")
