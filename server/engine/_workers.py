"""Where blocking work runs, so that nothing waits behind what it does not need.

- reads (search, list, get, history): the default thread pool;
- writes: one writer thread. Writes serialize on the store's lock anyway; queued on one thread
  they wait as queued calls, not as pool threads blocked on a lock that searches would need;
- model calls (seconds each): threads of their own, so a slow LLM holds neither the writer nor
  the readers. They are daemon threads: a model call touches no store, and one the caller gave up
  on (MEMORCH_LLM_ADD_TIMEOUT) must not keep a finished process alive until its request ends (a
  newcomer's trial: `memorch add` printed its answer, then exited 18 s later). A pool's threads
  are joined at the interpreter's exit.

Reads are counted while they run, so that closing waits for the ones already running before the
stores close under them (``Engine.close``): a search running when ``close`` was called failed with
"Cannot operate on a closed database" as a ``LEDGER_ERROR`` (check the disk), and the sync
facade's caller waited for ever on the stopped loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from memorch.engine._components import closed_error

T = TypeVar("T")
MODEL_THREADS = 16  # concurrent model calls (each mostly waits on the network)


class Workers:
    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memorch-write")
        self._model_slots = asyncio.Semaphore(MODEL_THREADS)
        self._stopped = False  # after ``close``: no model call starts
        self._reads = 0
        self._closing = False
        self._idle = threading.Condition()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._counted, fn, *args)

    def _counted(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` on a pool thread, counted from its start (counted there, a read the pool never
        ran cannot leave its count behind); once closing, refused."""
        with self._idle:
            if self._closing:
                raise closed_error()
            self._reads += 1
        try:
            return fn(*args)
        finally:
            with self._idle:
                self._reads -= 1
                self._idle.notify_all()

    def wait_for_reads(self, timeout: float) -> bool:
        """Refuse new reads, and block until none runs (at most ``timeout`` seconds); whether
        none does."""
        with self._idle:
            self._closing = True
            return self._idle.wait_for(lambda: self._reads == 0, timeout)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, functools.partial(fn, *args))

    async def model(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` on a daemon thread of its own, once one of ``MODEL_THREADS`` slots is free. The
        slot is taken here, on the loop: a caller cancelled while it waits never starts a call,
        and a waiting call holds no thread."""
        if self._stopped:
            raise closed_error()
        await self._model_slots.acquire()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        started = False
        try:
            threading.Thread(
                target=self._model_call, args=(loop, answer, fn, *args), name="memorch-model", daemon=True
            ).start()
            started = True
        finally:
            if not started:  # no thread will hand the slot back ("can't start new thread")
                self._model_slots.release()
        return await answer

    def _model_call(
        self, loop: asyncio.AbstractEventLoop, answer: asyncio.Future[T], fn: Callable[..., T], *args: Any
    ) -> None:
        """Run ``fn`` and hand its outcome, and the slot, back to the caller's loop."""
        try:
            outcome: tuple[T | None, BaseException | None] = (fn(*args), None)
        except BaseException as exc:  # noqa: BLE001, RUF100 - handed to the awaiting caller, which raises it
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(self._settle, answer, *outcome)
        except RuntimeError:  # the loop closed: nobody waits for this answer, or for the slot
            return

    def _settle(self, answer: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
        self._model_slots.release()
        if answer.cancelled():  # the caller gave up (MEMORCH_LLM_ADD_TIMEOUT): the reply is dropped
            return
        if isinstance(error, StopIteration):  # a future cannot carry one (asyncio refuses it)
            error = RuntimeError(f"a model call raised StopIteration: {error!r}")
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)  # type: ignore[arg-type]

    def close(self) -> None:
        self._stopped = True
        self._writer.shutdown(wait=True)
