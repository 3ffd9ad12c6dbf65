"""Where model calls run (``server/engine/_workers.py``): daemon threads, at most
``MODEL_THREADS`` at once, each slot taken on the caller's loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

import memorch.engine._workers as workers_module
from memorch.engine._workers import Workers


async def test_a_caller_cancelled_while_it_waits_for_a_slot_starts_no_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A review: with the slots taken in the threads, a call whose caller had given up still ran
    once a slot came free (a request to the model nobody would read)."""
    monkeypatch.setattr(workers_module, "MODEL_THREADS", 1)
    workers = Workers()
    release = threading.Event()
    ran: list[str] = []

    def call(name: str) -> str:
        ran.append(name)
        release.wait(10)
        return name

    first = asyncio.ensure_future(workers.model(call, "first"))
    await asyncio.sleep(0.1)
    waiting = asyncio.ensure_future(workers.model(call, "second"))
    await asyncio.sleep(0.1)
    waiting.cancel()
    release.set()
    assert await first == "first"
    third = await workers.model(call, "third")  # the slot came back
    await asyncio.sleep(0.1)
    assert third == "third" and ran == ["first", "third"] and waiting.cancelled()
    workers.close()


async def test_a_model_call_raising_stopiteration_reaches_its_caller() -> None:
    """asyncio refuses a StopIteration in a future: the caller would have waited for ever."""
    workers = Workers()

    def stops() -> None:
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration"):
        await asyncio.wait_for(workers.model(stops), 10)
    workers.close()
