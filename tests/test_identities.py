"""Identities bound to tokens: one real streamable-HTTP server, a tokens file written by the real
``memorch token`` CLI, and one real MCP client session per token.

alice and bob each hold a token; every tool is called across the line both ways (by id, by
``user_id``, scope-wide) and nothing crosses. carol's token is limited to agent ``bot``; dave's is
revoked while the server runs; the ``MEMORCH_AUTH_TOKEN`` admin token stays unbound.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from memorch import MemoryConfig
from memorch.domain._identity import Identity
from memorch.errors import PermissionDeniedError
from memorch.serve._identities import add_token as add_token_record

from .mcp_helpers import memorch_command, server_env, server_log, start_http_server
from .test_mcp import TOOLS

ADMIN = "admin-s3cret"
APP, OTHER = "github.com/acme/app", "github.com/acme/other"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "ids", "version": "1"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def token_cli(tokens_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``memorch token ARGS`` as a user runs it, with MEMORCH_TOKENS_FILE set."""
    return subprocess.run(
        [*memorch_command(), "token", *args],
        env=server_env(tokens_file.parent / "cli-data", MEMORCH_TOKENS_FILE=str(tokens_file)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_token(tokens_file: Path, *args: str) -> str:
    result = token_cli(tokens_file, "add", *args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("memorch_") and "\n" not in token  # the token alone on stdout
    return token


@dataclass
class Served:
    url: str
    tokens_file: Path
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("identities")
    tokens_file = base / "tokens.json"
    # The file as `memorch token add` writes it (the CLI itself: test_token_cli_add_list_revoke).
    tokens = {
        "alice": add_token_record(tokens_file, "alice", [], [])[1],
        "bob": add_token_record(tokens_file, "bob", [], [], "bob-laptop")[1],
        "carol": add_token_record(tokens_file, "carol", ["bot"], [])[1],
        "dave": add_token_record(tokens_file, "dave", [], [])[1],
        "erin": add_token_record(tokens_file, "erin", [], [APP])[1],
    }
    proc, port = start_http_server(
        "streamable-http", base / "data", MEMORCH_TOKENS_FILE=str(tokens_file), MEMORCH_AUTH_TOKEN=ADMIN
    )
    try:
        yield Served(f"http://127.0.0.1:{port}/mcp", tokens_file, tokens)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@asynccontextmanager
async def session(served: Served, token: str) -> AsyncIterator[Client]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with Client(streamable_http_client(served.url, http_client=http)) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """The error code of a call that must fail (the text is ``[CODE] message. Suggestion: ...``)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} {arguments} was not refused: {result.structured_content}"
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("[") and "Suggestion:" in text, text
    return text[1 : text.index("]")]


async def add(client: Client, text: str, **scope: str) -> str:
    added = await call(client, "add_memory", text=text, infer=False, **scope)
    return added["results"][0]["id"]


def status(served: Served, token: str | None) -> int:
    headers = {**MCP_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(served.url, headers=headers, json=INITIALIZE, timeout=30).status_code


# --- two users, every tool, no crossing -----------------------------------------------------


async def test_each_caller_adds_searches_and_lists_only_its_own(served: Served) -> None:
    async with session(served, served.tokens["alice"]) as alice, session(served, served.tokens["bob"]) as bob:
        assert {t.name for t in (await alice.list_tools()).tools} == TOOLS
        tea = await add(alice, "Alice drinks green tea every morning")
        coffee = await add(bob, "Bob drinks black coffee every morning")
        assert (await call(alice, "get_memory", memory_id=tea))["user_id"] == "alice"
        assert (await call(bob, "get_memory", memory_id=coffee))["user_id"] == "bob"

        for client, own, other in ((alice, tea, coffee), (bob, coffee, tea)):
            found = await call(client, "search_memories", query="what do they drink every morning", threshold=0)
            ids = [r["id"] for r in found["results"]]
            assert own in ids and other not in ids
            listed = await call(client, "list_memories")
            assert own in [r["id"] for r in listed["results"]] and other not in [r["id"] for r in listed["results"]]
        # naming yourself is allowed; it changes nothing
        assert tea in [r["id"] for r in (await call(alice, "list_memories", user_id="alice"))["results"]]


@pytest.mark.parametrize("tool", sorted(TOOLS))
async def test_a_user_id_naming_someone_else_is_refused_on_every_tool(served: Served, tool: str) -> None:
    async with session(served, served.tokens["alice"]) as alice, session(served, served.tokens["bob"]) as bob:
        bobs = await add(bob, f"Bob's note for the {tool} check")
        arguments: dict[str, Any] = {
            "add_memory": {"text": "planted in bob's memories"},
            "search_memories": {"query": "note"},
            "list_memories": {},
            "delete_all_memories": {"confirm": True},
            "update_memory": {"memory_id": bobs, "text": "overwritten by alice"},
        }.get(tool, {"memory_id": bobs})
        text_before = (await call(bob, "get_memory", memory_id=bobs))["memory"]
        result = await alice.call_tool(tool, {**arguments, "user_id": "bob"})
        assert result.is_error
        message = result.content[0].text  # type: ignore[union-attr]
        assert message.startswith("[PERMISSION_DENIED] ") and "omit user_id" in message, message
        assert (await call(bob, "get_memory", memory_id=bobs))["memory"] == text_before  # untouched
        listed = await call(bob, "list_memories")
        assert "planted in bob's memories" not in [r["memory"] for r in listed["results"]]


async def test_id_level_tools_do_not_reach_another_users_memory(served: Served) -> None:
    async with session(served, served.tokens["alice"]) as alice, session(served, served.tokens["bob"]) as bob:
        bobs = await add(bob, "Bob's bank is in Porto")
        await call(bob, "update_memory", memory_id=bobs, text="Bob's bank is in Braga")
        gone = await add(bob, "Bob once lived in Faro")
        await call(bob, "delete_memory", memory_id=gone)

        for memory_id in (bobs, gone):  # a live and a deleted memory: both unknown to alice
            assert await refused(alice, "get_memory", memory_id=memory_id) == "MEMORY_NOT_FOUND"
            assert await refused(alice, "memory_history", memory_id=memory_id) == "MEMORY_NOT_FOUND"
            assert await refused(alice, "update_memory", memory_id=memory_id, text="x") == "MEMORY_NOT_FOUND"
            assert await refused(alice, "delete_memory", memory_id=memory_id) == "MEMORY_NOT_FOUND"
            assert await refused(alice, "restore_memory", memory_id=memory_id) == "MEMORY_NOT_FOUND"

        # bob's memories are as bob left them, and their history has no trace of alice
        assert (await call(bob, "get_memory", memory_id=bobs))["memory"] == "Bob's bank is in Braga"
        events = (await call(bob, "memory_history", memory_id=bobs))["events"]
        assert [e["event"] for e in events] == ["ADD", "UPDATE"]
        assert await refused(bob, "get_memory", memory_id=gone) == "MEMORY_NOT_FOUND"  # still deleted

        # the same tools work on alice's own memory
        own = await add(alice, "Alice's bank is in Lisbon")
        await call(alice, "update_memory", memory_id=own, text="Alice's bank is in Coimbra")
        assert [e["event"] for e in (await call(alice, "memory_history", memory_id=own))["events"]] == ["ADD", "UPDATE"]
        assert (await call(alice, "restore_memory", memory_id=own))["memory"] == "Alice's bank is in Lisbon"
        assert (await call(alice, "delete_memory", memory_id=own))["event"] == "DELETE"


async def test_delete_all_deletes_only_the_callers_memories(served: Served) -> None:
    async with session(served, served.tokens["alice"]) as alice, session(served, served.tokens["bob"]) as bob:
        await add(alice, "Alice plays the cello")
        await add(bob, "Bob plays the drums")
        alices = len((await call(alice, "list_memories"))["results"])
        bobs_before = (await call(bob, "list_memories"))["results"]
        assert alices >= 1 and bobs_before

        deleted = await call(alice, "delete_all_memories", confirm=True)
        assert deleted["deleted"] == alices
        assert (await call(alice, "list_memories"))["results"] == []
        assert (await call(bob, "list_memories"))["results"] == bobs_before


# --- limits, the admin token, revocation ------------------------------------------------------


async def test_a_token_limited_to_an_agent(served: Served) -> None:
    async with session(served, served.tokens["carol"]) as carol, session(served, ADMIN) as admin:
        mine = await add(carol, "Carol prefers window seats")  # agent_id filled in: the token's one agent
        assert (await call(carol, "get_memory", memory_id=mine))["agent_id"] == "bot"
        assert await add(carol, "Carol flies on Fridays", agent_id="bot")
        assert await refused(carol, "add_memory", text="x", agent_id="other") == "PERMISSION_DENIED"
        assert await refused(carol, "list_memories", agent_id="other") == "PERMISSION_DENIED"

        # carol's memory of another agent (written by the admin) is out of her token's reach
        other = await add(admin, "Carol's other agent knows her PIN", user_id="carol", agent_id="other")
        assert await refused(carol, "get_memory", memory_id=other) == "MEMORY_NOT_FOUND"
        assert await refused(carol, "delete_memory", memory_id=other) == "MEMORY_NOT_FOUND"
        listed = (await call(carol, "list_memories"))["results"]
        assert other not in [r["id"] for r in listed] and {r["agent_id"] for r in listed} == {"bot"}
        deleted = await call(carol, "delete_all_memories", confirm=True)
        assert deleted["deleted"] == 2
        assert (await call(admin, "get_memory", memory_id=other))["memory"] == "Carol's other agent knows her PIN"


async def test_the_admin_token_is_unbound(served: Served) -> None:
    async with session(served, ADMIN) as admin, session(served, served.tokens["bob"]) as bob:
        bobs = await add(bob, "Bob's cat is called Miso")
        assert (await call(admin, "get_memory", memory_id=bobs))["user_id"] == "bob"
        listed = await call(admin, "list_memories", user_id="bob")
        assert bobs in [r["id"] for r in listed["results"]]


async def test_revocation_and_new_tokens_take_effect_without_restart(served: Served) -> None:
    dave = served.tokens["dave"]
    async with session(served, dave) as client:
        await add(client, "Dave keeps bees")
        listed = json.loads(token_cli(served.tokens_file, "list", "--json").stdout)
        prefix = next(t["prefix"] for t in listed if t["name"] == "dave")
        revoked = token_cli(served.tokens_file, "revoke", prefix + "…")  # the prefix as `token list` shows it
        assert revoked.returncode == 0 and "revoked token 'dave'" in revoked.stdout, revoked.stderr
        with pytest.raises(Exception):  # noqa: B017 - the SDK client's error for a 401 mid-session varies
            await client.call_tool("list_memories", {})
    assert status(served, dave) == 401
    erin = add_token(served.tokens_file, "erin")
    assert status(served, erin) == 200
    async with session(served, erin) as client:
        assert (await call(client, "list_memories"))["results"] == []


@pytest.mark.parametrize("token", [None, "wrong", "memorch_" + "x" * 43, ADMIN + "x"])
def test_a_missing_or_unknown_token_is_401(served: Served, token: str | None) -> None:
    assert status(served, token) == 401
    assert status(served, served.tokens["alice"]) == 200


# --- the CLI and the file -----------------------------------------------------------------------


def test_token_cli_add_list_revoke(tmp_path: Path) -> None:
    name, project = "alice-work-laptop", "github.com/acme/a-rather-long-repository-name"
    tokens_file = tmp_path / "tokens.json"
    first = add_token(tokens_file, "alice", "--agent", "bot", "--agent", "cli", "--project", project, "--name", name)
    second = json.loads(token_cli(tokens_file, "add", "bob", "--json").stdout)
    said = " ".join(token_cli(tokens_file, "add", "carol").stderr.split())
    assert "now asks each client for a token (the web page of `memorch ui` does not read this file" in said
    assert said.endswith("`memorch token revoke carol` removes this one.")
    assert token_cli(tokens_file, "revoke", "carol").returncode == 0
    assert stat.S_IMODE(os.stat(tokens_file).st_mode) == 0o600
    stored = tokens_file.read_text()
    assert first not in stored and second["token"] not in stored  # only hashes are kept

    table = token_cli(tokens_file, "list")
    assert table.returncode == 0
    assert all(word in table.stdout for word in (name, "alice", "bob", "any"))  # the name whole at 80 columns
    listed = json.loads(token_cli(tokens_file, "list", "--json").stdout)
    assert [(t["name"], t["user_id"], t["agent_id"], t["project"]) for t in listed] == [
        (name, "alice", ["bot", "cli"], [project]),
        ("bob", "bob", [], []),
    ]
    for output in (table.stdout, json.dumps(listed)):
        assert first not in output and second["token"] not in output and "sha256" not in output

    taken = token_cli(tokens_file, "add", "carol", "--name", name)
    assert taken.returncode == 1 and "[TOKEN_NAME_TAKEN]" in taken.stderr
    unknown = token_cli(tokens_file, "revoke", "nobody")
    assert unknown.returncode == 1 and "[TOKEN_NOT_FOUND]" in unknown.stderr and "Suggestion:" in unknown.stderr
    assert token_cli(tokens_file, "revoke", name).returncode == 0
    assert token_cli(tokens_file, "revoke", second["token"]).returncode == 0  # the whole token works too
    assert json.loads(token_cli(tokens_file, "list", "--json").stdout) == []


async def test_token_add_and_serve_share_the_default_file(tmp_path: Path) -> None:
    """No MEMORCH_TOKENS_FILE anywhere: ``memorch token add`` writes the default file in the
    user's config directory and ``memorch serve`` reads it (it needed the variable in both)."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    env = server_env(tmp_path / "data")
    assert "MEMORCH_TOKENS_FILE" not in env
    added = subprocess.run(
        [*memorch_command(), "token", "add", "alice"], env=env, capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    default = Path(env["XDG_CONFIG_HOME"]) / "memorch" / "tokens.json"
    assert default.is_file() and token not in default.read_text()
    proc, port = start_http_server("streamable-http", tmp_path / "data", XDG_CONFIG_HOME=env["XDG_CONFIG_HOME"])
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        async with Client(streamable_http_client(url, http_client=http)) as client:
            stored = await call(client, "add_memory", text="I keep bees")
            assert stored["results"][0]["event"] == "ADD"
        async with httpx2.AsyncClient(timeout=10) as anonymous:
            refused = await anonymous.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert str(default) in server_log(tmp_path / "data").read_text()


def test_serve_refuses_a_missing_tokens_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [*memorch_command(), "serve", "--transport", "streamable-http", "--port", "1"],
        env=server_env(tmp_path, MEMORCH_TOKENS_FILE=str(tmp_path / "absent.json")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stderr.startswith("error [TOKENS_FILE_MISSING] "), result.stderr
    assert "memorch token add" in result.stderr


# --- the binding rule itself -------------------------------------------------------------------


def test_limits_apply_to_any_argument_a_tool_has() -> None:
    identity = Identity("t", "alice", {"agent_id": (), "project": ("p1", "p2")})
    with_project = {"user_id", "agent_id", "project", "text"}
    assert identity.bind("add_memory", {"text": "x", "project": "p2"}, with_project)["project"] == "p2"
    for arguments in ({"text": "x", "project": "p3"}, {"text": "x"}):  # outside the list; several to choose from
        with pytest.raises(PermissionDeniedError) as caught:
            identity.bind("add_memory", arguments, with_project)
        assert caught.value.details == {"argument": "project", "allowed": ["p1", "p2"]}
    # a tool without the argument is not limited by it; user_id is always bound
    assert identity.bind("add_memory", {"text": "x", "agent_id": "a"}, {"user_id", "agent_id", "text"}) == {
        "text": "x",
        "agent_id": "a",
        "user_id": "alice",
    }
    one = Identity("t", "alice", {"agent_id": (), "project": ("p1",)})
    assert one.bind("list_memories", {}, {"user_id", "project"}) == {"user_id": "alice", "project": "p1"}
    with pytest.raises(PermissionDeniedError):  # a tool that cannot be bound to a user is refused
        identity.bind("reset_everything", {}, {"confirm"})


async def test_stdio_and_in_process_stay_unbound(tmp_path: Path) -> None:
    from memorch.serve._app import build_server

    tokens_file = tmp_path / "tokens.json"
    add_token_record(tokens_file, "alice", [], [])
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", tokens_file=tokens_file)
    async with Client(build_server(config)) as client:
        added = await call(client, "add_memory", text="Zoe likes jazz", user_id="zoe", infer=False)
        assert (await call(client, "get_memory", memory_id=added["results"][0]["id"]))["user_id"] == "zoe"


async def test_the_sse_transport_binds_the_caller_too(tmp_path: Path) -> None:
    from mcp.client.sse import sse_client

    tokens_file = tmp_path / "tokens.json"
    alice = add_token_record(tokens_file, "alice", [], [])[1]
    proc, port = start_http_server("sse", tmp_path / "data", MEMORCH_TOKENS_FILE=str(tokens_file))
    try:
        url = f"http://127.0.0.1:{port}/sse"
        assert httpx.get(url, timeout=10).status_code == 401
        async with Client(sse_client(url, headers={"Authorization": f"Bearer {alice}"})) as client:
            assert await refused(client, "list_memories", user_id="bob") == "PERMISSION_DENIED"
            added = await call(client, "add_memory", text="Alice rides a red bike", infer=False)
            assert (await call(client, "get_memory", memory_id=added["results"][0]["id"]))["user_id"] == "alice"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_a_project_limited_token_sees_its_project_and_the_global_layer_only(served: Served) -> None:
    async with session(served, ADMIN) as admin:
        mine = await add(admin, "Erin wants short answers", user_id="erin", layer="global")
        other = await add(admin, "The other repo builds with yarn", user_id="erin", project=OTHER)
    async with session(served, served.tokens["erin"]) as erin:
        here = await add(erin, "This repo builds with make")  # the token's one project, filled in
        listed = await call(erin, "list_memories")
        assert {(r["id"], r["layer"]) for r in listed["results"]} == {(here, "project"), (mine, "global")}
        assert (await call(erin, "get_memory", memory_id=here))["project"] == APP
        assert await refused(erin, "get_memory", memory_id=other) == "MEMORY_NOT_FOUND"
        assert await refused(erin, "delete_memory", memory_id=other) == "MEMORY_NOT_FOUND"
        assert await refused(erin, "list_memories", project=OTHER) == "PERMISSION_DENIED"
        assert await refused(erin, "add_memory", text="x", infer=False, project=OTHER) == "PERMISSION_DENIED"
    async with session(served, ADMIN) as admin:
        assert (await call(admin, "get_memory", memory_id=other))["memory"] == "The other repo builds with yarn"
