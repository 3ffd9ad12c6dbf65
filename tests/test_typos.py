"""Typos are refused or reported, never silently dropped: settings given in code, ``MEMORCH_*``
variables, and the arguments of an MCP tool call (issue 24)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from memorch import MemoryConfig
from memorch._settings import MEM0_KEYS, TEST_VARIABLE_PREFIXES
from memorch.config import unknown_setting_warnings
from memorch.errors import ConfigurationError
from memorch.serve._app import build_server

from .mcp_helpers import free_port, memorch_command, server_env, server_log, start_http_server

GRPAH_WARNING = "MEMORCH_GRPAH is not a memorch setting; did you mean MEMORCH_GRAPH?"
# Test-only variables (TEST_VARIABLE_PREFIXES) a server must not warn about.
TEST_VARIABLES = {"MEMORCH_TEST_PG_URL": "", "MEMORCH_REQUIRE_POSTGRES": "0", "MEMORCH_FUZZ_SEED": "1"}


# --- MemoryConfig -----------------------------------------------------------------------------


def test_a_misspelt_setting_is_a_type_error_naming_the_closest_one(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as raised:
        MemoryConfig(data_dir=tmp_path, grpah="off")
    assert str(raised.value) == "MemoryConfig got an unexpected keyword argument 'grpah'; did you mean 'graph'?"
    with pytest.raises(TypeError) as several:
        MemoryConfig(data_dri=tmp_path, colour="blue")
    assert str(several.value) == (
        "MemoryConfig got unexpected keyword arguments 'data_dri' (did you mean 'data_dir'?), 'colour'"
    )


def test_with_overrides_validates_exactly_like_the_constructor(config: MemoryConfig) -> None:
    faster = config.with_overrides(index_flush_delay=0, graph=True, search_weights={"graph": 0})
    assert (faster.index_flush_delay, faster.graph) == (0.0, "on")
    merged = {"vector": 1.0, "text": 1.0, "graph": 0.0, "context": 0.3, "time": 1.0, "words": 0.2, "diversity": 0.15}
    assert faster.search_weights == merged
    assert (config.index_flush_delay, config.graph, faster.data_dir) == (1.0, "off", config.data_dir)

    for bad in ({"graph": "maybe"}, {"index_flush_delay": 99}, {"llm_timeout": "soon"}, {"log_level": "LOUD"}):
        with pytest.raises(ConfigurationError) as from_constructor:
            MemoryConfig(data_dir=config.data_dir, **bad)
        with pytest.raises(ConfigurationError) as from_overrides:
            config.with_overrides(**bad)
        assert from_overrides.value.to_dict() == from_constructor.value.to_dict(), bad
        assert from_overrides.value.error_code == "INVALID_SETTING"
        assert from_overrides.value.details == {"settings": list(bad)}
    with pytest.raises(ConfigurationError, match=r"index_flush_delay must be less than or equal to 5 \(got 99\)"):
        config.with_overrides(index_flush_delay=99)

    with pytest.raises(TypeError) as unknown:
        config.with_overrides(grpah="off")
    assert str(unknown.value) == "MemoryConfig got an unexpected keyword argument 'grpah'; did you mean 'graph'?"


def test_with_overrides_keeps_the_config_and_reads_no_environment(
    config: MemoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORCH_USER_ID", "from-env-later")
    monkeypatch.setenv("MEMORCH_CANDIDATE_LIMIT", "not a number")  # would stop a new MemoryConfig()
    copy = config.with_overrides(dedup_threshold=0.9)
    assert (copy.user_id, copy.candidate_limit, copy.dedup_threshold) == ("default", 10, 0.9)


def test_from_mapping_takes_mem0_keys_but_refuses_a_typo(tmp_path: Path) -> None:
    mem0 = {
        "vector_store": {"provider": "lancedb", "config": {"path": str(tmp_path / "m0")}},
        "history_db_path": str(tmp_path / "history.db"),  # mem0's, unused here
        "version": "v1.1",
        "graph_store": None,
    }
    assert {"history_db_path", "version", "reranker"} <= MEM0_KEYS
    with pytest.warns(UserWarning, match="is not used by memorch"):  # history_db_path, version
        config = MemoryConfig.from_mapping(mem0)
    assert (config.data_dir, config.graph) == (tmp_path / "m0", "off")
    assert MemoryConfig.from_mapping({"data_dir": tmp_path, "redact": "off"}).redact == "off"
    with pytest.raises(TypeError) as raised:
        MemoryConfig.from_mapping({**mem0, "user_idd": "alice"})
    assert str(raised.value) == "MemoryConfig.from_mapping got an unexpected key 'user_idd'; did you mean 'user_id'?"


def test_the_facades_overrides_are_validated_like_the_constructor(config: MemoryConfig) -> None:
    """``AsyncMemory(config, **overrides)`` and ``Memory(...)``: the docstring's promise holds."""
    from memorch import AsyncMemory, Memory

    with pytest.raises(TypeError, match="'grpah'; did you mean 'graph'"):
        AsyncMemory(config, grpah="off")
    with pytest.raises(ConfigurationError) as bad:
        AsyncMemory(config, graph="maybe", index_flush_delay=99)
    assert bad.value.details == {"settings": ["graph", "index_flush_delay"]}
    with pytest.raises(TypeError, match="'index_flush_dealy'"):
        Memory(config, index_flush_dealy=0)
    assert AsyncMemory(config, index_flush_delay=0).config.index_flush_delay == 0.0


