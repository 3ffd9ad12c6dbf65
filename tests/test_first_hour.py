"""A newcomer's first hour over MCP (issue 28): a tool list light enough for every conversation,
only the capabilities the server has, hits without empty or internal fields, honest empty
searches, deletions that say what they removed, and a verbatim add that keeps the user's words.

Real client sessions against the real server, real stores in a temporary directory, no LLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from memorch import AsyncMemory, MemoryConfig
from memorch.serve._app import build_server

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
        with pytest.raises(MCPError, match="(?i)method not found"):
            await client.list_resources()
        with pytest.raises(MCPError, match="(?i)method not found"):
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
        assert nothing_stored.structured_content == {"results": []}  # nothing to fall below


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
