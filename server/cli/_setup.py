"""``memorch setup``: the command; ``setup_clients.py`` has the logic."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from memorch.cli._options import err
from memorch.cli._setup_clients import (
    CLIENTS,
    USER,
    config_path,
    in_temporary_environment,
    server_entry,
    snippet,
    write_config,
)


class ClientName(StrEnum):  # the keys of CLIENTS
    claude_desktop = "claude-desktop"
    claude_code = "claude-code"
    cursor = "cursor"
    vscode = "vscode"
    windsurf = "windsurf"


class Scope(StrEnum):
    user = "user"
    project = "project"


def setup(
    client: Annotated[ClientName, typer.Argument(metavar="CLIENT", help="The MCP client to configure")],
    scope: Annotated[
        Scope,
        typer.Option(
            help="user: for all your projects; project: this directory's config file (claude-code, cursor, vscode)"
        ),
    ] = Scope.user,
    print_only: Annotated[bool, typer.Option("--print", help="Print the entry instead of writing the file")] = False,
    name: Annotated[str, typer.Option(help="The server's name in the client's config")] = "memorch",
    user_id: Annotated[
        str | None, typer.Option("--user-id", help="Set MEMORCH_USER_ID for the server: whose memories it keeps")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Set MEMORCH_DATA_DIR for the server (default: your user data directory)")
    ] = None,
) -> None:
    """Add memorch to an MCP client's config file, by absolute path; other servers are kept and
    the old file is backed up.  Example: memorch setup claude-desktop --user-id alice"""
    key = client.value
    if scope.value not in CLIENTS[key].scopes:
        raise typer.BadParameter(f"{key} has no project scope, only user", param_hint="'--scope'")
    if not name.strip():
        raise typer.BadParameter("must not be empty", param_hint="'--name'")
    path = config_path(key, scope.value)
    entry = server_entry(key, user_id=user_id, data_dir=data_dir)
    if in_temporary_environment([entry["command"]]):
        err.print(
            "warning: this memorch runs from uv's cache (uvx), which `uv cache clean` removes;"
            " `uv tool install` gives it a lasting path"
        )
    if print_only:
        sys.stdout.write(json.dumps(snippet(key, name, entry), indent=2) + "\n")
        err.print(f"add it to {path} (nothing was written)", soft_wrap=True)
        return
    result = write_config(path, key, name, entry)
    out = Console(soft_wrap=True, highlight=False)
    if result.action == "unchanged":
        out.print(f"{CLIENTS[key].title}: server {name!r} in {result.path} is already up to date")
        return
    out.print(f"{CLIENTS[key].title}: {result.action} server {name!r} in {result.path}")
    if result.backup is not None:
        out.print(f"backup of the previous file: {result.backup}")
    out.print(f"it runs: {' '.join([entry['command'], *entry['args']])}")
    out.print(f"next: {CLIENTS[key].after}" + (" (and approve the project's server)" if scope.value != USER else ""))
