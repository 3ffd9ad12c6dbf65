"""``memorch token add|list|revoke``: per-caller bearer tokens for the HTTP transports.

Each token acts for one user (and, if given, only some agents / projects); the tokens file
(``--file``, else ``MEMORCH_TOKENS_FILE``, else ``tokens.json`` in the user's config directory,
which ``memorch serve`` reads too) keeps its hash, never the token. ``add`` prints the token
once, alone on stdout (so ``TOKEN=$(memorch token add alice)`` works), and what it is for on
stderr. A running server sees changes on the caller's next request.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from memorch.cli._options import HelpGroup, err

out = Console(highlight=False)
token_app = typer.Typer(
    cls=HelpGroup,
    help="Bearer tokens for HTTP callers, each bound to one user.\n\n"
    "The tokens file is --file, else MEMORCH_TOKENS_FILE, else ~/.config/memorch/tokens.json (which the server "
    "reads too); it keeps each token's hash, never the token.",
    no_args_is_help=True,
)
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        metavar="PATH",
        help="The tokens file (default: MEMORCH_TOKENS_FILE, else ~/.config/memorch/tokens.json)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")]


def _tokens_file(given: Path | None) -> Path:
    """``--file``, else MEMORCH_TOKENS_FILE, else the default file in the user's config directory:
    the one ``memorch serve`` reads when MEMORCH_TOKENS_FILE is unset, so both agree."""
    if given is not None:
        return given.expanduser()
    from memorch.config import MemoryConfig, default_tokens_file

    return MemoryConfig().tokens_file or default_tokens_file()


@token_app.command("add")
def add_command(
    user_id: Annotated[str, typer.Argument(metavar="USER", help="The user this token acts for")],
    agent: Annotated[
        list[str] | None, typer.Option("--agent", metavar="AGENT", help="Allow only this agent id (repeatable)")
    ] = None,
    project: Annotated[
        list[str] | None, typer.Option("--project", metavar="PROJECT", help="Allow only this project (repeatable)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label to list and revoke it by (default: USER)")] = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token for USER and print it once (only its hash is kept).
    Example: memorch token add alice --agent claude --name alice-laptop"""
    from memorch.serve._identities import add_token

    path = _tokens_file(file)
    record, token = add_token(path, user_id, agent or [], project or [], name)
    if as_json:
        sys.stdout.write(json.dumps({"token": token, **record.public(), "file": str(path)}) + "\n")
        return
    sys.stdout.write(token + "\n")
    limits = "".join(f", {key} {', '.join(values)}" for key, values in record.identity().limits.items() if values)
    err.print(
        f"token {record.name!r} for user {record.user_id!r}{limits} added to {path}; it is shown only now. "
        "Clients send it as Authorization: Bearer <token>. Every MCP server over HTTP (`memorch serve "
        "--transport ...`) started with this file, whatever its data directory, now asks each client for "
        "a token (the web page of `memorch ui` does not read this file: it takes MEMORCH_AUTH_TOKEN); "
        f"`memorch token revoke {record.name}` removes this one."
    )


@token_app.command("list")
def list_command(file: FileOpt = None, as_json: JsonOpt = False) -> None:
    """Show the tokens (never the tokens themselves).

    Name, user, allowed agents and projects, prefix, created.
    Example: memorch token list"""
    from memorch.cli._render import local_time
    from memorch.serve._identities import read_tokens

    path = _tokens_file(file)
    records = [record.public() for record in read_tokens(path)]
    if as_json:
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    if not records:
        out.print(f"no tokens in {path}; add one with `memorch token add USER`")
        return
    table = Table(
        "name", "user", "agents", "projects", "prefix", "created", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    # The name, the prefix and the date whole: revoke takes the name or the prefix as shown, and
    # a name cut to "dave-work…" on an 80-column terminal matched no token.
    for column in (table.columns[0], *table.columns[-2:]):
        column.no_wrap = True
    table.columns[0].min_width = max(len(row["name"]) for row in records)
    for row in records:
        agents, projects = ", ".join(row["agent_id"]) or "any", ", ".join(row["project"]) or "any"
        table.add_row(row["name"], row["user_id"], agents, projects, row["prefix"] + "…", local_time(row["created_at"]))
    out.print(table)


@token_app.command("revoke")
def revoke_command(
    which: Annotated[str, typer.Argument(metavar="NAME|PREFIX", help="A token's name or prefix, as listed")],
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a token.

    A running server refuses it from the next request on.
    Example: memorch token revoke alice-laptop"""
    from memorch.serve._identities import revoke_token

    path = _tokens_file(file)
    record = revoke_token(path, which)
    if as_json:
        sys.stdout.write(json.dumps({"revoked": record.public()}) + "\n")
        return
    out.print(f"revoked token {record.name!r} of user {record.user_id!r} ({record.prefix}…)")


def register_token(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
