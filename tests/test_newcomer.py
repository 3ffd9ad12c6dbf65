"""A newcomer's first hour as one story (issue 28's acceptance): a fresh data directory and an
empty config directory, no LLM. `memorch add`, `memorch doctor` all ok, a search that says its
matches fell below the threshold, `memorch setup claude-desktop --print` with an LLM and its
key, `memorch token add`, then `memorch serve` over HTTP reading the default tokens file and an
MCP client calling a tool with that token (and refused without it).

The commands run through the real CLI (typer's runner, in this process); the server is a real
subprocess and the client a real MCP session over streamable HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client
from typer.testing import CliRunner

from memorch.cli._main import app

from .mcp_helpers import start_http_server

runner = CliRunner()
FACT = "I work as a nurse at the city hospital"


async def test_a_newcomers_first_hour(tmp_path: Path) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    data, config_home, home = tmp_path / "data", tmp_path / "config", tmp_path / "home"
    # Nothing but a user id (what `memorch setup --user-id` would set): defaults everywhere else.
    env = {"MEMORCH_DATA_DIR": str(data), "MEMORCH_USER_ID": "me", "XDG_CONFIG_HOME": str(config_home)}
    env |= {"HOME": str(home), "COLUMNS": "80"}

    def memorch(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = memorch("add", FACT)
    assert code == 0 and out.startswith("ADD ") and out.rstrip().endswith(FACT)

    code, out, err = memorch("doctor")
    checks = json.loads(memorch("doctor", "--json")[1])
    assert code == 0 and err == "" and all(check["ok"] for check in checks), out
    assert "FAIL" not in out and all(len(line) <= 80 for line in out.splitlines())

    code, out, _ = memorch("search", "xylophone quantum chromodynamics")
    assert code == 0
    assert out.strip().startswith("no memory scored 0.30 or more for user_id 'me' (1 below it, best 0.")
    assert out.strip().endswith("--threshold 0 shows it")
    code, out, _ = memorch("search", "where do I work?")
    assert code == 0 and FACT in out

    code, out, err = memorch(
        "setup", "claude-desktop", "--print", "--llm", "openai/gpt-4o-mini", "--env", "MEMORCH_LLM_API_KEY=sk-newcomer"
    )
    assert code == 0, err
    entry = json.loads(out)["mcpServers"]["memorch"]
    assert entry["env"] == {"MEMORCH_LLM_MODEL": "openai/gpt-4o-mini", "MEMORCH_LLM_API_KEY": "sk-newcomer"}
    assert entry["args"] == ["serve"] and Path(entry["command"]).is_file()
    assert "nothing was written" in err and not (home / ".config" / "Claude").exists()

    code, token, err = memorch("token", "add", "me")
    token = token.strip()
    assert code == 0 and len(token) >= 32 and "\n" not in token, err
    assert (config_home / "memorch" / "tokens.json").is_file()  # the default file: no setting named it

    # The server reads the same default file (XDG_CONFIG_HOME), with no MEMORCH_TOKENS_FILE.
    proc, port = start_http_server("streamable-http", data, MEMORCH_GRAPH="on", XDG_CONFIG_HOME=str(config_home))
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx2.AsyncClient(timeout=60) as anonymous:
            refused = await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401
        authorised = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        async with Client(streamable_http_client(url, http_client=authorised)) as client:
            found = await client.call_tool("search_memories", {"query": "where do I work?"})
            assert not found.is_error, found.content
            hits = found.structured_content["results"]
            assert [(h["memory"], h["user_id"]) for h in hits] == [(FACT, "me")]
    finally:
        proc.kill()
        proc.wait(timeout=30)
