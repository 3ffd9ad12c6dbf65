"""The library surface: ``Memory`` mirrors ``AsyncMemory`` exactly, typed, without copied logic."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from memorch import AsyncMemory, Memory, MemoryError
from memorch.errors import ValidationError

REPO = Path(__file__).resolve().parents[1]

PUBLIC = sorted(
    name
    for name, member in inspect.getmembers(AsyncMemory, inspect.iscoroutinefunction)
    if not name.startswith("_") and name not in {"add_verbatim", "write"}
)


def test_the_public_names_are_listed_for_completion() -> None:
    """A newcomer's trial: `dir(memorch)` listed neither Memory nor AsyncMemory (imported lazily)."""
    import memorch

    assert set(memorch.__all__) <= set(dir(memorch))


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

        memory._runner.loop.call_soon_threadsafe(from_loop)
        assert done.wait(10), "the call from the loop thread hung"
        assert isinstance(outcome[0], ValidationError) and outcome[0].error_code == "WRONG_THREAD"


def test_a_closed_memory_refuses_every_call_at_once(tmp_path: Path) -> None:
    """After close (or a ``with`` block), a call is CLOSED: the sync facade waited for ever on its
    stopped loop, and AsyncMemory's calls failed as LEDGER_ERROR ("check the data directory") or
    reopened the ledger and answered (a newcomer's trial)."""
    with Memory(data_dir=tmp_path / "sync") as memory:
        memory.add("before", user_id="a", infer=False)
    for call in (lambda: memory.add("after", user_id="a"), lambda: memory.get_all(user_id="a"), memory.stats):
        with pytest.raises(ValidationError) as refused:
            call()
        assert refused.value.error_code == "CLOSED" and refused.value.suggestion
    memory.close()  # closing again is fine

    async def run() -> None:
        amemory = AsyncMemory(data_dir=tmp_path / "async")
        await amemory.add("before", user_id="a", infer=False)
        await amemory.close()
        calls = (
            amemory.add("after", user_id="a"),
            amemory.get_all(user_id="a"),
            amemory.search("before", user_id="a"),
            amemory.stats(),
            amemory.export_memories(tmp_path / "out.jsonl"),
            amemory.flush_graph(),
            amemory.reprocess(),
            amemory.flush_inference(),
        )
        for call in calls:
            with pytest.raises(ValidationError) as refused:
                await call
            assert refused.value.error_code == "CLOSED"
        assert not amemory.engine.components.opened  # nothing reopened the stores
        await amemory.close()

    asyncio.run(run())
    with Memory(data_dir=tmp_path / "async") as again:  # nothing was written after the close
        assert [m["memory"] for m in again.get_all(user_id="a")["results"]] == ["before"]


def _slow_searches(monkeypatch: pytest.MonkeyPatch, in_ledger: bool) -> threading.Event:
    """Each search ranks a second longer or (``in_ledger``) reads its candidates' texts from the
    ledger a second later; the event is set when one has started."""
    import time

    import memorch.retrieval._search as search_module
    from memorch.storage.ledger_core import LedgerCore

    started = threading.Event()
    rank, read = search_module.hybrid_search, LedgerCore.texts

    def slow_rank(*args: object, **kwargs: object) -> object:
        started.set()
        time.sleep(1.0)
        return rank(*args, **kwargs)  # type: ignore[arg-type]

    def slow_read(self: LedgerCore, ids: list[str]) -> dict[str, str]:
        started.set()
        time.sleep(1.0)
        return read(self, ids)

    if in_ledger:
        monkeypatch.setattr(LedgerCore, "texts", slow_read)
    else:
        monkeypatch.setattr(search_module, "hybrid_search", slow_rank)
    return started


