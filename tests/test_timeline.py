"""What was true when (as_of) and answers within a token budget (max_tokens)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mcp import Client

from memorch import AsyncMemory, MemoryConfig
from memorch.errors import ValidationError
from memorch.serve._app import build_server


async def moment() -> str:
    await asyncio.sleep(0.01)  # history timestamps have microseconds; keep the steps apart
    now = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    return now


async def test_a_scripted_timeline(amem: AsyncMemory) -> None:
    before_anything = await moment()
    city = (await amem.add("I live in Berlin", user_id="u"))["results"][0]["id"]
    pet = (await amem.add("I have a cat named Tom", user_id="u"))["results"][0]["id"]
    t1 = await moment()
    await amem.update(city, "I live in Hamburg")
    await amem.delete(pet)
    job = (await amem.add("I work as a nurse", user_id="u"))["results"][0]["id"]
    t2 = await moment()

    def texts(result: dict) -> dict[str, tuple[str, bool]]:
        return {r["id"]: (r["memory"], r["current"]) for r in result["results"]}

    assert (await amem.get_all(user_id="u", as_of=before_anything))["results"] == []
    assert texts(await amem.get_all(user_id="u", as_of=t1)) == {
        city: ("I live in Berlin", False),  # since updated
        pet: ("I have a cat named Tom", False),  # since deleted
    }
    assert texts(await amem.get_all(user_id="u", as_of=t2)) == {
        city: ("I live in Hamburg", True),
        job: ("I work as a nurse", True),
    }
    then = await amem.search("where did I live?", user_id="u", as_of=t1, threshold=0)
    assert then["results"][0]["id"] == city and then["results"][0]["memory"] == "I live in Berlin"
    assert (await amem.search("pets", user_id="u", as_of=t1, threshold=0, limit=1))["results"][0]["id"] == pet
    now = await amem.search("pets", user_id="u", as_of=t2, threshold=0)
    assert pet not in {r["id"] for r in now["results"]}
    assert (await amem.get_all(user_id="someone-else", as_of=t2))["results"] == []  # scope holds in the past too
    day = t2[:10]  # a date means the end of that day
    assert set(texts(await amem.get_all(user_id="u", as_of=day))) == {city, job}
    with pytest.raises(ValidationError) as bad:
        await amem.get_all(user_id="u", as_of="last tuesday")
    assert bad.value.error_code == "INVALID_AS_OF"


async def test_max_tokens_keeps_the_best_that_fit(amem: AsyncMemory) -> None:
    for text in ["I am allergic to peanuts", "Peanut butter makes me ill " * 10, "I avoid peanuts at parties"]:
        await amem.add(text, user_id="u")
    everything = await amem.search("peanuts", user_id="u", threshold=0)
    assert len(everything["results"]) == 3 and "omitted" not in everything
    first = everything["results"][0]["memory"]
    budget = -(-len(first) // 4)  # exactly the first result's estimate
    fitted = await amem.search("peanuts", user_id="u", threshold=0, max_tokens=budget)
    assert [r["memory"] for r in fitted["results"]] == [first] and fitted["omitted"] == 2
    listed = await amem.get_all(user_id="u", max_tokens=1)
    assert listed["results"] == [] and listed["omitted"] == 3
    with pytest.raises(ValidationError):
        await amem.search("peanuts", user_id="u", max_tokens=0)


async def test_as_of_and_max_tokens_over_mcp(tmp_path: Path) -> None:
    async with Client(build_server(MemoryConfig(data_dir=tmp_path, graph="off"))) as client:
        added = await client.call_tool("add_memory", {"text": "My flight is on Monday"})
        memory_id = added.structured_content["results"][0]["id"]
        t1 = await moment()
        await client.call_tool("update_memory", {"memory_id": memory_id, "text": "My flight is on Tuesday"})
        then = await client.call_tool("list_memories", {"as_of": t1})
        assert then.structured_content["results"][0]["memory"] == "My flight is on Monday"
        assert then.structured_content["results"][0]["current"] is False
        found = await client.call_tool("search_memories", {"query": "flight", "as_of": t1, "max_tokens": 100})
        assert found.structured_content["results"][0]["memory"] == "My flight is on Monday"
        assert found.structured_content["omitted"] == 0
