"""A newcomer's first hour over MCP (issue 28): a tool list light enough for every conversation,
only the capabilities the server has, hits without empty or internal fields, honest empty
searches, deletions that say what they removed, and a verbatim add that keeps the user's words.

Real client sessions against the real server, real stores in a temporary directory, no LLM.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from memorch import AsyncMemory, MemoryConfig
from memorch.serve._app import build_server

from .conftest import fake_llm_config
from .fake_llm import Failure, FakeLLM

FAMILY = [
    "My sister Ana lives in Porto with her two kids",
    "Dad turns seventy in March",
    "I work as a nurse at the city hospital",
    "I am allergic to peanuts",
]


async def _tools_json(config: MemoryConfig) -> list[dict[str, Any]]:
    async with Client(build_server(config)) as client:
        tools = (await client.list_tools()).tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


@pytest.mark.parametrize(("project", "budget"), [(None, 10_000), ("github.com/acme/app", 10_240)])
async def test_tools_list_fits_in_10_kb_with_every_parameter_described(
    tmp_path: Path, project: str | None, budget: int
) -> None:
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", project=project)
    tools = await _tools_json(config)
    size = len(json.dumps({"tools": tools}, separators=(",", ":")))
    assert size <= budget, f"tools/list is {size} bytes of compact JSON"
    assert len(tools) == 9
    for tool in tools:
        assert len(tool["description"]) > 20, tool["name"]
        assert "outputSchema" not in tool
        properties = tool["inputSchema"]["properties"]
        for name, schema in properties.items():
            assert len(schema.get("description", "")) >= 10, f"{tool['name']}.{name} is not described"
            assert "title" not in schema
        assert tool["inputSchema"]["additionalProperties"] is False


async def test_the_server_advertises_only_tools(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        capabilities = client.server_capabilities
        assert capabilities.tools is not None
        assert capabilities.prompts is None and capabilities.resources is None
        with pytest.raises(MCPError, match=r"(?i)method not found"):
            await client.list_resources()
        with pytest.raises(MCPError, match=r"(?i)method not found"):
            await client.list_prompts()


async def test_hits_carry_no_empty_or_internal_fields_unless_asked(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        await client.call_tool("add_memory", {"text": "I am allergic to peanuts", "metadata": {"category": "health"}})
        await client.call_tool("add_memory", {"text": "I live in Lisbon"})
        found = (await client.call_tool("search_memories", {"query": "food allergy"})).structured_content
        hit = found["results"][0]
        assert set(hit) == {"id", "memory", "score", "created_at", "user_id", "metadata"}
        assert hit["metadata"] == {"category": "health"}
        listed = (await client.call_tool("list_memories", {})).structured_content["results"]
        assert {frozenset(h) for h in listed} == {
            frozenset({"id", "memory", "created_at", "user_id", "metadata"}),
            frozenset({"id", "memory", "created_at", "user_id"}),
        }
        explained = await client.call_tool("search_memories", {"query": "food allergy", "explain": True})
        full = explained.structured_content["results"][0]
        assert {"hash", "agent_id", "run_id", "project", "layer", "updated_at", "explain"} <= set(full)
        verbose = (await client.call_tool("list_memories", {"verbose": True})).structured_content["results"]
        assert all("hash" in h and "updated_at" in h for h in verbose)


async def test_an_empty_search_says_what_fell_below_the_threshold(config: MemoryConfig) -> None:
    """`family` is a word none of the memories says: the best match scores under the default
    threshold. The answer is not a bare [] a model would read as "never said"."""
    async with Client(build_server(config)) as client:
        for text in FAMILY:
            await client.call_tool("add_memory", {"text": text})
        found = (await client.call_tool("search_memories", {"query": "xylophone quantum"})).structured_content
        assert found["results"] == []
        below = found["below_threshold"]
        assert below["count"] >= 1 and below["threshold"] == config.search_threshold
        assert 0 <= below["best_score"] < config.search_threshold
        everything = await client.call_tool("search_memories", {"query": "xylophone quantum", "threshold": 0})
        scores = [r["score"] for r in everything.structured_content["results"]]
        assert len(scores) == len(FAMILY) and max(scores) == pytest.approx(below["best_score"], abs=1e-6)
        assert "below_threshold" not in everything.structured_content
        nothing_stored = await client.call_tool("search_memories", {"query": "x", "user_id": "nobody"})
        assert nothing_stored.structured_content == {
            "results": [],
            "empty": "no memories are stored for user_id 'nobody'",
        }


async def test_every_empty_answer_says_why(config: MemoryConfig) -> None:
    """Nothing to fall below the threshold: an empty search or list says whether the scope holds
    nothing, the filters match nothing, or nothing existed then (a bare [] reads as "never said")."""
    async with Client(build_server(config)) as client:

        async def empty(tool: str, arguments: dict) -> str:
            found = (await client.call_tool(tool, arguments)).structured_content
            assert found["results"] == [] and "below_threshold" not in found, found
            return found["empty"]

        assert await empty("list_memories", {"user_id": "nobody"}) == "no memories are stored for user_id 'nobody'"
        await client.call_tool("add_memory", {"text": "I drink green tea", "metadata": {"topic": "food"}})
        await client.call_tool("add_memory", {"text": "I keep bees", "metadata": {"topic": "garden"}})
        user = config.user_id
        for tool, query in (("search_memories", {"query": "green tea", "threshold": 0}), ("list_memories", {})):
            said = await empty(tool, {**query, "filters": {"topic": "music"}})
            assert said == f"user_id '{user}' has memories, none whose metadata matches the filters"
            said = await empty(tool, {**query, "as_of": "2020-01-01"})
            assert said == f"no memory of user_id '{user}' existed at 2020-01-01"
        budget = (await client.call_tool("list_memories", {"max_tokens": 1})).structured_content
        assert budget["results"] == [] and budget["omitted"] >= 1 and "empty" not in budget
        # A cursor past a list's last memory (here another user's list's, whose memories are all
        # newer than it, and lists are newest first) says so.
        await client.call_tool("add_memory", {"text": "I collect stamps", "user_id": "zed"})
        first = (await client.call_tool("list_memories", {"limit": 1})).structured_content
        past = await empty("list_memories", {"limit": 1, "cursor": first["next_cursor"], "user_id": "zed"})
        assert past == "no memory of user_id 'zed' comes after this cursor: the list is complete"
        await client.call_tool("delete_all_memories", {"confirm": True})
        said = await empty("search_memories", {"query": "green tea"})
        assert said == f"no memories are stored for user_id '{user}'"


async def test_delete_all_returns_the_ids_and_a_restore_brings_one_back(config: MemoryConfig) -> None:
    async with Client(build_server(config)) as client:
        ids = []
        for text in FAMILY[:3]:
            added = await client.call_tool("add_memory", {"text": text})
            ids.append(added.structured_content["results"][0]["id"])
        wiped = (await client.call_tool("delete_all_memories", {"confirm": True})).structured_content
        assert wiped["deleted"] == 3 and sorted(wiped["ids"]) == sorted(ids)
        restored = await client.call_tool("restore_memory", {"memory_id": wiped["ids"][0]})
        assert not restored.is_error
        listed = (await client.call_tool("list_memories", {})).structured_content["results"]
        assert [r["id"] for r in listed] == [wiped["ids"][0]]


async def test_without_an_llm_only_the_users_turns_are_kept(amem: AsyncMemory) -> None:
    conversation = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "I just adopted a cat named Miso"},
        {"role": "assistant", "content": "Nice!"},
        {"role": "user", "content": "She is three years old"},
    ]
    added = await amem.add(conversation, user_id="u")
    assert [r["memory"] for r in added["results"]] == ["I just adopted a cat named Miso", "She is three years old"]
    stored = sorted(m["memory"] for m in (await amem.get_all(user_id="u"))["results"])
    assert stored == ["I just adopted a cat named Miso", "She is three years old"]
    # A conversation with no user turn keeps what was said, as one text would be kept.
    only_assistant = await amem.add([{"role": "assistant", "content": "The build uses uv"}], user_id="u")
    assert [r["memory"] for r in only_assistant["results"]] == ["The build uses uv"]


async def test_a_dry_run_says_nothing_was_written(amem: AsyncMemory) -> None:
    planned = await amem.add("I prefer window seats", user_id="u", dry_run=True)
    assert planned["dry_run"] is True
    assert planned["results"][0]["reason"] == "would be stored as said (dry run: nothing was written)"
    assert (await amem.get_all(user_id="u"))["results"] == []


# -- LLM setup that works the first time -----------------------------------------------------------


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


async def test_a_local_server_needs_no_key(tmp_path: Path, fake: FakeLLM, no_provider_keys: None) -> None:
    """The docs' recipe for a self-hosted OpenAI-compatible server: a model and an API base, no key."""
    config = fake_llm_config(tmp_path, fake, llm_api_key=None)
    assert config.llm_api_key in (None, "")
    fake.push({"memory": [{"event": "ADD", "text": "User lives in Lisbon"}]})
    async with AsyncMemory(config) as memory:
        added = await memory.add("I live in Lisbon", user_id="u")
    assert [r["memory"] for r in added["results"]] == ["User lives in Lisbon"]
    assert "degraded" not in added and len(fake.chat_requests()) == 1


