"""`memorch setup CLIENT`: real config files in temporary home directories, and a real server
started from what was written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from memorch.cli._main import app
from memorch.cli._setup_clients import config_path

from .mcp_helpers import memorch_command

runner = CliRunner()

# Each client's documented user-scope file (Linux layout), relative to HOME, and its servers key.
USER_FILES = {
    "claude-desktop": (".config/Claude/claude_desktop_config.json", "mcpServers"),
    "claude-code": (".claude.json", "mcpServers"),
    "cursor": (".cursor/mcp.json", "mcpServers"),
    "vscode": (".config/Code/User/mcp.json", "servers"),
    "windsurf": (".codeium/windsurf/mcp_config.json", "mcpServers"),
}
PROJECT_FILES = {"claude-code": ".mcp.json", "cursor": ".cursor/mcp.json", "vscode": ".vscode/mcp.json"}
STDIO_TYPED = {"claude-code", "vscode"}


def setup(home: Path, *args: str) -> tuple[int, str]:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": None, "APPDATA": None, "CLAUDE_CONFIG_DIR": None}
    result = runner.invoke(app, ["setup", *args], env=env)
    return result.exit_code, result.output


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("client", sorted(USER_FILES))
def test_fresh_file_in_the_clients_documented_place_and_shape(tmp_path: Path, client: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code, out = setup(home, client, "--user-id", "alice", "--data-dir", str(tmp_path / "data"))
    assert code == 0, out
    relative, servers_key = USER_FILES[client]
    assert files_under(home) == [relative]  # nothing else written, no backup of a file that did not exist
    entry = json.loads((home / relative).read_text())[servers_key]["memorch"]
    command = Path(entry["command"])
    assert command.is_absolute() and command.is_file() and os.access(command, os.X_OK)
    assert entry["args"][-1] == "serve"
    assert entry["env"] == {"MEMORCH_USER_ID": "alice", "MEMORCH_DATA_DIR": str(tmp_path / "data")}
    assert ("type" in entry) == (client in STDIO_TYPED)
    if client in STDIO_TYPED:
        assert entry["type"] == "stdio"
    assert str(home / relative) in " ".join(out.split())


@pytest.mark.parametrize("client", sorted(USER_FILES))
def test_merges_into_an_existing_file_keeping_other_servers_and_keys_with_a_backup(tmp_path: Path, client: str) -> None:
    relative, servers_key = USER_FILES[client]
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    other = {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]}
    original = {"numStartups": 7, servers_key: {"filesystem": other}, "inputs": [{"id": "k", "type": "promptString"}]}
    original_text = json.dumps(original, indent=4)
    path.write_text(original_text)
    path.chmod(0o600)

    code, out = setup(tmp_path, client, "--name", "memory")
    assert code == 0, out
    written = json.loads(path.read_text())
    assert written["numStartups"] == 7 and written["inputs"] == original["inputs"]
    assert list(written[servers_key]) == ["filesystem", "memory"] and written[servers_key]["filesystem"] == other
    assert "env" not in written[servers_key]["memory"]  # nothing to set: the server's own defaults
    assert path.stat().st_mode & 0o777 == 0o600  # the file keeps its permissions
    backups = [p for p in path.parent.iterdir() if p.name.startswith(path.name) and p.name.endswith(".bak")]
    assert len(backups) == 1 and backups[0].read_text() == original_text
    assert str(backups[0]) in " ".join(out.split())

    code, out = setup(tmp_path, client, "--name", "memory")  # again: nothing to change, no new backup
    assert code == 0 and "already up to date" in out
    assert len([p for p in path.parent.iterdir() if p.name.endswith(".bak")]) == 1

    code, out = setup(tmp_path, client, "--name", "memory", "--user-id", "bob")  # an update: second backup
    assert code == 0 and "updated" in out
    assert json.loads(path.read_text())[servers_key]["memory"]["env"] == {"MEMORCH_USER_ID": "bob"}
    assert len([p for p in path.parent.iterdir() if p.name.endswith(".bak")]) == 2


@pytest.mark.parametrize("client", sorted(PROJECT_FILES))
def test_project_scope_writes_in_the_current_directory(
    tmp_path: Path, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    monkeypatch.chdir(project)
    code, out = setup(home, client, "--scope", "project")
    assert code == 0, out
    assert files_under(home) == [] and files_under(project) == [PROJECT_FILES[client]]
    servers_key = "servers" if client == "vscode" else "mcpServers"
    assert Path(json.loads((project / PROJECT_FILES[client]).read_text())[servers_key]["memorch"]["command"]).is_file()


@pytest.mark.parametrize("client", ["claude-desktop", "windsurf"])
def test_clients_without_a_project_file_refuse_project_scope(tmp_path: Path, client: str) -> None:
    code, out = setup(tmp_path, client, "--scope", "project")
    assert code == 2 and "USAGE_ERROR" in out and "no project scope" in out
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("client", sorted(USER_FILES))
def test_print_writes_nothing(tmp_path: Path, client: str) -> None:
    result = runner.invoke(app, ["setup", client, "--print", "--user-id", "alice"], env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    servers_key = USER_FILES[client][1]
    printed = json.loads(result.stdout)
    assert list(printed) == [servers_key] and printed[servers_key]["memorch"]["env"] == {"MEMORCH_USER_ID": "alice"}
    assert files_under(tmp_path) == []
    assert "nothing was written" in result.stderr


@pytest.mark.parametrize(
    "content",
    ['{"mcpServers": {"x": {"command": "y"}},}', "[1, 2]", '{"mcpServers": []}', "// comment\n{}"],
    ids=["trailing-comma", "array", "servers-not-object", "comment"],
)
def test_unparseable_file_is_refused_and_left_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text(content)
    code, out = setup(tmp_path, "cursor")
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error [CONFIG_FILE_UNPARSEABLE]") and str(path) in lines[0]
    assert "--print" in lines[0]
    assert path.read_text() == content and files_under(tmp_path) == [".cursor/mcp.json"]  # no backup, no temp file


def test_blank_file_is_filled_and_symlinked_file_written_where_it_points(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "claude.json").write_text("\n")
    (tmp_path / ".claude.json").symlink_to(dotfiles / "claude.json")
    code, out = setup(tmp_path, "claude-code")
    assert code == 0, out
    assert (tmp_path / ".claude.json").is_symlink()
    assert "memorch" in json.loads((dotfiles / "claude.json").read_text())["mcpServers"]


def test_config_locations_on_each_platform(tmp_path: Path) -> None:
    home = Path("/home/u")

    def where(client: str, platform: str, **env: str) -> str:
        return str(config_path(client, platform=platform, env=env, home=home, cwd=Path("/work/p")))

    assert where("claude-desktop", "darwin") == "/home/u/Library/Application Support/Claude/claude_desktop_config.json"
    assert where("claude-desktop", "win32", APPDATA="/c/Roaming") == "/c/Roaming/Claude/claude_desktop_config.json"
    assert where("claude-desktop", "linux") == "/home/u/.config/Claude/claude_desktop_config.json"
    assert where("claude-desktop", "linux", XDG_CONFIG_HOME="/x") == "/x/Claude/claude_desktop_config.json"
    assert where("vscode", "darwin") == "/home/u/Library/Application Support/Code/User/mcp.json"
    assert where("vscode", "win32", APPDATA="/c/Roaming") == "/c/Roaming/Code/User/mcp.json"
    assert where("vscode", "linux") == "/home/u/.config/Code/User/mcp.json"
    assert where("claude-code", "darwin") == "/home/u/.claude.json"
    assert where("claude-code", "linux", CLAUDE_CONFIG_DIR="/cc") == "/cc/.claude.json"
    for platform in ("darwin", "win32", "linux"):
        assert where("cursor", platform) == "/home/u/.cursor/mcp.json"
        assert where("windsurf", platform) == "/home/u/.codeium/windsurf/mcp_config.json"
    assert str(config_path("vscode", "project", cwd=Path("/work/p"))) == "/work/p/.vscode/mcp.json"


async def test_written_config_starts_the_server(tmp_path: Path) -> None:
    """The real `memorch setup`, then the configured command + args + env launched the way a GUI
    app does (its own PATH, without this virtualenv) and spoken to over MCP stdio."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORCH_", "XDG_CONFIG_HOME"))}
    subprocess.run(
        [*memorch_command(), "setup", "claude-desktop", "--user-id", "alice", "--data-dir", str(data)],
        env={**env, "HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    entry = json.loads((home / USER_FILES["claude-desktop"][0]).read_text())["mcpServers"]["memorch"]
    gui_env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "MEMORCH_GRAPH": "off", **entry["env"]}
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=gui_env)
    async with Client(params, mode="legacy") as client:
        assert "add_memory" in {t.name for t in (await client.list_tools()).tools}
        added = await client.call_tool("add_memory", {"text": "I keep my bike in the cellar"})
        assert added.structured_content["results"][0]["event"] == "ADD"
    assert any(data.iterdir())  # the configured MEMORCH_DATA_DIR is where it stored the memory


