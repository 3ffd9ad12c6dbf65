"""MCP: every tool through a real client session; stdio, SSE and streamable HTTP."""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from memorch import MemoryConfig
from memorch.serve._app import build_server

from .mcp_helpers import memorch_command, server_env, start_http_server, stdio_server

TOOLS = {
    "add_memory",
    "search_memories",
    "update_memory",
    "delete_memory",
    "memory_history",
    "get_memory",
    "list_memories",
    "delete_all_memories",
    "restore_memory",
}


async def test_a_message_in_text_parts(config: MemoryConfig) -> None:
    """OpenAI-style content parts, as the schema in tools/list says (they were refused)."""
    async with Client(build_server(config)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        content = listed["add_memory"].input_schema["properties"]["messages"]["items"]["properties"]
        assert content["content"] == {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
        parts = [{"role": "user", "content": [{"type": "text", "text": "I swim on Sundays"}]}]
        swim = await client.call_tool("add_memory", {"messages": parts})
        assert not swim.is_error and swim.structured_content["results"][0]["memory"] == "I swim on Sundays"
        image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
        refused = await client.call_tool("add_memory", {"messages": image})
        assert refused.is_error and "[INVALID_MESSAGES]" in refused.content[0].text


async def test_all_tools_in_process(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        assert listed["search_memories"].annotations.read_only_hint is True
        assert listed["delete_all_memories"].annotations.destructive_hint is True
        # No output schemas in tools/list (they doubled it, issue 28); results stay structured.
        assert listed["add_memory"].output_schema is None

        added = await client.call_tool(
            "add_memory", {"text": "I am allergic to peanuts", "metadata": {"category": "health"}}
        )
        assert not added.is_error
        memory_id = added.structured_content["results"][0]["id"]
        await client.call_tool("add_memory", {"messages": [{"role": "user", "content": "I live in Lisbon"}]})

        found = await client.call_tool("search_memories", {"query": "what foods should I avoid?", "limit": 2})
        assert found.structured_content["results"][0]["id"] == memory_id
        assert found.structured_content["results"][0]["user_id"] == "default"
        filtered = await client.call_tool(
            "search_memories", {"query": "city", "filters": {"category": "health"}, "threshold": 0}
        )
        assert [r["id"] for r in filtered.structured_content["results"]] == [memory_id]

        new_text = "I am allergic to peanuts and sesame"
        updated = await client.call_tool("update_memory", {"memory_id": memory_id, "text": new_text})
        assert updated.structured_content["event"] == "UPDATE"
        got = await client.call_tool("get_memory", {"memory_id": memory_id})
        assert got.structured_content["memory"] == "I am allergic to peanuts and sesame"
        listed_memories = await client.call_tool("list_memories", {})
        assert len(listed_memories.structured_content["results"]) == 2

        deleted = await client.call_tool("delete_memory", {"memory_id": memory_id})
        assert deleted.structured_content["event"] == "DELETE"
        history = await client.call_tool("memory_history", {"memory_id": memory_id})
        assert [e["event"] for e in history.structured_content["events"]] == ["ADD", "UPDATE", "DELETE"]

        refused = await client.call_tool("delete_all_memories", {"confirm": False})
        assert refused.is_error and "CONFIRMATION_REQUIRED" in refused.content[0].text
        assert len((await client.call_tool("list_memories", {})).structured_content["results"]) == 1
        wiped = await client.call_tool("delete_all_memories", {"confirm": True})
        assert wiped.structured_content["deleted"] == 1


async def test_tool_errors_carry_code_and_next_step(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        bad_id = await client.call_tool("get_memory", {"memory_id": "nope"})
        assert bad_id.is_error
        text = bad_id.content[0].text
        assert "INVALID_MEMORY_ID" in text and "search_memories" in text and "Traceback" not in text
        # The same fields typed beside the text: a client reads them without parsing.
        error = bad_id.structured_content["error"]
        assert set(error) == {"error_code", "message", "details", "suggestion"}
        assert text == f"[{error['error_code']}] {error['message']}. Suggestion: {error['suggestion']}"
        assert error["error_code"] == "INVALID_MEMORY_ID" and "search_memories" in error["suggestion"]
        missing = await client.call_tool("delete_memory", {"memory_id": "00000000-0000-4000-8000-000000000000"})
        assert missing.is_error and "MEMORY_NOT_FOUND" in missing.content[0].text
        empty = await client.call_tool("add_memory", {"text": "   "})
        assert empty.is_error and "EMPTY_TEXT" in empty.content[0].text
        both = await client.call_tool("add_memory", {"text": "a", "messages": [{"role": "user", "content": "b"}]})
        assert both.is_error
        bad_filter = await client.call_tool("search_memories", {"query": "x", "filters": {"k": {"regex": "."}}})
        assert bad_filter.is_error and "INVALID_FILTER" in bad_filter.content[0].text
        assert (await client.call_tool("list_memories", {})).structured_content["results"] == []


async def test_explain_over_mcp_carries_the_context_anchor(config: MemoryConfig) -> None:
    """``explain`` names the hit a context lift came from by its id (a string among the scores):
    the tool's result type must take it (it was INTERNAL_ERROR, found by a newcomer's trial)."""
    async with Client(build_server(config)) as client:
        for text in ("I play the violin.", "I play the violin in an orchestra."):
            assert not (await client.call_tool("add_memory", {"text": text})).is_error
        found = await client.call_tool("search_memories", {"query": "violin", "explain": True})
        assert not found.is_error, found.content[0].text
        hits = found.structured_content["results"]
        assert len(hits) == 2 and all("vector" in hit["explain"] for hit in hits)
        anchors = [hit["explain"]["context"]["of"] for hit in hits if "context" in hit["explain"]]
        assert anchors and set(anchors) <= {hit["id"] for hit in hits}


async def test_scope_wide_tools_default_to_the_server_user(tmp_path: Path) -> None:
    config = MemoryConfig(data_dir=tmp_path, graph="off", user_id="alice")
    async with Client(build_server(config)) as client:
        mine = await client.call_tool("add_memory", {"text": "alice owns a cat"})
        await client.call_tool("add_memory", {"text": "bob owns a dog", "user_id": "bob"})
        found = await client.call_tool("search_memories", {"query": "pet", "threshold": 0})
        assert [r["memory"] for r in found.structured_content["results"]] == ["alice owns a cat"]
        listed = await client.call_tool("list_memories", {})
        assert [r["memory"] for r in listed.structured_content["results"]] == ["alice owns a cat"]
        assert mine.structured_content["results"][0]["event"] == "ADD"


async def test_an_empty_scope_argument_counts_as_not_given(tmp_path: Path) -> None:
    """Some clients send "" for every optional text argument: user_id "" was the server's user,
    but agent_id "" and run_id "" were refused (INVALID_SCOPE) -- one rule for all of them."""
    blank = {"user_id": "", "agent_id": "", "run_id": "", "project": ""}
    config = MemoryConfig(data_dir=tmp_path, graph="off", user_id="alice")
    async with Client(build_server(config)) as client:
        added = await client.call_tool("add_memory", {"text": "alice owns a cat", **blank})
        assert not added.is_error, added.content[0].text
        memory_id = added.structured_content["results"][0]["id"]
        got = (await client.call_tool("get_memory", {"memory_id": memory_id})).structured_content
        assert got["user_id"] == "alice" and not got.get("agent_id") and not got.get("run_id")
        for tool, extra in (
            ("search_memories", {"query": "cat", "threshold": 0}),
            ("list_memories", {}),
            ("get_memory", {"memory_id": memory_id}),
            ("memory_history", {"memory_id": memory_id}),
            ("update_memory", {"memory_id": memory_id, "text": "alice owns two cats"}),
            ("restore_memory", {"memory_id": memory_id}),
            ("delete_memory", {"memory_id": memory_id}),
        ):
            done = await client.call_tool(tool, {**extra, **blank})
            assert not done.is_error, (tool, done.content[0].text)
        history = (await client.call_tool("memory_history", {"memory_id": memory_id})).structured_content
        assert [e["event"] for e in history["events"]] == ["ADD", "UPDATE", "RESTORE", "DELETE"]


async def test_a_switch_given_as_text_is_refused(tmp_path: Path) -> None:
    """``dry_run: "yes"`` was coerced to true and ``infer: "yes"`` asked the model, while
    ``confirm: "yes"`` was refused (a trial): every switch is a JSON boolean, nothing is written."""
    config = MemoryConfig(data_dir=tmp_path, graph="off", user_id="alice")
    async with Client(build_server(config)) as client:
        for arguments in ({"dry_run": "yes"}, {"infer": "yes"}, {"infer": "false"}, {"dry_run": 1}):
            done = await client.call_tool("add_memory", {"text": "I like figs", **arguments})
            assert done.is_error and done.content[0].text.startswith("[INVALID_ARGUMENT]"), arguments
        listed = await client.call_tool("list_memories", {})
        assert listed.structured_content["results"] == []


async def test_an_id_from_search_works_in_every_id_tool(tmp_path: Path) -> None:
    """The id names the memory: no user_id needed; a given user_id narrows (mismatch: not found)."""
    config = MemoryConfig(data_dir=tmp_path, graph="off", user_id="default")
    async with Client(build_server(config)) as client:
        await client.call_tool("add_memory", {"text": "Alice likes hiking and kayaking", "user_id": "alice"})
        found = await client.call_tool(
            "search_memories", {"query": "outdoor activities", "user_id": "alice", "threshold": 0}
        )
        memory_id = found.structured_content["results"][0]["id"]
        assert not (await client.call_tool("get_memory", {"memory_id": memory_id})).is_error
        wrong = await client.call_tool("get_memory", {"memory_id": memory_id, "user_id": "bob"})
        assert wrong.is_error and wrong.content[0].text.startswith("[MEMORY_NOT_FOUND]")
        right = await client.call_tool("get_memory", {"memory_id": memory_id, "user_id": "alice"})
        assert right.structured_content["user_id"] == "alice"
        assert (
            await client.call_tool("update_memory", {"memory_id": memory_id, "text": "Alice likes hiking"})
        ).structured_content["event"] == "UPDATE"
        history = await client.call_tool("memory_history", {"memory_id": memory_id})
        assert [e["event"] for e in history.structured_content["events"]] == ["ADD", "UPDATE"]
        assert (await client.call_tool("delete_memory", {"memory_id": memory_id, "user_id": "bob"})).is_error
        deleted = await client.call_tool("delete_memory", {"memory_id": memory_id})
        assert deleted.structured_content["event"] == "DELETE"
        again = await client.call_tool("delete_memory", {"memory_id": memory_id})  # idempotent, as annotated
        assert not again.is_error and again.structured_content["event"] == "NONE"
        assert "already deleted" in again.structured_content["message"]


async def test_stdio_subprocess(tmp_path: Path) -> None:
    command = memorch_command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=server_env(tmp_path))
    errors = tmp_path.with_name(tmp_path.name + ".stderr")
    with errors.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            await _add_search_and_add_again(client)
    # One line says which data directory this server works on (clients' logs show stderr).
    started = (
        f"MCP server on stdio, data directory {tmp_path}, user_id 'default' by default, "
        "no LLM (memories are stored as said)"
    )
    assert started in errors.read_text()
    # The client closed stdin: the server wrote the index rows it owed before it exited (the
    # last add's row was left queued for the next start before).
    ledger = sqlite3.connect(tmp_path / "memorch.db")
    try:
        assert ledger.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 2
        assert ledger.execute("SELECT COUNT(*) FROM index_outbox").fetchone()[0] == 0
    finally:
        ledger.close()


async def test_stdio_imports_the_stores_once_the_tools_are_listed(tmp_path: Path) -> None:
    """The first tool call after a launch paid LanceDB's and the model runtime's imports (2.7 s
    of a 3.5 s first search, `bench/cold_start.py --first-search 3`): `memorch serve` imports
    them on a thread once the client has listed the tools, and says so in its debug log."""
    import anyio

    command = memorch_command()
    env = server_env(tmp_path, MEMORCH_LOG_LEVEL="debug")
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=env)
    errors = tmp_path.with_name(tmp_path.name + ".stderr")
    warmed = "the stores' modules imported in the background"
    with errors.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            await anyio.sleep(1)
            assert warmed not in errors.read_text()  # not before the client asks for the tools
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            with anyio.fail_after(60):
                while warmed not in errors.read_text():
                    await anyio.sleep(0.1)
            await client.list_tools()
            found = await client.call_tool("search_memories", {"query": "anything"})
            assert not found.is_error
    assert errors.read_text().count(warmed) == 1  # once


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.2, 0.4])
def test_stdio_exits_cleanly_when_closed_while_it_warms(tmp_path: Path, delay: float) -> None:
    """A client that closes stdin right after tools/list ends the server while it imports its
    stores on a thread: that thread is waited for (a daemon thread in a native import aborted the
    interpreter's exit, -6, once in CI and 1 in 10 such closes under three CPU burners)."""
    import json
    import subprocess
    import time

    proc = stdio_server(tmp_path, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ):
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    while json.loads(proc.stdout.readline()).get("id") != 2:
        pass
    time.sleep(delay)
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""


