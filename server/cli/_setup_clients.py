"""``memorch setup CLIENT``: put this install into an MCP client's config file.

Where each client reads its MCP servers, and in which shape (from each client's documentation;
docs/clients.md lists the sources):

================  =========================================================  ==============  ================
client            file (user scope / project scope)                          servers key     HTTP entry
================  =========================================================  ==============  ================
claude-desktop    macOS ``~/Library/Application Support/Claude/``,           ``mcpServers``  none (stdio only)
                  Windows ``%APPDATA%\\Claude\\``, Linux ``~/.config/Claude/``
                  + ``claude_desktop_config.json``
claude-code       ``~/.claude.json`` (``$CLAUDE_CONFIG_DIR/.claude.json``)    ``mcpServers``  ``type: http``,
                  / ``./.mcp.json``                                           (``type:        ``url``,
                                                                             stdio``)        ``headers``
cursor            ``~/.cursor/mcp.json`` / ``./.cursor/mcp.json``            ``mcpServers``  ``url``,
                                                                                             ``headers``
vscode            the user profile's ``mcp.json`` (``Code/User/mcp.json``     ``servers``     ``type: http``,
                  in VS Code's config folder) / ``./.vscode/mcp.json``        (``type:        ``url``,
                                                                             stdio``)        ``headers``
windsurf          ``~/.codeium/windsurf/mcp_config.json``                    ``mcpServers``  ``serverUrl``,
                                                                                             ``headers``
================  =========================================================  ==============  ================

An HTTP entry (``--url``) connects to a memorch that runs on its own (``memorch serve --transport
streamable-http``); a typed entry says ``sse`` for an ``/sse`` endpoint. Settings for a server
the client starts (``--llm``, ``--env``, ``--project``...) go into the entry's ``env`` and
``args``; their names and values are checked here, as the server would check them at start.

GUI apps do not inherit the shell's PATH, so the entry names the absolute path of the
``memorch`` that is running (or this interpreter with ``-m memorch``). Writing merges into the
existing file (other servers and other keys kept), copies the old file to a timestamped
``.bak`` first, and replaces the file atomically; a file that is not a JSON object is refused
and left as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from memorch._atomic import replace_file
from memorch._settings import OTHER_VARIABLES, invalid_settings
from memorch.config import MemoryConfig, unknown_setting_warnings
from memorch.errors import ConfigurationError, ValidationError

USER, PROJECT = "user", "project"


@dataclass(frozen=True)
class Client:
    key: str
    title: str
    servers_key: str  # the object that maps server names to entries
    typed: bool  # entries carry "type": "stdio" (or "http" / "sse")
    scopes: tuple[str, ...]
    after: str  # what the user does next for the client to load the server
    url_key: str | None  # the key of an HTTP entry's URL; None: the file takes only servers it starts


CLIENTS: dict[str, Client] = {
    c.key: c
    for c in (
        Client(
            "claude-desktop", "Claude Desktop", "mcpServers", False, (USER,), "quit and reopen Claude Desktop", None
        ),
        Client(
            "claude-code", "Claude Code", "mcpServers", True, (USER, PROJECT), "start a new Claude Code session", "url"
        ),
        Client("cursor", "Cursor", "mcpServers", False, (USER, PROJECT), "reload Cursor's MCP settings", "url"),
        Client("vscode", "VS Code", "servers", True, (USER, PROJECT), "run 'MCP: List Servers' in VS Code", "url"),
        Client(
            "windsurf", "Windsurf", "mcpServers", False, (USER,), "press refresh in Windsurf's MCP panel", "serverUrl"
        ),
    )
}
HTTP_CLIENTS = tuple(key for key, client in CLIENTS.items() if client.url_key)
# Clients that start a server in the open workspace folder, where ``--project auto`` looks.
WORKSPACE_CLIENTS = ("claude-code", "cursor", "vscode")


@dataclass(frozen=True)
class Result:
    path: Path
    action: str  # "added", "updated" or "unchanged"
    backup: Path | None


def _config_home(platform: str, env: Mapping[str, str], home: Path) -> Path:
    """Where desktop apps keep their settings (Electron's appData): Claude Desktop and VS Code."""
    if platform == "darwin":
        return home / "Library" / "Application Support"
    if platform == "win32":
        return Path(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"
    return Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"


def config_path(
    client: str,
    scope: str = USER,
    *,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    cwd: Path | None = None,
) -> Path:
    """The file ``client`` reads its MCP servers from, for ``scope`` (user, or project = ``cwd``)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = home or Path.home()
    cwd = cwd or Path.cwd()
    if scope not in CLIENTS[client].scopes:
        raise ValidationError(
            f"{CLIENTS[client].title} has no {scope} scope",
            error_code="INVALID_SCOPE",
            suggestion=f"leave out --scope: {client} reads only "
            f"{config_path(client, platform=platform, env=env, home=home)}",
        )
    if client == "claude-desktop":
        return _config_home(platform, env, home) / "Claude" / "claude_desktop_config.json"
    if client == "claude-code":
        if scope == PROJECT:
            return cwd / ".mcp.json"
        return (Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else home) / ".claude.json"
    if client == "cursor":
        return (cwd if scope == PROJECT else home) / ".cursor" / "mcp.json"
    if client == "vscode":
        if scope == PROJECT:
            return cwd / ".vscode" / "mcp.json"
        return _config_home(platform, env, home) / "Code" / "User" / "mcp.json"
    return home / ".codeium" / "windsurf" / "mcp_config.json"


def server_command() -> list[str]:
    """How to start this install's server by absolute path: the ``memorch`` script running now,
    the one beside this interpreter, or ``python -m memorch``."""
    running = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if running is not None and running.stem == "memorch" and running.is_file():
        return [str(running.absolute()), "serve"]
    beside = Path(sys.executable).parent / ("memorch.exe" if os.name == "nt" else "memorch")
    if beside.is_file():
        return [str(beside.absolute()), "serve"]
    return [str(Path(sys.executable).absolute()), "-m", "memorch", "serve"]


def in_temporary_environment(command: list[str]) -> bool:
    """True for a ``uvx`` run: its environment lives in uv's cache and can be cleaned away."""
    return any(part.startswith("archive-v") for part in Path(command[0]).parts)


def server_entry(
    client: str,
    *,
    user_id: str | None = None,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    project: str | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The client's entry for memorch over stdio, with absolute paths: ``env`` for the server's
    settings (after ``MEMORCH_USER_ID`` / ``MEMORCH_DATA_DIR``), ``project`` as ``serve --project``."""
    command = command or server_command()
    entry: dict[str, Any] = {"type": "stdio"} if CLIENTS[client].typed else {}
    entry.update(command=command[0], args=[*command[1:], *(["--project", project] if project else [])])
    settings: dict[str, str] = {}
    if user_id is not None:
        settings["MEMORCH_USER_ID"] = user_id
    if data_dir is not None:
        settings["MEMORCH_DATA_DIR"] = str(data_dir.expanduser().resolve())
    settings.update(env or {})
    if settings:
        entry["env"] = settings
    return entry


def http_entry(client: str, url: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The client's entry for a memorch served over HTTP at ``url`` (``check_url`` first), in the
    client's documented shape; ``ValueError`` for a client whose file takes no URL."""
    spec = CLIENTS[client]
    if spec.url_key is None:
        raise ValueError(f"{client} takes no HTTP entry")
    entry: dict[str, Any] = {}
    if spec.typed:  # the SSE transport's endpoint is /sse (memorch serve --transport sse)
        entry["type"] = "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "http"
    entry[spec.url_key] = url
    if headers:
        entry["headers"] = dict(headers)
    return entry


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an MCP endpoint, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL"
    return None


def header_pair(text: str) -> tuple[str, str] | None:
    """``"Authorization: Bearer x"`` as (name, value), or None when it is not ``NAME: VALUE``."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or not value or any(c.isspace() or not c.isprintable() for c in name):
        return None
    return name, value


def _mappings() -> set[str]:
    return {name for name, field in MemoryConfig.model_fields.items() if get_origin(field.annotation) is dict}


def setting_problems(env: Mapping[str, str]) -> str | None:
    """What is wrong with these ``MEMORCH_*`` settings for the server, or None: a name that is no
    setting (naming the closest), or a value the server would refuse at start. ``project`` and
    ``data_dir`` are left to the server: ``auto`` looks where it runs, a path is made there."""
    for name in env:
        if not name.startswith("MEMORCH_"):
            return f"{name} is not a memorch setting (MEMORCH_*); a model's API key goes in MEMORCH_LLM_API_KEY"
    unknown = [w for w in unknown_setting_warnings({n: v for n, v in env.items() if n != "MEMORCH_CONFIG"})]
    if unknown:  # "X is not a memorch setting; did you mean Y?" (a question mark would end the message)
        return "; ".join(w.replace("; did you mean ", " (did you mean ").replace("?", "?)") for w in unknown)
    values: dict[str, Any] = {}
    for name, value in env.items():
        field = name.removeprefix("MEMORCH_").lower()
        if name in OTHER_VARIABLES or field in ("project", "data_dir"):
            continue
        if field in _mappings():
            try:
                values[field] = json.loads(value)
            except json.JSONDecodeError:
                return f"{name} must be valid JSON"
        else:
            values[field] = value
    try:  # the model's own validation of these values alone: not this shell's MEMORCH_* or config file
        BaseModel.__init__(MemoryConfig.__new__(MemoryConfig), **values)
    except PydanticValidationError as exc:
        # Each problem names its field as a keyword ("graph must be ..."): name the variable instead.
        problems = [p.partition(" ") for p in invalid_settings(exc, values).message.split("; ")]
        return "; ".join(f"{_variable(where)} {says}" for where, _, says in problems)
    return None


def _variable(where: str) -> str:
    """``graph`` as ``MEMORCH_GRAPH``; ``search_weights['x']`` as ``MEMORCH_SEARCH_WEIGHTS['x']``."""
    field, bracket, key = where.partition("[")
    return f"MEMORCH_{field.upper()}{bracket}{key}"


def snippet(client: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """What ``--print`` shows: the file's shape with only this server in it."""
    return {CLIENTS[client].servers_key: {name: entry}}


def _unparseable(path: Path, why: str, client: str) -> ConfigurationError:
    return ConfigurationError(
        f"{path} {why}; memorch left it unchanged",
        error_code="CONFIG_FILE_UNPARSEABLE",
        suggestion=f"fix or move that file and run `memorch setup {client}` again, "
        f"or paste the entry from `memorch setup {client} --print` into it yourself",
    )


def read_config(path: Path, client: str) -> dict[str, Any]:
    """The file's JSON object ({} when it is missing or blank); refuses anything else."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise _unparseable(path, "is not UTF-8 text", client) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {path}: {exc.strerror or exc}",
            error_code="CONFIG_FILE_UNREADABLE",
            suggestion="check the file's permissions, or use --print and add the entry yourself",
        ) from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        why = f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise _unparseable(path, why, client) from exc
    if not isinstance(data, dict):
        raise _unparseable(path, f"holds a JSON {type(data).__name__}, not an object", client)
    servers = data.get(CLIENTS[client].servers_key)
    if servers is not None and not isinstance(servers, dict):
        raise _unparseable(path, f"has a {CLIENTS[client].servers_key!r} that is not an object", client)
    return data


def _backup(path: Path, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.{stamp}-{n}.bak")
        n += 1
    shutil.copy2(path, backup)
    return backup


def write_config(path: Path, client: str, name: str, entry: dict[str, Any], *, now: datetime | None = None) -> Result:
    """Add or update server ``name`` in ``path``, keeping everything else in the file."""
    if path.is_symlink():  # dotfile managers link these files: write where the link points
        path = path.resolve()
    data = read_config(path, client)
    servers = data.setdefault(CLIENTS[client].servers_key, {})
    if servers.get(name) == entry:
        return Result(path, "unchanged", None)
    action = "updated" if name in servers else "added"
    servers[name] = entry
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backup = _backup(path, now or datetime.now()) if existed else None
        replace_file(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write {path}: {exc.strerror or exc}",
            error_code="CONFIG_FILE_UNWRITABLE",
            suggestion="check that folder's permissions, or use --print and add the entry yourself",
        ) from exc
    return Result(path, action, backup)