# --- issue 28: the server's settings, and entries for a memorch served over HTTP ---

HTTP_ENTRIES = {  # each client's documented shape for a server at a URL
    "claude-code": {"type": "http", "url": "URL", "headers": {"Authorization": "Bearer tok-123"}},
    "cursor": {"url": "URL", "headers": {"Authorization": "Bearer tok-123"}},
    "vscode": {"type": "http", "url": "URL", "headers": {"Authorization": "Bearer tok-123"}},
    "windsurf": {"serverUrl": "URL", "headers": {"Authorization": "Bearer tok-123"}},
}


@pytest.mark.parametrize("client", sorted(USER_FILES))
def test_llm_settings_and_project_go_into_the_entry(tmp_path: Path, client: str) -> None:
    code, out = setup(
        tmp_path,
        client,
        "--user-id",
        "alice",
        "--llm",
        "openai/gpt-4o-mini",
        "--llm-api-base",
        "http://localhost:11434",
        "--env",
        "MEMORCH_LLM_API_KEY=sk-test",
        "--env",
        "memorch_graph=on",  # settings match in any case; written as the documented name
        "--project",
        "auto",
    )
    assert code == 0, out
    relative, servers_key = USER_FILES[client]
    entry = json.loads((tmp_path / relative).read_text())[servers_key]["memorch"]
    assert entry["env"] == {
        "MEMORCH_USER_ID": "alice",
        "MEMORCH_LLM_MODEL": "openai/gpt-4o-mini",
        "MEMORCH_LLM_API_BASE": "http://localhost:11434",
        "MEMORCH_LLM_API_KEY": "sk-test",
        "MEMORCH_GRAPH": "on",
    }
    assert entry["args"][-3:] == ["serve", "--project", "auto"] and Path(entry["command"]).is_file()
    said = " ".join(out.split())
    assert "--project auto (with MEMORCH_USER_ID, MEMORCH_LLM_MODEL" in said and "sk-test" not in said
    assert ("may not start its servers in your project's folder" in said) == (client in {"claude-desktop", "windsurf"})