@pytest.mark.parametrize("key", [None, "", "  "])
async def test_a_missing_key_is_a_configuration_error_at_once(
    tmp_path: Path, no_provider_keys: None, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """A hosted model with no key anywhere (or ``OPENAI_API_KEY=""``, which LiteLLM counts as a
    key and which failed as a NETWORK_ERROR after retries): said at once, naming the settings,
    never retried and never counted against the model's circuit breaker; the words are kept for
    reprocess."""
    from memorch.models._llm import import_litellm

    if key is not None:
        monkeypatch.setenv("OPENAI_API_KEY", key)

    import_litellm()  # its import (seconds) is not what is measured
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", llm_model="openai/gpt-4.1-mini")
    async with AsyncMemory(config) as memory:
        started = time.perf_counter()
        added = await memory.add("I live in Lisbon", user_id="u")
        elapsed = time.perf_counter() - started
        stats = await memory.stats()
    assert added["degraded"] is True and elapsed < 5.0
    assert added["reason"].startswith("[MISSING_CREDENTIALS] openai/gpt-4.1-mini needs an API key")
    assert "MEMORCH_LLM_API_KEY" in added["reason"] and "OPENAI_API_KEY" in added["reason"]
    assert stats["circuits"] == {} and stats["pending_inference"] == 1


def test_an_empty_key_of_a_server_that_needs_none_is_no_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OLLAMA_API_KEY=""`` beside a local Ollama is not a missing key (a review: the empty-key
    rule made it MISSING_CREDENTIALS); an empty ``OPENAI_API_KEY`` for OpenAI is."""
    from memorch.models._llm import import_litellm
    from memorch.models._providers import missing_keys

    litellm = import_litellm()
    monkeypatch.setenv("OLLAMA_API_KEY", "")
    monkeypatch.setenv("OPENAI_API_KEY", "")
    assert missing_keys(litellm, "ollama/llama3") == [] and missing_keys(litellm, "ollama_chat/llama3") == []
    assert missing_keys(litellm, "openai/gpt-4.1-mini") == ["OPENAI_API_KEY"]


async def test_a_rejected_key_is_not_retried(tmp_path: Path, fake: FakeLLM) -> None:
    config = fake_llm_config(tmp_path, fake, llm_max_retries=3)
    fake.fail_models["fake-model"] = Failure(401, {"error": {"message": "invalid api key", "type": "auth"}})
    async with AsyncMemory(config) as memory:
        added = await memory.add("I live in Lisbon", user_id="u")
    assert added["degraded"] is True and added["reason"].startswith("[AUTHENTICATION_ERROR]")
    assert "MEMORCH_LLM_API_KEY" in added["reason"]
    assert len(fake.chat_requests()) == 1  # one request, no retries


async def test_a_reply_with_no_choice_keeps_the_words(tmp_path: Path, fake: FakeLLM) -> None:
    """An endpoint answering 200 with ``"choices": []`` (probe and request alike): the add was an
    INTERNAL_ERROR (IndexError) and the words were lost; doctor and reprocess failed the same way
    (a newcomer's trial with a local server). Now a typed failure, the words kept as said."""
    config = fake_llm_config(tmp_path, fake)
    empty = {"id": "x", "object": "chat.completion", "created": 1, "model": "fake-model", "choices": []}
    fake.fail_models["fake-model"] = Failure(200, empty)
    async with AsyncMemory(config) as memory:
        added = await memory.add("I own a garbage boat", user_id="u")
        checks = {c["name"]: c for c in await memory.doctor()}
        listed = await memory.get_all(user_id="u")
    assert added["degraded"] is True and added["reason"].startswith("[LLM_OUTPUT_INVALID]"), added
    assert [m["memory"] for m in listed["results"]] == ["I own a garbage boat"]
    assert "INTERNAL_ERROR" not in str(checks) and checks["LLM"]["ok"] is False, checks


# -- tokens in one place ---------------------------------------------------------------------------


async def test_the_default_tokens_file_serves_without_a_setting(tmp_path: Path) -> None:
    """A token added to the default file (the user's config directory) binds HTTP callers with
    no MEMORCH_TOKENS_FILE anywhere; a MEMORCH_TOKENS_FILE that does not exist is still an error."""
    from memorch.config import default_tokens_file
    from memorch.errors import ConfigurationError
    from memorch.serve._identities import add_token, auth_options, check_tokens_file

    config = MemoryConfig(data_dir=tmp_path / "data")
    assert config.tokens_file is None and config.tokens_in_use is None and auth_options(config) == {}
    _, token = add_token(default_tokens_file(), "alice", [], [])
    assert default_tokens_file().is_relative_to(Path(os.environ["XDG_CONFIG_HOME"]))
    assert config.tokens_in_use == default_tokens_file() and check_tokens_file(config) == 1
    verifier = auth_options(config)["token_verifier"]
    assert (await verifier.verify_token(token)).subject == "alice"
    missing = MemoryConfig(data_dir=tmp_path / "data", tokens_file=tmp_path / "nope.json")
    with pytest.raises(ConfigurationError) as raised:
        check_tokens_file(missing)
    assert raised.value.error_code == "TOKENS_FILE_MISSING"


# -- a clean first run -----------------------------------------------------------------------------


async def test_a_first_run_without_an_llm_is_healthy_and_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No LLM means no relations, so no graph file: that is not a missing graph. ``doctor`` is
    all ok and a restart logs nothing at WARNING or above."""
    config = MemoryConfig(data_dir=tmp_path / "data", graph="on")
    async with AsyncMemory(config) as memory:
        await memory.add("I work as a nurse at the city hospital", user_id="newbie")
        checks = await memory.doctor()
    assert all(check["ok"] for check in checks), checks
    graph = next(check for check in checks if check["name"].startswith("graph"))
    assert "relations come from an LLM" in graph["detail"]
    caplog.set_level("WARNING")
    async with AsyncMemory(config) as again:
        found = await again.search("where does the user work?", user_id="newbie", threshold=0)
        assert found["results"]
        assert all(check["ok"] for check in await again.doctor())
    assert [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL")] == []


def test_an_empty_list_names_the_users_that_hold_memories(tmp_path: Path) -> None:
    """The README's client config writes as MEMORCH_USER_ID=me; the shell's `memorch list` reads
    user 'default' and said only "no memories" while `stats` counted them (a newcomer's trial)."""
    from typer.testing import CliRunner

    from memorch import Memory
    from memorch.cli._main import app

    data_dir = tmp_path / "data"
    with Memory(MemoryConfig(data_dir=data_dir, graph="off", user_id="me")) as memory:
        memory.add("I like tea", user_id="me", infer=False)
        memory.add("I like maps", user_id="bo", infer=False)
        memory.add("I like rain", user_id="bo", infer=False)
        assert memory.users() == [{"user_id": "bo", "memories": 2}, {"user_id": "me", "memories": 1}]
    env = {"MEMORCH_DATA_DIR": str(data_dir), "MEMORCH_GRAPH": "off", "MEMORCH_USER_ID": "default"}
    runner = CliRunner()
    for command in (["list"], ["search", "tea"]):
        shown = runner.invoke(app, command, env=env)
        assert shown.exit_code == 0 and "no memories for user_id 'default'" in shown.stdout
        assert "user_id 'bo' (2 memories), user_id 'me' (1 memory): pass --user-id" in shown.stdout
    mine = runner.invoke(app, ["list", "--user-id", "me"], env=env)
    assert "I like tea" in mine.stdout and "holds memories of" not in mine.stdout
    other = runner.invoke(app, ["search", "volcano", "--user-id", "me", "--threshold", "0.99"], env=env)
    assert "holds memories of" not in other.stdout  # the user has memories: no other user named


async def test_a_server_refusing_the_placeholder_key_says_none_is_set(
    tmp_path: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an API base and no key memorch sends a placeholder (a local server needs none); a
    server that wants one answers 401, which said "refused the credentials" of a key never set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = fake_llm_config(tmp_path, fake, llm_api_key=None)
    fake.fail_models["fake-model"] = Failure(401, {"error": {"message": "missing api key", "type": "auth"}})
    async with AsyncMemory(config) as memory:
        added = await memory.add("I live in Lisbon", user_id="u")
    assert added["degraded"] is True and added["reason"].startswith("[MISSING_CREDENTIALS]"), added["reason"]
    assert "no MEMORCH_LLM_API_KEY is set" in added["reason"] and "placeholder" in added["reason"]
    assert fake.chat_requests()[-1].authorization == "Bearer memorch-no-key"
