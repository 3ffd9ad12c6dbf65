"""Background inference, dry runs and explained decisions (issue 11, parts 3 and 4).

The model is the fake OpenAI-compatible server behind LiteLLM's real HTTP path; a scripted delay
stands for a slow model. The stores are real, in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig

from .conftest import fake_llm_config
from .fake_llm import Delay, Failure, FakeLLM, Request
from .mcp_helpers import memorch_command, server_env

SAID = "I just adopted a beagle called Rufus"
FACT = "User has a beagle named Rufus"


def facts(*texts: str) -> dict:
    return {"memory": [{"event": "ADD", "text": t} for t in texts]}


def background_config(tmp_path: Path, fake: FakeLLM, **overrides: object) -> MemoryConfig:
    return fake_llm_config(tmp_path, fake, background_inference="on", **overrides)


@pytest.fixture
async def memory(tmp_path: Path, fake: FakeLLM) -> AsyncIterator[AsyncMemory]:
    instance = AsyncMemory(background_config(tmp_path, fake))
    yield instance
    await instance.close()


async def texts(memory: AsyncMemory, query: str, user: str = "u") -> list[str]:
    return [r["memory"] for r in (await memory.search(query, user_id=user, limit=10, threshold=0))["results"]]


async def test_add_acknowledges_before_the_model_answers(memory: AsyncMemory, fake: FakeLLM) -> None:
    # Load the embedder and the secret detector, and open the stores (the vector index too: its
    # first write imports LanceDB under the store's lock, seconds on a loaded machine), before timing.
    await memory.add("warm up", user_id="warm", infer=False)
    await memory.engine.index_sync.flush()
    fake.push(Delay(5.0, facts(FACT)))
    started = time.perf_counter()
    result = await memory.add(SAID, user_id="u")
    acknowledged = time.perf_counter() - started
    assert acknowledged < 3.5, acknowledged  # the model takes 5 s (a loaded machine is slow)
    assert result["pending"] is True and "background" in result["reason"]
    [event] = result["results"]
    assert event["event"] == "ADD" and event["memory"] == SAID and "background" in event["reason"]
    pending_id = event["id"]

    # Searchable at once, marked as waiting.
    assert await texts(memory, "what pet does the user have?") == [SAID]
    stored = await memory.get(pending_id)
    assert stored["metadata"]["_memorch"]["pending_inference"] is True

    outcome = await memory.flush_inference()
    assert outcome == {"pending_inference": 0, "last_error": None}
    assert await texts(memory, "what pet does the user have?") == [FACT]  # the facts replaced the message
    history = await memory.history(pending_id)
    assert [(e["event"], e["old_memory"]) for e in history] == [("ADD", None), ("DELETE", SAID)]
    [fact] = (await memory.get_all(user_id="u"))["results"]
    assert history[1]["reason"] == f"replaced by what inference made of it: ADD {fact['id']}"
    assert len(fake.chat_requests()) == 1  # one model call, never repeated


async def test_a_conversation_is_inferred_in_one_call_with_roles_and_dates(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(facts("User moved to Porto in March 2026"))
    conversation = [
        {"role": "user", "content": "We finally moved!", "timestamp": "2026-03-02"},
        {"role": "assistant", "content": "Congratulations, where to?"},
        {"role": "user", "content": "To Porto, near the river", "timestamp": "2026-03-02"},
    ]
    result = await memory.add(conversation, user_id="u")
    assert [r["memory"] for r in result["results"]] == [m["content"] for m in conversation]
    await memory.flush_inference()
    [request] = fake.chat_requests()
    prompt = request.prompt
    # One call saw the whole exchange in order, with who said what and when.
    assert prompt.index("[2026-03-02] user: We finally moved!") < prompt.index("assistant: Congratulations")
    assert prompt.index("assistant: Congratulations") < prompt.index("user: To Porto, near the river")
    listed = (await memory.get_all(user_id="u"))["results"]
    assert [r["memory"] for r in listed] == ["User moved to Porto in March 2026"]


async def test_search_never_returns_a_message_and_its_facts_together(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(Delay(0.3, facts(FACT)))
    await memory.add(SAID, user_id="u")
    seen: list[list[str]] = []
    worker = asyncio.ensure_future(memory.flush_inference())
    while not worker.done():
        seen.append(await texts(memory, "beagle Rufus"))
    await worker
    seen.append(await texts(memory, "beagle Rufus"))
    assert all(not (SAID in found and FACT in found) for found in seen), seen
    assert seen[-1] == [FACT]


async def test_a_failing_model_leaves_the_work_pending_until_it_answers(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(Failure(401, body={"error": {"message": "bad key", "type": "invalid_request_error"}}))
    result = await memory.add(SAID, user_id="u")
    outcome = await memory.flush_inference()
    assert outcome["pending_inference"] == 1 and "AUTHENTICATION" in outcome["last_error"]
    assert await texts(memory, "beagle") == [SAID]  # nothing lost while the model fails
    # An add meanwhile says the model is failing, not that its facts come "shortly" (a trial).
    fake.push(Failure(401, body={"error": {"message": "bad key", "type": "invalid_request_error"}}))
    meanwhile = (await memory.add("I also have a cat", user_id="u"))["results"][0]["reason"]
    assert meanwhile.startswith("stored as said; the model's facts replace it once the model answers (its last")
    assert "AUTHENTICATION" in meanwhile
    await memory.flush_inference()

    fake.push(facts(FACT), facts("User has a cat"))
    assert (await memory.flush_inference())["pending_inference"] == 0
    assert await texts(memory, "beagle") == [FACT]
    assert [e["event"] for e in await memory.history(result["results"][0]["id"])] == ["ADD", "DELETE"]


async def test_a_model_without_its_key_is_said_at_the_add_not_retried_in_the_background(
    tmp_path: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hosted model with no key anywhere (no setting, no provider variable) cannot answer, and
    waiting cannot mend it: the add stores the text as said, marked pending, and says why with
    the code; setting the key and reprocessing extracts the facts. No request reaches a model."""
    from memorch.models._llm import import_litellm

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    import_litellm()  # as `memorch serve` does at launch (an add never waits for the import)
    config = background_config(tmp_path, fake, llm_api_base=None, llm_api_key=None)
    async with AsyncMemory(config) as memory:
        result = await memory.add(SAID, user_id="u")
        assert result["degraded"] is True and "pending" not in result
        assert "MISSING_CREDENTIALS" in result["reason"] and "OPENAI_API_KEY" in result["reason"]
        assert await texts(memory, "beagle") == [SAID]  # stored and searchable
        assert fake.requests == []
    fake.push(facts(FACT))
    async with AsyncMemory(background_config(tmp_path, fake)) as memory:  # the key is set now
        assert (await memory.reprocess())["remaining"] == 0
        assert await texts(memory, "beagle") == [FACT]


