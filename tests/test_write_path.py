"""The write path: no write waits for a model; a plan made on a stale view is re-checked."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memorch import AsyncMemory

from .fake_llm import Delay, FakeLLM
from .test_inference import add, llm_config

MODEL_SECONDS = 6.0  # long enough to tell "waited for the model" from a loaded machine


@pytest.fixture
async def memory(tmp_path: Path, fake: FakeLLM) -> AsyncIterator[AsyncMemory]:
    instance = AsyncMemory(llm_config(tmp_path, fake, graph="off", llm_timeout=30))
    # Warm up: the first model call imports LiteLLM (seconds of CPU), which is not what is measured.
    fake.push(add("Warm-up fact"))
    await instance.add("warm up", user_id="warm-up")
    yield instance
    await instance.close()


async def model_call_started(fake: FakeLLM, count: int) -> None:
    """Wait until the fake model has received its ``count``-th chat request (it is answering)."""
    deadline = time.monotonic() + 30
    while len(fake.chat_requests()) < count:
        assert time.monotonic() < deadline, "the model was never called"
        await asyncio.sleep(0.02)


async def test_writes_complete_during_a_slow_model_call(memory: AsyncMemory, fake: FakeLLM) -> None:
    # Another user's memory: not a candidate of the add below, so no re-plan is involved.
    existing = (await memory.add("I live in Berlin", user_id="v", infer=False))["results"][0]["id"]
    fake.push(Delay(MODEL_SECONDS, add("Dana plays the cello")))
    inferring = asyncio.create_task(memory.add("I play the cello", user_id="u"))
    await model_call_started(fake, 2)
    started = time.monotonic()
    verbatim = await memory.add("I drink green tea", user_id="u", infer=False)
    updated = await memory.update(existing, "I live in Hamburg")
    found = await memory.search("tea", user_id="u", threshold=0)
    elapsed = time.monotonic() - started
    assert not inferring.done(), "the model call should still be running"
    assert verbatim["results"][0]["event"] == "ADD" and updated["event"] == "UPDATE"
    assert found["results"][0]["memory"] == "I drink green tea"
    # Had they waited for the model, they would have finished after it (and after ~6 s).
    assert elapsed < MODEL_SECONDS - 1, f"writes waited {elapsed:.2f} s for the model"
    result = await inferring
    assert [e["memory"] for e in result["results"]] == ["Dana plays the cello"]


async def test_a_candidate_changed_during_the_call_is_planned_again(memory: AsyncMemory, fake: FakeLLM) -> None:
    target = (await memory.add("Dana lives in Berlin", user_id="u", infer=False))["results"][0]["id"]
    update_first = {"memory": [{"event": "UPDATE", "id": 0, "text": "Dana lives in Munich"}]}
    update_again = {"memory": [{"event": "UPDATE", "id": 0, "text": "Dana lives in Munich now"}]}
    fake.push(Delay(1.0, update_first), update_again)
    inferring = asyncio.create_task(memory.add("I moved to Munich", user_id="u"))
    await model_call_started(fake, 2)
    await memory.update(target, "Dana lives in Hamburg", user_id="u")  # edits what the model is looking at
    result = await inferring
    assert len(fake.chat_requests()) == 3  # the stale plan was not applied; a second one was made
    assert "Dana lives in Hamburg" in fake.chat_requests()[2].prompt
    events = [e["event"] for e in (await memory.history(target))]
    assert events == ["ADD", "UPDATE", "UPDATE"]
    assert result["results"][0]["previous_memory"] == "Dana lives in Hamburg"


async def test_a_stale_view_twice_never_destroys(memory: AsyncMemory, fake: FakeLLM) -> None:
    target = (await memory.add("Dana lives in Berlin", user_id="u", infer=False))["results"][0]["id"]
    delete = {"memory": [{"event": "DELETE", "id": 0}, {"event": "UPDATE", "id": 0, "text": "Dana left Berlin"}]}
    fake.push(Delay(1.0, delete), Delay(1.0, delete))
    inferring = asyncio.create_task(memory.add("I left Berlin", user_id="u"))
    await model_call_started(fake, 2)
    await memory.update(target, "Dana lives in Berlin-Mitte", user_id="u")
    await model_call_started(fake, 3)
    await memory.update(target, "Dana lives in Berlin-Pankow", user_id="u")
    result = await inferring
    assert (await memory.get(target))["memory"] == "Dana lives in Berlin-Pankow"  # not deleted, not overwritten
    assert [e["event"] for e in result["results"]] == ["ADD"]  # the new text is kept as a new memory
    assert result["results"][0]["memory"] == "Dana left Berlin"


async def test_a_verbatim_add_crosses_to_the_workers_once_to_prepare_and_once_to_commit(tmp_path: Path) -> None:
    """Redaction, embedding and the nearest-memory lookup share one reader hop (beside other
    writes); the plan and the commit one writer hop. A read crosses once."""
    memory = AsyncMemory(data_dir=tmp_path, graph="off")
    hops: list[str] = []
    read, write = memory.engine.workers.read, memory.engine.workers.write

    async def counted_read(fn, *args):  # type: ignore[no-untyped-def]
        hops.append("read")
        return await read(fn, *args)

    async def counted_write(fn, *args):  # type: ignore[no-untyped-def]
        hops.append("write")
        return await write(fn, *args)

    memory.engine.workers.read, memory.engine.workers.write = counted_read, counted_write  # type: ignore[method-assign]
    try:
        body = hashlib.sha256(b"a key body").hexdigest() * 2  # random-looking, as real keys are
        added = await memory.add(f"my password is hunter2, key sk-ant-api03-{body[:93]}AA", user_id="u", infer=False)
        assert hops == ["read", "write"]
        assert added["redacted"] and "sk-ant" not in added["results"][0]["memory"]
        hops.clear()
        await memory.get(added["results"][0]["id"])
        assert hops == ["read"]
    finally:
        await memory.close()
