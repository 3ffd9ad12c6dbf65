"""The seam an assistant meets: schemas it can read, errors that always arrive in one form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from memorch import MemoryConfig
from memorch.api._async_memory import AsyncMemory
from memorch.serve._app import build_server

ERROR_FORM = re.compile(r"^\[[A-Z_]+\] .+\. Suggestion: .+", re.DOTALL)


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return schema.get("properties", {})


def _error_text(result: Any) -> str:
    assert result.is_error
    text = result.content[0].text
    assert ERROR_FORM.match(text), text
    assert "Traceback" not in text and "Error executing tool" not in text
    return text


async def test_every_tool_argument_is_described_and_never_any_of_null(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        tools = (await client.list_tools()).tools
    undescribed = [
        f"{tool.name}.{name}"
        for tool in tools
        for name, prop in _properties(tool.input_schema).items()
        if not prop.get("description")
    ]
    assert undescribed == []
    nullable = [
        f"{tool.name}.{name}"
        for tool in tools
        for name, prop in _properties(tool.input_schema).items()
        if "anyOf" in prop or prop.get("type") == "null" or prop.get("default", "absent") is None
    ]
    assert nullable == []


async def test_invalid_arguments_come_back_as_coded_errors(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        missing = _error_text(await client.call_tool("get_memory", {}))
        assert missing.startswith("[INVALID_ARGUMENT]") and "memory_id is required" in missing
        # Without confirm: told to ask the user, not to "fix" the argument (a model then added it).
        unconfirmed = _error_text(await client.call_tool("delete_all_memories", {}))
        assert unconfirmed.startswith("[CONFIRMATION_REQUIRED]") and "ask the user" in unconfirmed
        zero = _error_text(await client.call_tool("search_memories", {"query": "x", "limit": 0}))
        assert zero.startswith("[INVALID_ARGUMENT]") and "limit" in zero
        wrong_type = _error_text(await client.call_tool("add_memory", {"text": 42}))
        assert "text" in wrong_type
        empty_query = _error_text(await client.call_tool("search_memories", {"query": "   "}))
        assert "query" in empty_query and "remember" not in empty_query
        empty_text = _error_text(await client.call_tool("add_memory", {"text": "  "}))
        assert "text" in empty_text and "messages" not in empty_text.split(". Suggestion")[0]


@pytest.mark.parametrize("confirm", ["yes", "true", 1, "1", None])
async def test_delete_all_needs_the_json_boolean_true(config: MemoryConfig, confirm: Any) -> None:
    async with Client(build_server(config)) as client:
        await client.call_tool("add_memory", {"text": "I keep bees"})
        refused = await client.call_tool("delete_all_memories", {"confirm": confirm})
        _error_text(refused)
        assert len((await client.call_tool("list_memories", {})).structured_content["results"]) == 1
        done = await client.call_tool("delete_all_memories", {"confirm": True})
        assert done.structured_content["deleted"] == 1


async def test_a_bug_is_an_internal_error_not_a_degraded_success(
    config: MemoryConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: AsyncMemory, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(AsyncMemory, "search", broken)
    async with Client(build_server(config)) as client:
        text = _error_text(await client.call_tool("search_memories", {"query": "anything"}))
    assert text.startswith("[INTERNAL_ERROR]") and "unsupported operand" not in text
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in caplog.records)  # the detail stays in the log


async def test_a_data_dir_that_is_a_file_is_a_coded_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    config = MemoryConfig(data_dir=blocker, graph="off")
    async with Client(build_server(config)) as client:
        text = _error_text(await client.call_tool("add_memory", {"text": "I like tea"}))
    assert not text.startswith("[INTERNAL_ERROR]"), text


def test_a_message_ending_its_own_sentence_gets_one_stop_before_the_suggestion() -> None:
    from memorch.errors import NetworkError

    said = str(NetworkError("model could not be reached: Connection error.", suggestion="check MEMORCH_LLM_API_BASE"))
    assert (
        said == "[NETWORK_ERROR] model could not be reached: Connection error. Suggestion: check MEMORCH_LLM_API_BASE"
    )
    assert ERROR_FORM.match(said)