async def test_an_add_before_litellm_loaded_meets_the_missing_key_once_in_the_background(
    tmp_path: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An add in a server's first seconds, while LiteLLM still loads, cannot check the key and is
    deferred; the worker's first try finds the key missing, says so once and stops: no retries
    every few seconds (the process's settings cannot gain a key), the text kept as said."""
    from memorch.models._llm import LLMClient

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(LLMClient, "missing_credentials", lambda self: None)  # LiteLLM still loading
    config = background_config(tmp_path, fake, llm_api_base=None, llm_api_key=None)
    async with AsyncMemory(config) as memory:
        assert (await memory.add(SAID, user_id="u"))["pending"] is True
        backlog = await memory.flush_inference()
        assert backlog["pending_inference"] == 1 and "MISSING_CREDENTIALS" in backlog["last_error"]
        await memory.add("I also have a cat", user_id="u")  # its kick finds the worker stopped
        await memory.background.idle()
        assert (await memory.stats())["pending_inference"] == 2
        assert sorted(await texts(memory, "pets")) == sorted([SAID, "I also have a cat"])
        said = [r.getMessage() for r in caplog.records if r.name == "memorch.pending"]
        assert len(said) == 1 and "stopped" in said[0] and "retrying" not in said[0], said
        # Asked for, it tries again (a library may have set the key meanwhile): once more, no retries.
        assert (await memory.flush_inference())["pending_inference"] == 2
        assert len([r for r in caplog.records if r.name == "memorch.pending"]) == 2
    assert fake.requests == []


async def test_fallbacks_all_without_keys_stop_the_worker_too(
    tmp_path: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With fallbacks, no model having its key fails as ALL_MODELS_FAILED, not as the missing key
    itself: the worker asks each model and stops all the same."""
    from memorch.models._llm import LLMClient, import_litellm

    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    import_litellm()
    real = LLMClient.missing_credentials
    calls: list[int] = []

    def first_unknown(self: LLMClient) -> object:  # the add's check: LiteLLM still loading
        calls.append(1)
        return None if len(calls) == 1 else real(self)

    monkeypatch.setattr(LLMClient, "missing_credentials", first_unknown)
    config = background_config(
        tmp_path, fake, llm_api_base=None, llm_api_key=None, llm_fallbacks=["anthropic/claude-3-5-haiku-latest"]
    )
    async with AsyncMemory(config) as memory:
        assert (await memory.add(SAID, user_id="u"))["pending"] is True
        await memory.background.idle()
        assert memory.background.last_error is not None and "MISSING_CREDENTIALS" in memory.background.last_error
        assert (await memory.stats())["pending_inference"] == 1
    said = [r.getMessage() for r in caplog.records if r.name == "memorch.pending"]
    assert len(said) == 1 and "stopped" in said[0] and "retrying" not in said[0], said
    assert fake.requests == []


async def test_a_message_edited_during_the_model_call_is_inferred_again(memory: AsyncMemory, fake: FakeLLM) -> None:
    answered: list[Request] = []

    def responder(request: Request) -> dict:
        answered.append(request)
        time.sleep(0.5)  # the user edits the message while the model thinks
        return facts("User has a dog" if "Rufus" in request.prompt else "User has a cat named Tom")

    fake.responder = responder
    pending_id = (await memory.add(SAID, user_id="u"))["results"][0]["id"]
    await asyncio.sleep(0.1)
    await memory.update(pending_id, "I just adopted a cat called Tom", user_id="u")
    await memory.flush_inference()
    assert len(answered) == 2  # the first answer was about text that no longer exists
    assert await texts(memory, "what pet?") == ["User has a cat named Tom"]


async def test_work_left_by_a_killed_server_resumes_on_the_next_start(tmp_path: Path, fake: FakeLLM) -> None:
    """SIGKILL after the acknowledgement, while the model is still answering."""
    config = background_config(tmp_path, fake)
    fake.push(Delay(30, facts("never used")))  # the killed process's call
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from memorch import AsyncMemory, MemoryConfig
        async def main():
            memory = AsyncMemory(MemoryConfig.model_validate_json(sys.argv[1]))
            result = await memory.add({SAID!r}, user_id="u")
            print(result["results"][0]["id"], flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, config.model_dump_json()], stdout=subprocess.PIPE, text=True
    )
    pending_id = child.stdout.readline().strip()  # acknowledged
    deadline = time.monotonic() + 90  # the child imports LiteLLM first (seconds on a busy machine)
    while not fake.chat_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.chat_requests(), "the background call never started"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    fake.push(facts(FACT))
    memory = AsyncMemory(config)
    try:
        assert await texts(memory, "beagle") == [SAID]  # acknowledged, so present
        memory.resume_background()
        await memory.flush_inference()
        assert await texts(memory, "beagle") == [FACT]
        assert [e["event"] for e in await memory.history(pending_id)] == ["ADD", "DELETE"]
        assert len((await memory.get_all(user_id="u"))["results"]) == 1  # no double results
    finally:
        await memory.close()


# -- dry runs and reasons ---------------------------------------------------------------------


def ledger_bytes(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in data_dir.glob("*.db*")}


async def test_dry_run_calls_the_model_once_and_writes_nothing(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(fake_llm_config(tmp_path, fake))  # waiting mode, as the library
    try:
        fake.push(facts("Dana works at Acme", "Dana has a cat"))
        ids = {r["memory"]: r["id"] for r in (await memory.add("I'm Dana, at Acme, cat owner", user_id="d"))["results"]}
        before_stats, before_files = await memory.stats(), ledger_bytes(tmp_path / "data")
        fake.responder = lambda request: {
            "memory": [
                {
                    "event": "UPDATE",
                    "id": _number(request.prompt, "Dana works at Acme"),
                    "text": "Dana works at Globex",
                },
                {"event": "DELETE", "id": _number(request.prompt, "Dana has a cat"), "reason": "the cat moved out"},
                {"event": "ADD", "text": "Dana plays the cello"},
            ]
        }
        plan = await memory.add(
            "I moved to Globex, gave the cat to my sister, and I play cello", user_id="d", dry_run=True
        )
        assert plan["dry_run"] is True and len(fake.chat_requests()) == 2
        by_event = {r["event"]: r for r in plan["results"]}
        assert by_event["UPDATE"]["id"] == ids["Dana works at Acme"]
        assert by_event["UPDATE"]["previous_memory"] == "Dana works at Acme"
        assert by_event["DELETE"] == {
            "id": ids["Dana has a cat"],
            "memory": "Dana has a cat",
            "event": "DELETE",
            "reason": "the cat moved out (dry run: nothing was written)",
        }
        assert by_event["ADD"]["memory"] == "Dana plays the cello" and by_event["ADD"]["reason"]
        # Nothing changed: counts, the ledger's bytes, the search index, the history.
        assert await memory.stats() == before_stats
        assert ledger_bytes(tmp_path / "data") == before_files
        assert sorted(await texts(memory, "Dana", user="d")) == ["Dana has a cat", "Dana works at Acme"]
        assert [e["event"] for e in await memory.history(ids["Dana has a cat"])] == ["ADD"]
    finally:
        await memory.close()


async def test_dry_run_without_inference_and_in_background_mode(memory: AsyncMemory, fake: FakeLLM) -> None:
    await memory.add("I like tea", user_id="u", infer=False)
    plan = await memory.add(
        [{"role": "user", "content": "I like tea"}, {"role": "user", "content": "and jazz"}],
        user_id="u",
        infer=False,
        dry_run=True,
    )
    assert [(r["event"], r["reason"]) for r in plan["results"]] == [
        ("NONE", "the same text is already stored (dry run: nothing was written)"),
        ("ADD", "would be stored as said (dry run: nothing was written)"),
    ]
    assert await texts(memory, "jazz") == ["I like tea"]
    # Background mode: a dry run still waits for the model (it is the answer) and writes nothing.
    fake.push(facts("User likes jazz"))
    plan = await memory.add("I love jazz", user_id="u", dry_run=True)
    assert plan["dry_run"] is True and "pending" not in plan
    assert [r["memory"] for r in plan["results"]] == ["User likes jazz"]
    assert plan["results"][0]["reason"].endswith("(dry run: nothing was written)")  # with the model too
    assert (await memory.stats())["memories"] == 1
    with pytest.raises(Exception) as caught:
        await memory.add("x", user_id="u", dry_run="yes")
    assert getattr(caught.value, "error_code", None) == "INVALID_ARGUMENT"


def _number(prompt: str, text: str) -> int:
    block = prompt.split("EXISTING MEMORIES:\n")[1].split("\n\n")[0]
    return next(int(line.split(":")[0]) for line in block.splitlines() if line.endswith(text))


# -- through MCP ------------------------------------------------------------------------------


async def test_mcp_add_memory_background_and_dry_run_over_stdio(tmp_path: Path, fake: FakeLLM) -> None:
    """`memorch serve` acknowledges before the model answers by default."""
    from mcp import Client, StdioServerParameters

    env = server_env(
        tmp_path / "data",
        MEMORCH_LLM_MODEL="openai/fake-model",
        MEMORCH_LLM_API_BASE=fake.url,
        MEMORCH_LLM_API_KEY="test-key",
    )
    command = memorch_command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=env)
    async with Client(params, mode="legacy") as client:
        await client.call_tool("search_memories", {"query": "warm up"})  # loads the embedder and stores
        # The model takes 6 s; the add answers well before. (The server imports LiteLLM on a thread
        # from its start, which shares the interpreter with this add on a loaded machine.)
        fake.push(Delay(6.0, facts(FACT)))
        started = time.perf_counter()
        added = await client.call_tool("add_memory", {"text": SAID})
        assert time.perf_counter() - started < 4.0
        assert not added.is_error and added.structured_content["pending"] is True
        pending_id = added.structured_content["results"][0]["id"]
        found = await client.call_tool("search_memories", {"query": "beagle", "threshold": 0})
        assert [r["memory"] for r in found.structured_content["results"]] == [SAID]

        deadline = time.monotonic() + 90  # the server imports LiteLLM on its first model call
        while time.monotonic() < deadline:
            history = await client.call_tool("memory_history", {"memory_id": pending_id})
            if len(history.structured_content["events"]) == 2:
                break
            await asyncio.sleep(0.2)
        assert [e["event"] for e in history.structured_content["events"]] == ["ADD", "DELETE"]
        found = await client.call_tool("search_memories", {"query": "beagle", "threshold": 0})
        assert [r["memory"] for r in found.structured_content["results"]] == [FACT]

        fake.push(facts("User also has a parrot"))
        plan = await client.call_tool("add_memory", {"text": "I have a parrot too", "dry_run": True})
        assert plan.structured_content["dry_run"] is True
        assert plan.structured_content["results"][0]["memory"] == "User also has a parrot"
        listed = await client.call_tool("list_memories", {})
        assert [r["memory"] for r in listed.structured_content["results"]] == [FACT]


async def test_a_fact_in_the_very_words_of_its_message_is_kept(memory: AsyncMemory, fake: FakeLLM) -> None:
    """The message and the fact have one text: the fact must not be taken for a repeat of the
    message it replaces (found by the crash suite's author through reprocess)."""
    fake.push(facts("Dana lives in Lima"))
    message = (await memory.add("Dana lives in Lima", user_id="u"))["results"][0]["id"]
    await memory.flush_inference()
    [kept] = (await memory.get_all(user_id="u"))["results"]
    # No mark of pending inference: only the message it was made from (a purge takes it along).
    assert kept["memory"] == "Dana lives in Lima" and kept["metadata"] == {"_memorch": {"from": [message]}}
