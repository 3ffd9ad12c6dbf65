"""The library surface: ``Memory`` mirrors ``AsyncMemory`` exactly, typed, without copied logic."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest

from memorch import AsyncMemory, Memory, MemoryError
from memorch.errors import ValidationError

PUBLIC = sorted(
    name
    for name, member in inspect.getmembers(AsyncMemory, inspect.iscoroutinefunction)
    if not name.startswith("_") and name not in {"add_verbatim", "write"}
)


def test_every_async_operation_has_a_sync_twin_with_the_same_signature() -> None:
    assert "flush_graph" in PUBLIC and "search" in PUBLIC
    for name in PUBLIC:
        sync_method = getattr(Memory, name, None)
        assert sync_method is not None, f"Memory.{name} is missing"
        async_sig = inspect.signature(getattr(AsyncMemory, name), eval_str=True)
        assert inspect.signature(sync_method, eval_str=True) == async_sig, name


def test_sync_methods_return_the_async_results(tmp_path: Path) -> None:
    with Memory(data_dir=tmp_path, graph="off") as memory:
        added = memory.add("I am allergic to peanuts", user_id="alice")
        memory_id = added["results"][0]["id"]
        assert memory.get(memory_id)["memory"] == "I am allergic to peanuts"
        found = memory.search("what should I not eat?", user_id="alice", threshold=0)
        assert found["results"][0]["id"] == memory_id
        assert memory.flush_graph() == 0


def test_calling_from_the_loop_thread_is_refused_not_a_deadlock(tmp_path: Path) -> None:
    with Memory(data_dir=tmp_path, graph="off") as memory:
        outcome: list[BaseException | object] = []
        done = threading.Event()

        def from_loop() -> None:
            try:
                outcome.append(memory.get_all(user_id="u"))
            except MemoryError as exc:
                outcome.append(exc)
            done.set()

        memory._loop.call_soon_threadsafe(from_loop)
        assert done.wait(10), "the call from the loop thread hung"
        assert isinstance(outcome[0], ValidationError) and outcome[0].error_code == "WRONG_THREAD"


@pytest.mark.parametrize("name", PUBLIC)
def test_each_sync_method_is_written_out(name: str) -> None:
    # A forwarding loop (setattr) would hide the signature from type checkers; a written method
    # lives in memorch.sync's source.
    assert getattr(Memory, name).__module__ == "memorch.sync"
    assert getattr(Memory, name).__qualname__ == f"Memory.{name}"
