"""The ``memorch`` command's entry point.

``memorch serve`` as MCP clients run it, with no options, starts the server without the command
line: importing typer and building some twenty commands took about half of what memorch added
to a bare MCP SDK server's start (``bench/cold_start.py``; click and rich load anyway, with the
SDK's HTTP stack and log handler). Every other command line (``memorch serve --help`` and
``memorch serve --port 9000`` included) goes through ``cli.py``. Both end a failure the same
way: one line from ``cli_errors``; Ctrl+C says ``Aborted!``; a closed pipe ends quietly; exit 1.

A command line that finished ends the process without the interpreter's teardown
(``exit_now``): tearing down the modules LiteLLM and LanceDB bring took 1.4-2.5 s after
the last output on a busy 2-core machine, a wait the user sees before the prompt returns.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def main() -> None:
    if sys.argv[1:] != ["serve"]:
        from memorch.cli._main import app

        exit_now(exit_code(app))
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


def exit_code(command: Callable[[], object]) -> int:
    """Run a click command in its standalone mode and return the code it exits with."""
    try:
        command()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)  # what the interpreter does with ``sys.exit("message")``
        return 1
    return 0


def exit_now(code: int) -> NoReturn:
    """Exit as the interpreter would, minus freeing every module and object one by one: first
    what ``Py_Finalize`` runs before that (waiting for non-daemon threads and the executors'
    workers, then the ``atexit`` handlers: LiteLLM's client cleanup, logging's flush), then
    flush the output and leave. The memory is the operating system's to take back; every
    write was committed before the command answered."""
    threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's own first step
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader left (`memorch list | head`): nothing to tell it
            code = code or 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover - python -m memorch.cli._launch
    main()
