"""The ``memorch`` command's entry point.

``memorch serve`` as MCP clients run it, with no options, starts the server without the command
line: importing typer and building some twenty commands took about half of what memorch added
to a bare MCP SDK server's start (``bench/cold_start.py``; click and rich load anyway, with the
SDK's HTTP stack and log handler). Every other command line (``memorch serve --help`` and
``memorch serve --port 9000`` included) goes through ``cli.py``. Both end a failure the same
way: one line from ``cli_errors``; Ctrl+C says ``Aborted!``; a closed pipe ends quietly; exit 1.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] != ["serve"]:
        from memorch.cli._main import app

        app()
        return
    from memorch.cli._errors import report_failure

    try:
        from memorch.serve._app import serve, server_config

        serve(config=server_config())
    except KeyboardInterrupt:
        print("\nAborted!", file=sys.stderr)  # what click prints for the other commands
        raise SystemExit(1) from None
    except (EOFError, BrokenPipeError):
        raise SystemExit(1) from None  # the client went away: nothing to report to
    except Exception as exc:  # noqa: BLE001, RUF100 - the outermost catch-all, as ReportingGroup.invoke's: a bug is INTERNAL_ERROR
        raise SystemExit(report_failure(exc, "memorch serve")) from exc


if __name__ == "__main__":  # pragma: no cover - python -m memorch.cli._launch
    main()