# --- MEMORCH_* variables --------------------------------------------------------------------


def test_unknown_variables_are_named_with_the_closest_setting(tmp_path: Path) -> None:
    config_file = tmp_path / "memorch.toml"
    config_file.write_text('user_id = "a"\nembeder = "static"\n')
    environ = {
        "MEMORCH_GRPAH": "off",
        "memorch_auth_tokne": "x",  # any case, as the settings themselves
        "MEMORCH_SHINY": "1",
        "memorch_config": "x",  # MEMORCH_CONFIG is read only exactly so
        "MEMORCH_CONFIG": str(config_file),
        "memorch_user_id": "fine",
        "MEMORCH_TOKENS_FILE": "",
        "PATH": "/bin",
        **TEST_VARIABLES,
    }
    assert unknown_setting_warnings(environ) == [
        GRPAH_WARNING,
        "MEMORCH_SHINY is not a memorch setting and is ignored",
        "memorch_auth_tokne is not a memorch setting; did you mean MEMORCH_AUTH_TOKEN?",
        "memorch_config is not a memorch setting; did you mean MEMORCH_CONFIG?",
        f"embeder in {config_file} (MEMORCH_CONFIG) is not a memorch setting; did you mean embedder?",
    ]
    assert all(name.startswith(TEST_VARIABLE_PREFIXES) for name in TEST_VARIABLES)


async def test_stdio_server_warns_once_and_refuses_an_argument_delete_memory_does_not_take(tmp_path: Path) -> None:
    """A real ``memorch serve`` on stdio: the typo'd variable is one warning on stderr (the test
    variables none), and ``delete_memory`` with ``shred`` is refused with the memory still there."""
    command = memorch_command()
    env = server_env(tmp_path / "data", MEMORCH_GRPAH="off", **TEST_VARIABLES)
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=env)
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
            assert tools["delete_memory"]["additionalProperties"] is False
            added = await client.call_tool("add_memory", {"text": "I keep bees"})
            memory_id = added.structured_content["results"][0]["id"]

            refused = await client.call_tool("delete_memory", {"memory_id": memory_id, "shred": True})
            assert refused.is_error and refused.structured_content["error"]["error_code"] == "INVALID_ARGUMENT"
            assert refused.structured_content["error"]["suggestion"].startswith("leave out shred")
            assert refused.content[0].text == (
                "[INVALID_ARGUMENT] invalid arguments for delete_memory: it takes no argument 'shred'. "
                "Suggestion: leave out shred (delete_memory takes only memory_id, purge, user_id, agent_id, run_id, "
                "project), then call it again"
            )
            still = await client.call_tool("get_memory", {"memory_id": memory_id})
            assert not still.is_error and still.structured_content["memory"] == "I keep bees"
            history = await client.call_tool("memory_history", {"memory_id": memory_id})
            assert [event["event"] for event in history.structured_content["events"]] == ["ADD"]
    log = stderr.read_text()
    assert log.count(GRPAH_WARNING) == 1, log
    assert not [name for name in TEST_VARIABLES if name in log], log


