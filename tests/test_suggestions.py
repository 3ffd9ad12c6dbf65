"""A suggestion names the next step in the words of whoever reads it: a library user was told to
"call restore_memory" and "call search_memories", tools a Python program cannot call. The core
writes an operation once (``{restore_memory}``); the library, the MCP tools, the command line
and the web page each word it their own way."""

from __future__ import annotations

import pytest
from mcp import Client
from starlette.testclient import TestClient
from typer.testing import CliRunner

from memorch import AsyncMemory, Memory, MemoryConfig, MemoryNotFoundError
from memorch.cli._main import app
from memorch.errors import LIBRARY_WORDS, ValidationError
from memorch.serve._app import build_server
from memorch.serve._ui_api import build_app

TOOLS = tuple(LIBRARY_WORDS)


def deleted_memory(config: MemoryConfig) -> str:
    with Memory(config) as memory:
        added = memory.add("I live in Lisbon", user_id="alice", infer=False)["results"][0]["id"]
        memory.delete(added)
    return added


def test_an_operation_is_worded_only_where_it_is_named_in_braces() -> None:
    error = ValidationError("x", suggestion='use {memory_history}; pass {"a": 1} or {not_an_operation}')
    assert error.suggestion == 'use history(); pass {"a": 1} or {not_an_operation}'
    assert error.worded({tool: f"<{tool}>" for tool in TOOLS}) == (
        'use <memory_history>; pass {"a": 1} or {not_an_operation}'
    )
    assert str(error) == f"[VALIDATION_ERROR] x. Suggestion: {error.suggestion}"
    assert ValidationError("x").worded(LIBRARY_WORDS) is None


async def test_the_library_names_its_own_methods(amem: AsyncMemory) -> None:
    added = (await amem.add("I live in Lisbon", user_id="alice", infer=False))["results"][0]["id"]
    await amem.delete(added)
    with pytest.raises(MemoryNotFoundError) as deleted:
        await amem.get(added)
    with pytest.raises(ValidationError) as bad_id:
        await amem.get("nope")
    with pytest.raises(ValidationError) as bad_event:
        await amem.restore(added, event_id="nope")
    assert deleted.value.suggestion == "bring it back with restore(), then try again; history() shows what it said"
    assert bad_id.value.suggestion == "use search() or get_all() to find the id"
    assert bad_event.value.suggestion == "use history() to find the id"
    for error in (deleted.value, bad_id.value, bad_event.value):
        assert not any(tool in str(error) or tool in str(error.to_dict()) for tool in TOOLS)


async def test_a_tool_error_names_tools(config: MemoryConfig) -> None:
    added = deleted_memory(config)
    async with Client(build_server(config)) as client:
        result = await client.call_tool("get_memory", {"memory_id": added, "user_id": "alice"})
    error = result.structured_content["error"]
    assert result.is_error and error["error_code"] == "MEMORY_NOT_FOUND"
    assert error["suggestion"] == (
        "bring it back with restore_memory, then try again; memory_history shows what it said"
    )
    assert result.content[0].text.endswith(f"Suggestion: {error['suggestion']}")


def test_the_command_line_names_its_commands(config: MemoryConfig) -> None:
    added = deleted_memory(config)
    env = {"MEMORCH_DATA_DIR": str(config.data_dir), "MEMORCH_GRAPH": "off"}
    result = CliRunner().invoke(app, ["get", added, "--user-id", "alice"], env=env)
    assert result.exit_code == 1
    assert "bring it back with `memorch restore`, then try again; `memorch history` shows what it said" in (
        " ".join(result.output.split())
    )


def test_the_web_page_names_its_buttons(config: MemoryConfig) -> None:
    added = deleted_memory(config)
    with TestClient(build_app(config), base_url="http://127.0.0.1") as page:
        answer = page.get(f"/api/memories/{added}", params={"user_id": "alice"})
        bad = page.get("/api/memories/nope", params={"user_id": "alice"})
    assert answer.status_code == 404 and answer.json()["suggestion"] == (
        "bring it back with Restore (in Deleted), then try again; its History shows what it said"
    )
    assert bad.json()["suggestion"] == "use Search or the List to find the id"


def test_every_operation_has_words_on_every_surface() -> None:
    from memorch.cli._errors import COMMAND_WORDS
    from memorch.serve._ui_api import PAGE_WORDS
    from memorch.tools._common import TOOL_WORDS

    for words in (COMMAND_WORDS, PAGE_WORDS, TOOL_WORDS):
        assert set(words) == set(LIBRARY_WORDS)


def test_the_web_pages_refusals_name_what_to_do(config: MemoryConfig) -> None:
    """A refused Host or Origin was told to send a token that the page had none of, and an
    unknown /api path answered plain text (a newcomer's trial, 2026-12-07)."""
    with TestClient(build_app(config), base_url="http://127.0.0.1") as page:
        host = page.get("/api/scopes", headers={"Host": "evil.example"})
        origin = page.delete("/api/memories/x", headers={"Origin": "http://evil.example"})
        unknown = page.get("/api/nope")
        wrong_method = page.get("/api/forget")  # a POST endpoint
    assert host.status_code == 421 and "token" not in host.json()["suggestion"]
    assert "`memorch ui` printed" in host.json()["suggestion"]
    assert origin.status_code == 403 and "token" not in origin.json()["suggestion"]
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "UNKNOWN_ENDPOINT"
    assert wrong_method.status_code == 405 and wrong_method.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in wrong_method.json()["message"]
