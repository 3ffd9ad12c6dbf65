"""The ``memorch`` command line: every command, its options and how a failure is printed.

- ``_launch``: the console script's entry point (``main``); ``memorch serve`` as MCP clients run
  it skips typer entirely (cold start); any other command line ends without the interpreter's
  teardown (``exit_now``).
- ``_main``: the typer app and the memory commands (add, search, list, get, update, restore,
  history, graph, import, export); ``_delete``: delete, delete-all and forget (a purge, for
  good); ``_commands_admin``: stats, reindex, reprocess, doctor.
- ``_options``: options shared by commands, help text, and the output helpers (``out``/``err``
  consoles, ``open_memory``, ``emit`` for ``--json``, ``confirm`` before removing).
- ``_render``: how results are printed: what an add did, tables that fit 80 columns (memories,
  history, search's explain, stats, doctor, graph).
- ``_errors``: a failure as one line on stderr, in the CLI's words; a bug as INTERNAL_ERROR.
- ``_serve``, ``_setup`` (+ ``_setup_clients``: writing clients' config files), ``_token``,
  ``_backup``, ``_ui``, ``_import``: one command (or group) each.
"""

from memorch.cli._launch import main

__all__ = ["main"]
