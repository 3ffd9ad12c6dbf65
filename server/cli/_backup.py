"""``memorch backup``, ``memorch restore-backup`` (the logic is in ``maintenance/_backup.py``) and
``memorch export``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from memorch.cli._options import AgentOpt, RunOpt, emit, err, memories, open_memory, plural
from memorch.errors import ConfigurationError, ValidationError

out = Console(highlight=False)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")]


def refuse_shared_ledger(config: Any) -> None:
    """Backups copy the SQLite file; with the ledger on PostgreSQL that file is not the ledger."""
    if config.ledger_url:
        raise ConfigurationError(
            "memorch backup and restore-backup copy the SQLite ledger, and MEMORCH_LEDGER_URL puts it on PostgreSQL",
            error_code="BACKUP_UNSUPPORTED",
            suggestion="back up PostgreSQL with pg_dump or the provider's snapshots; `memorch reindex` rebuilds "
            "the vectors and the graph from it",
        )


def backup_command(
    dest: Annotated[Path, typer.Argument(metavar="DIR", help="A new directory: gets memorch.db and backup.json")],
    as_json: JsonOpt = False,
) -> None:
    """Snapshot the SQLite ledger, also while a server runs.

    The indexes are rebuilt on restore.  Example: memorch backup ~/memorch-backups/today"""
    from memorch.config import MemoryConfig
    from memorch.maintenance._backup import LEDGER, backup
    from memorch.storage.history import SQLiteLedger

    config = MemoryConfig()
    refuse_shared_ledger(config)
    if not (config.data_dir / LEDGER).is_file():  # a mistyped directory: no empty store made, no empty backup
        raise ConfigurationError(
            f"the data directory {config.data_dir} holds no ledger ({LEDGER}): nothing to back up",
            error_code="NOTHING_TO_BACK_UP",
            details={"data_dir": str(config.data_dir)},
            suggestion="set MEMORCH_DATA_DIR to the directory your server uses (as in your MCP client's config); "
            "`memorch doctor` shows the one a command uses",
        )
    ledger = SQLiteLedger(config.data_dir / LEDGER)
    try:
        with err.status("backing up"):
            result = backup(ledger, dest)
    finally:
        ledger.close()
    if as_json:
        out.print_json(json.dumps(result))
    else:
        events = plural(result["history_events"], "history event")
        out.print(f"backed up {memories(result['memories'])} ({events}) to {dest}", soft_wrap=True)


def restore_command(
    src: Annotated[Path, typer.Argument(metavar="DIR", help="A directory written by `memorch backup`")],
    force: Annotated[bool, typer.Option("--force", help="Replace a data directory that holds memories")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Put a backup's ledger back, then rebuild the indexes.

    Into MEMORCH_DATA_DIR; one that holds memories (deleted ones too) needs --force. Refused
    while a server or another memorch command has the data directory open: stop them first.
    Example: memorch restore-backup ~/memorch-backups/today"""
    from memorch.config import MemoryConfig
    from memorch.maintenance._backup import restore

    refuse_shared_ledger(MemoryConfig())
    with err.status("restoring"):
        result = asyncio.run(restore(MemoryConfig(), src, force))
    if as_json:
        out.print_json(json.dumps(result))
    else:
        kept = (
            f"; the replaced ledger is kept as {result['kept']} (every text it held, for good: a later "
            "`memorch forget` does not reach it; delete it once you no longer need it)"
            if result["kept"]
            else ""
        )
        out.print(f"restored {memories(result['memories'])} from {src} and rebuilt the indexes{kept}", soft_wrap=True)


def export_command(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="where to write the JSONL file")],
    user_id: Annotated[str | None, typer.Option(help="only this user's memories (default: every scope)")] = None,
    agent_id: AgentOpt = None,
    run_id: RunOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write memories, with their history, to a JSONL file.

    Ids, metadata, relations and history, of every scope unless one is given; `memorch import`
    reads the file back. An existing FILE is replaced only with --force.
    Example: memorch export backup.jsonl"""
    if path.exists() and not force:  # a second export (a mistyped --user-id: an empty one) over the first
        raise ValidationError(
            f"{path} already exists",
            error_code="EXPORT_EXISTS",
            details={"path": str(path)},
            suggestion="choose a new path for each export, or pass --force to replace it",
        )
    with open_memory() as m:
        result = m.export_memories(path, user_id=user_id, agent_id=agent_id, run_id=run_id)
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"exported {memories(r['memories'])} and {plural(r['deleted'], 'deleted one')}"
            f" ({plural(r['history_events'], 'history event')}) to {path}"
        ),
    )


def register_backup(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore-backup")(restore_command)