def test_closing_while_another_thread_searches_ends_that_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync search running in another thread when ``close`` is called finishes (or is CLOSED):
    its thread waited for ever on the stopped loop (a newcomer's trial)."""
    memory = Memory(data_dir=tmp_path, graph="off")
    memory.add("I like tea", user_id="u", infer=False)
    started = _slow_searches(monkeypatch, in_ledger=False)
    outcome: list[object] = []

    def search() -> None:
        try:
            outcome.append([r["memory"] for r in memory.search("tea", user_id="u")["results"]])
        except MemoryError as exc:
            outcome.append(exc.error_code)

    caller = threading.Thread(target=search, daemon=True)
    caller.start()
    assert started.wait(30)
    memory.close()
    caller.join(timeout=30)
    assert not caller.is_alive() and outcome in ([["I like tea"]], ["CLOSED"])


def test_closing_while_a_task_searches_lets_it_finish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An AsyncMemory search running when ``close`` is awaited answers or is CLOSED: the stores
    closed under it and it failed as LEDGER_ERROR ("check that the data directory is writable")."""

    async def run() -> object:
        memory = AsyncMemory(data_dir=tmp_path, graph="off")
        await memory.add("I like tea", user_id="u", infer=False)
        started = _slow_searches(monkeypatch, in_ledger=True)
        task = asyncio.create_task(memory.search("tea", user_id="u"))
        await asyncio.to_thread(started.wait, 30)
        await memory.close()
        try:
            return [r["memory"] for r in (await task)["results"]]
        except MemoryError as exc:
            return exc.error_code

    assert asyncio.run(run()) in (["I like tea"], "CLOSED")


@pytest.mark.parametrize("name", PUBLIC)
def test_each_sync_method_belongs_to_the_facade(name: str) -> None:
    # What help(), tracebacks and IDEs show: the facade's method, with the async one's docstring.
    method = getattr(Memory, name)
    assert method.__module__ == "memorch.api._memory" and method.__qualname__ == f"Memory.{name}"
    if name != "close":  # the facade's own: it also stops the loop thread
        assert method.__doc__ == getattr(AsyncMemory, name).__doc__


CALLER = """
from memorch import Memory

memory = Memory()
reveal_type(memory.add("I like tea", user_id="u"))
reveal_type(memory.search("tea", user_id="u", limit=3))
reveal_type(memory.flush_graph())
memory.search("tea", user="u")
memory.get(42)
"""


def test_a_type_checker_sees_the_sync_signatures_and_result_types(tmp_path: Path) -> None:
    """mypy, run on a caller of ``Memory``, sees each method's parameters and its result type
    (not ``Any``, not an awaitable): what a forwarding loop (setattr) would hide."""
    package = tmp_path / "typed" / "memorch"  # the source tree as it installs (pyproject package-dir)
    package.mkdir(parents=True)
    for source in (REPO / "server").iterdir():
        (package / source.name).symlink_to(source)
    for sub in ("storage", "tools"):
        (package / sub).symlink_to(REPO / sub)
    caller = tmp_path / "caller.py"
    caller.write_text(CALLER)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            # memorch's own annotations decide these types: third-party packages (numpy, pydantic,
            # LiteLLM...) analysed as well took ~30 s on a loaded machine for the same output.
            "--no-site-packages",
            str(caller),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(package.parent)},
        timeout=300,
    )
    lines = run.stdout.splitlines()
    revealed = [line.split("Revealed type is ", 1)[1] for line in lines if "Revealed type is" in line]
    assert len(revealed) == 3, run.stdout + run.stderr
    assert revealed[0].startswith("\"TypedDict({'results': list[TypedDict({'id': str, 'memory': str, 'event'")
    assert revealed[1].startswith("\"TypedDict({'results': list[TypedDict({'id': str, 'memory': str, 'hash'")
    assert revealed[2] == '"int"'
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 2, run.stdout
    assert 'Unexpected keyword argument "user"' in errors[0]
    assert 'incompatible type "int"; expected "str"' in errors[1]


def test_a_memory_dropped_without_close_is_closed_with_a_warning(tmp_path: Path) -> None:
    """Each Memory never closed kept its loop thread, the stores' threads and open files for the
    life of the process, silently (83 threads and 150 files after 20 of them: a trial). Now it is
    closed when collected, with a ResourceWarning, and what it wrote is there."""
    import gc

    before = {thread.ident for thread in threading.enumerate()}
    with pytest.warns(ResourceWarning, match="never closed"):
        for i in range(3):
            memory = Memory(data_dir=tmp_path / str(i), graph="off")
            memory.add(f"fact {i}", user_id="u", infer=False)
            del memory
            gc.collect()
    loops = [t for t in threading.enumerate() if t.ident not in before and t.name == "memorch-loop"]
    for loop in loops:  # the collector does not wait for the close: the loop stops once it is done
        loop.join(timeout=30)
    assert not any(loop.is_alive() for loop in loops)
    with Memory(data_dir=tmp_path / "2", graph="off") as again:
        assert [m["memory"] for m in again.get_all(user_id="u")["results"]] == ["fact 2"]


def test_closing_ends_a_call_still_waiting_on_a_model_as_closed(tmp_path: Path) -> None:
    """A sync call waiting on a model thread (an inferring add) when ``close`` is called: its
    caller gets CLOSED at once, not after the model (or never: the stopped loop would not resume
    it); and two threads closing at once both return."""
    import time

    memory = Memory(data_dir=tmp_path, graph="off")

    async def slow_model_call() -> None:
        await memory.async_memory.engine.workers.model(time.sleep, 20)

    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(memory.run_sync(slow_model_call()))
        except MemoryError as exc:
            outcome.append(exc.error_code)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    time.sleep(0.3)
    closers = [threading.Thread(target=memory.close) for _ in range(2)]
    started = time.monotonic()
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(timeout=30)
    caller.join(timeout=5)
    assert not any(c.is_alive() for c in closers) and not caller.is_alive()
    assert outcome == ["CLOSED"] and time.monotonic() - started < 15
