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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="memorch-loop", daemon=True)
        self._thread.start()
        self.async_memory = AsyncMemory(config, **overrides)
        self.config = self.async_memory.config
        # A Memory dropped without ``close`` is closed when it is collected (its loop thread, the
        # stores' threads and files would stay for the life of the process), with a
        # ResourceWarning, as Python does for a file left open. Not at exit: nothing to free then,
        # and an acknowledged write is already in the ledger.
        self._finalizer = weakref.finalize(self, _close_abandoned, self._loop, self._thread, self.async_memory)
        self._finalizer.atexit = False

    @classmethod
    def from_config(cls, config: dict[str, Any] | MemoryConfig) -> Memory:
        return cls(config if isinstance(config, MemoryConfig) else MemoryConfig.from_mapping(config))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of ``self.async_memory`` (or one that awaits it) on this Memory's loop
        and wait for its result: for async helpers that have no sync twin."""
        if threading.current_thread() is self._thread:
            # Waiting here for the loop this very thread runs would never return.
            coro.close()
            raise ValidationError(
                "a Memory method was called from memorch's own event-loop thread",
                error_code="WRONG_THREAD",
                suggestion="inside async code (callbacks included), use AsyncMemory and await it",
            )
        if not self._loop.is_running():  # closed: the call would wait for ever on a stopped loop
            coro.close()
            raise closed_error()
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        except concurrent.futures.CancelledError:  # still running when the memory closed (``close``)
            raise closed_error() from None

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
        self._finalizer.detach()
        if self._loop.is_running():
            self.run_sync(self.async_memory.close())
            # A call another thread made before the close and still waiting on the loop (its read
            # finished; its next step was refused, or awaits nothing more) ends now, as CLOSED:
            # once the loop stops it would never be resumed, and its caller would wait for ever.
            self.run_sync(_end_other_calls())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _end_other_calls() -> None:
    """Cancel every task on this loop but the caller's, and wait until each has ended."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _close_abandoned(loop: asyncio.AbstractEventLoop, thread: threading.Thread, memory: AsyncMemory) -> None:
    """Close a collected Memory that was never closed (``Memory.__init__``)."""
    warnings.warn(
        "a memorch Memory was never closed; close it, or use `with Memory(...) as m:`",
        ResourceWarning,
        stacklevel=2,
    )
    if not loop.is_running():
        return
    closing = asyncio.run_coroutine_threadsafe(memory.close(), loop)
    if threading.current_thread() is thread:  # collected on its own loop's thread: cannot wait there
        loop.call_soon_threadsafe(loop.stop)
        return
    closing.result(timeout=60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not thread.is_alive():
        loop.close()
