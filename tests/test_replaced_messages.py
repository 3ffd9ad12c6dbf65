"""A message that background inference replaced by its facts, as an assistant meets it again
(a newcomer's trial, 2026-12-07): the add answered with the message's id and "an id's history
shows the outcome", but over MCP ``memory_history`` dropped every event's ``reason``, and
``get_memory`` on the id said "deleted: bring it back with restore_memory", which stored the fact
a second time. Now the history carries the reason everywhere, and a get points to the facts.
Also: a get of a purged id says it was purged, as ``restore`` does."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from typer.testing import CliRunner

from memorch import AsyncMemory
from memorch.cli._main import app
from memorch.errors import MemoryNotFoundError
from memorch.serve._app import build_server

from .conftest import fake_llm_config
from .fake_llm import FakeLLM

SAID = "I just adopted a beagle called Rufus"
FACT = "User has a beagle named Rufus"


async def test_a_replaced_message_points_to_its_facts_on_every_surface(tmp_path: Path, fake: FakeLLM) -> None:
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    fake.push({"memory": [{"event": "ADD", "text": FACT}]})
    async with AsyncMemory(config) as memory:
        message = (await memory.add(SAID, user_id="u"))["results"][0]["id"]
        await memory.flush_inference()
        [fact] = (await memory.get_all(user_id="u"))["results"]
        outcome = f"replaced by what inference made of it: ADD {fact['id']}"

    async with Client(build_server(config)) as client:
        history = (await client.call_tool("memory_history", {"memory_id": message, "user_id": "u"})).structured_content
        assert [(e["event"], e.get("reason")) for e in history["events"]] == [("ADD", None), ("DELETE", outcome)]
        got = await client.call_tool("get_memory", {"memory_id": message, "user_id": "u"})
        said = got.content[0].text
        assert got.is_error and said.startswith("[MEMORY_NOT_FOUND]") and fact["id"] in said
        assert "get_memory" in said and "restore_memory" not in said.split("Suggestion:")[1]

    env = {"MEMORCH_DATA_DIR": str(config.data_dir), "MEMORCH_GRAPH": "off", "COLUMNS": "200"}
    shown = CliRunner().invoke(app, ["history", message, "--user-id", "u"], env=env)
    assert shown.exit_code == 0 and outcome in shown.stdout


async def test_a_get_of_a_purged_memory_says_it_was_purged(tmp_path: Path, fake: FakeLLM) -> None:
    async with AsyncMemory(fake_llm_config(tmp_path, fake)) as memory:
        gone = (await memory.add("My PIN is 4242", user_id="u", infer=False))["results"][0]["id"]
        await memory.delete(gone, purge=True)
        async with Client(build_server(memory.config)) as client:
            got = await client.call_tool("get_memory", {"memory_id": gone, "user_id": "u"})
    assert got.is_error and got.content[0].text.startswith("[MEMORY_PURGED]")


async def test_a_message_inference_found_nothing_in_may_be_restored(tmp_path: Path, fake: FakeLLM) -> None:
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    fake.push({"memory": []})
    async with AsyncMemory(config) as memory:
        message = (await memory.add("hmm, ok", user_id="u"))["results"][0]["id"]
        await memory.flush_inference()
        with pytest.raises(MemoryNotFoundError) as gone:
            await memory.get(message, user_id="u")
    assert "found nothing worth remembering" in gone.value.message
    assert gone.value.suggestion.startswith("restore it with restore() only if")