async def _add_search_and_add_again(client: Client) -> None:
    assert {t.name for t in (await client.list_tools()).tools} == TOOLS
    added = await client.call_tool("add_memory", {"text": "I am allergic to peanuts"})
    assert added.structured_content["results"][0]["event"] == "ADD"
    found = await client.call_tool("search_memories", {"query": "what foods should I avoid?"})
    assert found.structured_content["results"][0]["memory"] == "I am allergic to peanuts"
    await client.call_tool("add_memory", {"text": "My sister lives in Porto"})


def _status_without_token(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
async def test_http_transports_with_bearer_token(tmp_path: Path, transport: str) -> None:
    import httpx2
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    proc, port = start_http_server(transport, tmp_path, MEMORCH_AUTH_TOKEN="s3cret")
    try:
        path = "/sse" if transport == "sse" else "/mcp"
        url = f"http://127.0.0.1:{port}{path}"
        assert _status_without_token(url) == 401
        headers = {"Authorization": "Bearer s3cret"}
        if transport == "sse":
            target = sse_client(url, headers=headers)
        else:
            target = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=60))
        async with Client(target) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            added = await client.call_tool("add_memory", {"text": f"remembered over {transport}"})
            assert added.structured_content["results"][0]["event"] == "ADD"
            found = await client.call_tool("search_memories", {"query": transport})
            assert found.structured_content["results"][0]["memory"] == f"remembered over {transport}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_delete_all_of_a_project_says_and_does_that_layer_alone(tmp_path: Path) -> None:
    """The model reads the tool's schema: delete_all_memories' project is "only this layer",
    not the layer-and-global of search and add (a review found the shared text)."""
    config = MemoryConfig(data_dir=tmp_path, graph="off", user_id="me", project="acme/app")
    async with Client(build_server(config)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        said = tools["delete_all_memories"].input_schema["properties"]["project"]["description"]
        assert "Only this project's layer" in said
        await client.call_tool("add_memory", {"text": "Run the tests with make check"})
        await client.call_tool("add_memory", {"text": "I want answers in British English", "layer": "global"})
        wiped = await client.call_tool("delete_all_memories", {"confirm": True, "project": "acme/app"})
        assert wiped.structured_content["deleted"] == 1
        left = (await client.call_tool("list_memories", {})).structured_content["results"]
        assert [m["memory"] for m in left] == ["I want answers in British English"]


def test_the_start_line_names_the_llm_without_credentials(tmp_path: Path) -> None:
    from memorch.serve._app import _llm_words

    config = MemoryConfig(data_dir=tmp_path, llm_model="openai/m", llm_api_base="https://bob:s3cret@llm.example/v1")
    assert _llm_words(config) == "LLM openai/m at https://llm.example/v1"
    assert _llm_words(MemoryConfig(data_dir=tmp_path)) == "no LLM (memories are stored as said)"
