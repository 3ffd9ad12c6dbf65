"""The ``memorch`` command's entry point.

``memorch serve`` as MCP clients run it, with no options, starts the server without the command
line: importing typer, click and rich and building some twenty commands took about half of what
memorch adds to a bare MCP SDK server's start (``bench/cold_start.py``). Every other command
line (``memorch serve --help`` and ``memorch serve --port 9000`` included) goes through ``cli.py``,
and both report a failure through ``cli_errors`` in the same one line.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] != ["serve"]:
        from .cli import app

        app()
        return
    from .cli_errors import report_failure

    try:
        from .app import serve, server_config

        serve(config=server_config())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # the outermost catch-all, as ReportingGroup.invoke's
        raise SystemExit(report_failure(exc, "memorch serve")) from exc


if __name__ == "__main__":  # pragma: no cover - python -m memorch.launch
    main()
