"""``Memory``: the synchronous facade. It runs one ``AsyncMemory`` on a private event-loop
thread and forwards each call there, so the logic exists once (in the async core).

Each method is ``_forward(AsyncMemory.method)``: typed with a ``ParamSpec``, so type checkers see
the async method's parameters and its result type without the ``Awaitable`` (mem0-shaped dicts,
typed in ``memorch.results``), and ``functools.wraps`` gives IDEs, ``help()`` and
``inspect.signature`` the same signature and docstring. Nothing is written twice
(``tests/test_library.py`` type-checks a caller with mypy).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import warnings
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from memorch.api._async_memory import AsyncMemory
from memorch.config import MemoryConfig
from memorch.engine._components import closed_error
from memorch.errors import ValidationError

T = TypeVar("T")
P = ParamSpec("P")


def _forward(
    method: Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Memory, P], T]:
    """``Memory.<name>``: run ``AsyncMemory.<name>`` on the Memory's loop and wait for it."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Memory, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run_sync(getattr(self.async_memory, name)(*args, **kwargs))

    call.__module__ = __name__
    call.__qualname__ = f"Memory.{name}"
    return call


class Memory:
    """Blocking API with the same methods and arguments as ``AsyncMemory``."""

    def __init__(self, config: MemoryConfig | None = None, **overrides: Any) -> None:
        # The memory first: a bad configuration then leaves no loop thread behind.
        self.async_memory = AsyncMemory(config, **overrides)
        self.config = self.async_memory.config
        self._runner = _LoopThread()
        # A Memory dropped without ``close`` is closed when it is collected (its loop thread, the
        # stores' threads and files would stay for the life of the process), with a
        # ResourceWarning, as Python does for a file left open. Not at exit: nothing to free then,
        # and an acknowledged write is already in the ledger.
        self._finalizer = weakref.finalize(self, _close_abandoned, self._runner, self.async_memory)
        self._finalizer.atexit = False

    @classmethod
    def from_config(cls, config: dict[str, Any] | MemoryConfig) -> Memory:
        return cls(config if isinstance(config, MemoryConfig) else MemoryConfig.from_mapping(config))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of ``self.async_memory`` (or one that awaits it) on this Memory's loop
        and wait for its result: for async helpers that have no sync twin."""
        return self._runner.run(coro)

    # -- memories ---------------------------------------------------------------------------

    add = _forward(AsyncMemory.add)
    get = _forward(AsyncMemory.get)
    get_all = _forward(AsyncMemory.get_all)
    search = _forward(AsyncMemory.search)
    history = _forward(AsyncMemory.history)
    update = _forward(AsyncMemory.update)
    delete = _forward(AsyncMemory.delete)
    restore = _forward(AsyncMemory.restore)
    delete_all = _forward(AsyncMemory.delete_all)

    # -- the whole store --------------------------------------------------------------------

    reset = _forward(AsyncMemory.reset)
    stats = _forward(AsyncMemory.stats)
    users = _forward(AsyncMemory.users)
    graph = _forward(AsyncMemory.graph)
    flush_graph = _forward(AsyncMemory.flush_graph)
    import_memories = _forward(AsyncMemory.import_memories)
    export_memories = _forward(AsyncMemory.export_memories)
    doctor = _forward(AsyncMemory.doctor)
    reprocess = _forward(AsyncMemory.reprocess)
    flush_inference = _forward(AsyncMemory.flush_inference)
    reindex = _forward(AsyncMemory.reindex)
    maintain = _forward(AsyncMemory.maintain)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the memory and stop its loop; from several threads at once, each returns once
        it is closed."""
        self._finalizer.detach()
        self._runner.close(self.async_memory, wait=True)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LoopThread:
    """The event loop a ``Memory`` runs its ``AsyncMemory`` on, in a thread of its own, and the
    calls waiting on it. Once closing, a call is refused (``CLOSED``); one already submitted ends
    with its result or as ``CLOSED`` (a two-step call whose first step was running when the
    stores closed would otherwise wait for ever on the stopped loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="memorch-loop", daemon=True)
        self._lock = threading.Lock()
        self._closing = False
        self._waiting: set[concurrent.futures.Future[Any]] = set()
        self.thread.start()

    def _serve(self) -> None:
        self.loop.run_forever()
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            # Waiting here for the loop this very thread runs would never return.
            coro.close()
            raise ValidationError(
                "a Memory method was called from memorch's own event-loop thread",
                error_code="WRONG_THREAD",
                suggestion="inside async code (callbacks included), use AsyncMemory and await it",
            )
        with self._lock:  # checked and submitted at once: a close cannot come in between
            if self._closing:
                coro.close()
                raise closed_error()
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
            self._waiting.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._closing:  # ended by ``close``
                raise closed_error() from None
            raise
        finally:
            with self._lock:
                self._waiting.discard(future)

    def close(self, memory: AsyncMemory, wait: bool) -> None:
        """Close ``memory`` on the loop, end the calls still on it, then stop the loop; ``wait``:
        until that is done (a second caller waits for the first's close)."""
        closing: concurrent.futures.Future[None] | None = None
        with self._lock:
            if not self._closing:  # the first caller closes; a second one waits for it
                self._closing = True
                closing = asyncio.run_coroutine_threadsafe(_close_and_end_calls(memory), self.loop)
                closing.add_done_callback(lambda _: self.stop())
        if not wait or threading.current_thread() is self.thread:
            return
        try:
            if closing is not None:
                closing.result()
        finally:
            self.thread.join(timeout=30)
            with self._lock:  # anything the loop never ran (it stopped first) ends as CLOSED too
                for future in self._waiting:
                    future.cancel()

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)


async def _close_and_end_calls(memory: AsyncMemory) -> None:
    """Close ``memory``, then cancel every other task on this loop and wait until each has ended."""
    try:
        await memory.close()
    finally:
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def _close_abandoned(runner: _LoopThread, memory: AsyncMemory) -> None:
    """Close a collected Memory that was never closed (``Memory.__init__``), without waiting:
    whichever thread collected it (its own loop's, or one its close would wait for) goes on."""
    try:
        runner.close(memory, wait=False)
    finally:
        # (No caller's line to point at: the collector runs wherever the last reference went.)
        warnings.warn(
            "a memorch Memory was never closed; close it, or use `with Memory(...) as m:`",
            ResourceWarning,
            stacklevel=1,
        )
