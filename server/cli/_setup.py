"""``memorch setup``: the command and its arguments; ``_setup_clients.py`` has the logic."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from memorch.cli._options import err
from memorch.cli._setup_clients import (
    CLIENTS,
    HTTP_CLIENTS,
    USER,
    WORKSPACE_CLIENTS,
    config_path,
    header_pair,
    http_entry,
    in_temporary_environment,
    server_entry,
    setting_problems,
    snippet,
    url_problem,
    write_config,
)
from memorch.domain._validation import scope_id
from memorch.errors import ValidationError


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
    llm: Annotated[
        str | None,
        typer.Option("--llm", metavar="MODEL", help="Set MEMORCH_LLM_MODEL: the LLM that extracts facts"),
    ] = None,
    llm_api_base: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Set MEMORCH_LLM_API_BASE: where that LLM answers, e.g. a local server"),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", metavar="NAME=VALUE", help="Set any MEMORCH_* setting for the server (repeatable)"),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            metavar="auto|NAME",
            help="Serve a project's layer (serve --project); auto names it from the workspace's git repository",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Connect to a memorch served over HTTP instead of starting one"),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(metavar="'NAME: VALUE'", help="An HTTP header for --url, e.g. a bearer token (repeatable)"),
    ] = None,
) -> None:
    """Add memorch to an MCP client's config file.

    The entry starts this memorch by its absolute path, with the settings given, or connects to
    one served over HTTP (--url). Other servers in the file are kept and the old file is backed
    up; --print shows the entry and writes nothing.
    Example: memorch setup claude-desktop --user-id alice"""
    key = client.value
    if scope.value not in CLIENTS[key].scopes:
        raise typer.BadParameter(f"{key} has no project scope, only user", param_hint="'--scope'")
    if not name.strip():
        raise typer.BadParameter("must not be empty", param_hint="'--name'")
    path = config_path(key, scope.value)
    if url is not None:
        server_side = {
            "--user-id": user_id,
            "--data-dir": data_dir,
            "--llm": llm,
            "--llm-api-base": llm_api_base,
            "--env": env,
            "--project": project,
        }
        entry = _http(key, url, header or [], [option for option, value in server_side.items() if value])
    else:
        if header:
            raise typer.BadParameter("goes with --url (a server reached over HTTP)", param_hint="'--header'")
        settings = _settings(user_id, data_dir, llm, llm_api_base, env or [])
        entry = server_entry(key, env=settings, project=_project(key, project))
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
    out.print(_what_it_does(entry))
    out.print(f"next: {CLIENTS[key].after}" + (" (and approve the project's server)" if scope.value != USER else ""))


def _http(client: str, url: str, headers: list[str], server_side: list[str]) -> dict[str, Any]:
    """An HTTP entry: for a client whose file takes one, with none of the started server's settings."""
    if client not in HTTP_CLIENTS:
        takes = _listed(HTTP_CLIENTS)
        raise typer.BadParameter(
            f"{CLIENTS[client].title}'s config file takes only servers it starts itself, no URL; {takes} take one"
            f" (leave out --url to have {client} start memorch)",
            param_hint="'--url'",
        )
    if server_side:
        apply = "does not apply" if len(server_side) == 1 else "do not apply"
        raise typer.BadParameter(
            f"a server reached over HTTP runs on its own, so {_listed(server_side)} {apply}: give such settings"
            " to that server (memorch serve --project, its MEMORCH_* environment, memorch token add)",
            param_hint="'--url'",
        )
    problem = url_problem(url)
    if problem:
        raise typer.BadParameter(f"{problem}; memorch serves http://HOST:PORT/mcp (or /sse)", param_hint="'--url'")
    pairs: dict[str, str] = {}
    for text in headers:
        pair = header_pair(text)
        if pair is None:
            raise typer.BadParameter(
                f"{text!r} is not NAME: VALUE (e.g. 'Authorization: Bearer TOKEN')", param_hint="'--header'"
            )
        pairs[pair[0]] = pair[1]
    return http_entry(client, url, pairs)


def _listed(words: list[str] | tuple[str, ...]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else list(words))


def _settings(
    user_id: str | None, data_dir: Path | None, llm: str | None, llm_api_base: str | None, pairs: list[str]
) -> dict[str, str]:
    """The server's MEMORCH_* settings from the options, checked; one variable set twice differently
    is refused."""
    given: dict[str, tuple[str, str]] = {}  # variable -> (value, the option that set it)

    def put(variable: str, value: str, option: str) -> None:
        if variable in given and given[variable][0] != value:
            raise typer.BadParameter(f"{variable} is already set by {given[variable][1]}", param_hint=f"'{option}'")
        given[variable] = (value, option)

    if user_id is not None:
        put("MEMORCH_USER_ID", user_id, "--user-id")
    if data_dir is not None:
        put("MEMORCH_DATA_DIR", str(data_dir.expanduser().resolve()), "--data-dir")
    if llm is not None:
        put("MEMORCH_LLM_MODEL", llm, "--llm")
    if llm_api_base is not None:
        put("MEMORCH_LLM_API_BASE", llm_api_base, "--llm-api-base")
    for text in pairs:
        variable, equals, value = text.partition("=")
        if not equals or not variable.strip():
            raise typer.BadParameter(f"{text!r} is not NAME=VALUE (e.g. MEMORCH_LLM_API_KEY=...)", param_hint="'--env'")
        put(variable.strip().upper(), value, "--env")
    for variable, (value, option) in given.items():  # each named by the option that gave it
        if problem := setting_problems({variable: value}):
            raise typer.BadParameter(problem, param_hint=f"'{option}'")
    settings = {variable: value for variable, (value, _) in given.items()}
    problem = setting_problems(settings)  # what only the settings together get wrong
    if problem:
        raise typer.BadParameter(problem, param_hint="'--env'")
    return settings


def _project(client: str, project: str | None) -> str | None:
    """``--project``: ``auto`` or a valid project name, for ``serve --project``."""
    if project is None:
        return None
    if project != "auto":
        try:
            scope_id(project, "project")
        except ValidationError as exc:
            raise typer.BadParameter(exc.message, param_hint="'--project'") from None
    elif client not in WORKSPACE_CLIENTS:
        err.print(
            f"warning: {CLIENTS[client].title} may not start its servers in your project's folder, where"
            " --project auto looks; if the server reports PROJECT_NOT_DETECTED, name it: --project NAME",
            soft_wrap=True,
        )
    return project


def _what_it_does(entry: dict[str, Any]) -> str:
    """What the entry makes the client do, without any setting's or header's value."""
    if "command" not in entry:
        url = entry.get("url") or entry.get("serverUrl")
        headers = entry.get("headers") or {}
        return f"it connects to {url}" + (f" (sending {', '.join(headers)})" if headers else "")
    settings = entry.get("env") or {}
    return f"it runs: {' '.join([entry['command'], *entry['args']])}" + (
        f" (with {', '.join(settings)} set)" if settings else ""
    )