@pytest.mark.parametrize("client", sorted(HTTP_ENTRIES))
@pytest.mark.parametrize("endpoint", ["/mcp", "/sse"])
def test_http_entry_in_each_clients_documented_shape(tmp_path: Path, client: str, endpoint: str) -> None:
    url = f"http://127.0.0.1:8765{endpoint}"
    code, out = setup(tmp_path, client, "--url", url, "--header", "Authorization: Bearer tok-123")
    assert code == 0, out
    relative, servers_key = USER_FILES[client]
    expected = {key: url if value == "URL" else value for key, value in HTTP_ENTRIES[client].items()}
    if "type" in expected:
        expected["type"] = "sse" if endpoint == "/sse" else "http"
    assert json.loads((tmp_path / relative).read_text())[servers_key] == {"memorch": expected}
    said = " ".join(out.split())
    assert f"it connects to {url} (sending Authorization)" in said and "tok-123" not in said

    printed = runner.invoke(app, ["setup", client, "--url", url, "--print"], env={"HOME": str(tmp_path / "other")})
    assert printed.exit_code == 0, printed.output
    entry = json.loads(printed.stdout)[servers_key]["memorch"]
    assert "headers" not in entry and url in entry.values() and files_under(tmp_path / "other") == []


def test_a_client_that_takes_no_url_refuses_one(tmp_path: Path) -> None:
    code, out = setup(tmp_path, "claude-desktop", "--url", "http://127.0.0.1:8765/mcp")
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error [USAGE_ERROR] Invalid value for '--url': ")
    assert "Claude Desktop's config file takes only servers it starts itself" in lines[0]
    assert "claude-code, cursor, vscode and windsurf take one" in lines[0]
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--env", "MEMORCH_USR_ID=x"],
            "MEMORCH_USR_ID is not a memorch setting (did you mean MEMORCH_USER_ID?)",
        ),
        (["--env", "OPENAI_API_KEY=sk"], "OPENAI_API_KEY is not a memorch setting (MEMORCH_*)"),
        (["--env", "MEMORCH_GRAPH=maybe"], "'--env': MEMORCH_GRAPH must be on or off (got 'maybe')"),
        (["--env", "MEMORCH_LLM_TIMEOUT=soon"], "MEMORCH_LLM_TIMEOUT must be a number (got 'soon')"),
        (["--env", "MEMORCH_LLM_MODEL"], "'MEMORCH_LLM_MODEL' is not NAME=VALUE"),
        (["--user-id", "a", "--env", "MEMORCH_USER_ID=b"], "'--env': MEMORCH_USER_ID is already set by --user-id"),
        (["--llm", "a", "--env", "MEMORCH_LLM_MODEL=b"], "MEMORCH_LLM_MODEL is already set by --llm"),
        (["--project", " "], "'--project': project must be a non-empty string"),
        (["--header", "Authorization: Bearer x"], "'--header': goes with --url"),
        (["--url", "ftp://example.com/mcp"], "'--url': 'ftp://example.com/mcp' is not an http:// or https:// URL"),
        (["--url", "http://127.0.0.1:99999/mcp"], "'--url': 'http://127.0.0.1:99999/mcp' is not a URL"),
        (["--url", "http://h/mcp", "--header", "Bearer x"], "'--header': 'Bearer x' is not NAME: VALUE"),
        (["--url", "http://h/mcp", "--llm", "m", "--user-id", "u"], "so --user-id and --llm do not apply"),
        (["--llm-api-base", "127.0.0.1:8000/v1"], "'--llm-api-base': MEMORCH_LLM_API_BASE must be a URL"),
    ],
    ids=[
        "unknown-setting",
        "not-memorch",
        "bad-flag",
        "bad-number",
        "no-equals",
        "set-twice",
        "llm-twice",
        "blank-project",
        "header-without-url",
        "not-http",
        "bad-port",
        "bad-header",
        "url-with-server-settings",
        "api-base-without-scheme",  # it blamed --env, which was not given (a trial)
    ],
)
def test_bad_setup_arguments_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], says: str) -> None:
    code, out = setup(tmp_path, "cursor", *args)
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 1, out
    assert lines[0].startswith("error [USAGE_ERROR] Invalid value for ") and says in lines[0], lines[0]
    assert files_under(tmp_path) == []


async def test_written_http_entry_reaches_a_served_memorch(tmp_path: Path) -> None:
    """The real `memorch setup --url --header`, then an MCP client connecting with exactly the
    URL and headers the entry holds, to a memorch that requires that bearer token."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from .mcp_helpers import start_http_server

    proc, port = start_http_server("streamable-http", tmp_path / "data", MEMORCH_AUTH_TOKEN="tok-123")
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        code, out = setup(tmp_path, "claude-code", "--url", url, "--header", "Authorization: Bearer tok-123")
        assert code == 0, out
        entry = json.loads((tmp_path / ".claude.json").read_text())["mcpServers"]["memorch"]
        assert entry["type"] == "http"
        target = streamable_http_client(
            entry["url"], http_client=httpx2.AsyncClient(headers=entry["headers"], timeout=60)
        )
        async with Client(target) as client:
            added = await client.call_tool("add_memory", {"text": "I keep my bike in the cellar"})
            assert added.structured_content["results"][0]["event"] == "ADD"
    finally:
        proc.kill()
        proc.wait(timeout=30)