def test_http_server_and_ui_warn_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, _ = start_http_server("streamable-http", data, MEMORCH_GRPAH="off", **TEST_VARIABLES)
    try:
        log = server_log(data).read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert log.count(GRPAH_WARNING) == 1, log

    port = free_port()
    ui_log = tmp_path / "ui.log"
    with ui_log.open("wb") as sink:
        ui = subprocess.Popen(
            [*memorch_command(), "ui", "--port", str(port)],
            env=server_env(tmp_path / "ui-data", MEMORCH_GRPAH="off", **TEST_VARIABLES),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        _wait_for_port(ui, port, ui_log)
        # The socket listens a moment before the line saying so is written: wait for the line.
        deadline = time.monotonic() + 30
        while "memory UI on" not in ui_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    text = ui_log.read_text()
    assert text.count(GRPAH_WARNING) == 1 and "memory UI on" in text, text
    assert not [name for name in TEST_VARIABLES if name in text], text


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()}")


# --- tool arguments ---------------------------------------------------------------------------


def _refusal(result: Any) -> str:
    assert result.is_error, result
    text = result.content[0].text
    assert text.startswith("[INVALID_ARGUMENT] ") and ". Suggestion: " in text, text
    return text


async def test_every_tool_refuses_an_argument_it_does_not_take(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        for name, schema in tools.items():
            assert schema["additionalProperties"] is False, name
            text = _refusal(await client.call_tool(name, {"shred": True}))
            assert "it takes no argument 'shred'" in text, text
            assert f"({name} takes only {', '.join(schema['properties'])})" in text, text


async def test_a_misspelt_argument_names_the_right_one_and_changes_nothing(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        added = await client.call_tool("add_memory", {"text": "I keep bees", "user_id": "alice"})
        memory_id = added.structured_content["results"][0]["id"]

        typo = _refusal(await client.call_tool("get_memory", {"memory_id": memory_id, "user_idd": "bob"}))
        assert "it takes no argument 'user_idd' (did you mean user_id?)" in typo
        assert "Suggestion: pass user_id instead of user_idd (get_memory takes only memory_id, user_id," in typo

        # Calls that would change something, each with one argument too many: nothing changes.
        _refusal(await client.call_tool("add_memory", {"text": "I keep wasps", "user": "alice"}))
        _refusal(await client.call_tool("update_memory", {"memory_id": memory_id, "text": "x", "force": True}))
        _refusal(await client.call_tool("delete_all_memories", {"confirm": True, "user_id": "alice", "all": True}))
        wrong_name = _refusal(await client.call_tool("delete_memory", {"id": memory_id}))
        assert "memory_id is required" in wrong_name and "leave out id" in wrong_name

        listed = await client.call_tool("list_memories", {"user_id": "alice"})
        assert [item["memory"] for item in listed.structured_content["results"]] == ["I keep bees"]
        history = await client.call_tool("memory_history", {"memory_id": memory_id})
        assert [event["event"] for event in history.structured_content["events"]] == ["ADD"]
        assert (await client.call_tool("list_memories", {})).structured_content["results"] == []


async def test_an_unknown_tool_is_refused_in_the_one_form_naming_the_nearest(config: MemoryConfig) -> None:
    """The SDK answered a bare ``Unknown tool: search_memory``; a model then has no next step."""
    async with Client(build_server(config)) as client:
        listed = sorted(tool.name for tool in (await client.list_tools()).tools)
        misspelt = await client.call_tool("search_memory", {"query": "bees", "user_id": "alice"})
        assert misspelt.is_error
        text = misspelt.content[0].text
        assert text.startswith("[UNKNOWN_TOOL] this server has no tool named 'search_memory'. "), text
        assert "Suggestion: call search_memories, or another of the tools in details.tools" in text, text
        error = misspelt.structured_content["error"]
        assert error["details"] == {"tool": "search_memory", "tools": listed}

        peers = {"store_memory": "add_memory", "search_nodes": "search_memories", "delete_entities": "delete_memory"}
        for peer_name, ours in peers.items():
            text = (await client.call_tool(peer_name, {})).content[0].text
            assert f"Suggestion: call {ours}, or another" in text, text
        long_name = "x" * 100_000 + "\nERROR forged log line"
        refused = await client.call_tool(long_name, {})
        assert refused.structured_content["error"]["details"]["tool"] == "x" * 80
        peer = (await client.call_tool("read_graph", {})).content[0].text
        assert peer.startswith("[UNKNOWN_TOOL] "), peer
        assert "Suggestion: call one of the tools in details.tools (tools/list describes them)" in peer, peer
        # Nothing was written by either call.
        assert (await client.call_tool("list_memories", {"user_id": "alice"})).structured_content["results"] == []
