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
        self._model_slots = threading.BoundedSemaphore(MODEL_THREADS)
        self._stopped = False  # after ``close``: a model call still waiting for a slot is refused
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
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        call = functools.partial(self._model_call, loop, answer, fn, *args)
        threading.Thread(target=call, name="memorch-model", daemon=True).start()
        return await answer

    def _model_call(
        self, loop: asyncio.AbstractEventLoop, answer: asyncio.Future[T], fn: Callable[..., T], *args: Any
    ) -> None:
        """``fn`` once one of the MODEL_THREADS slots is free (a call still waiting for one when
        the workers close is refused), its outcome handed to the caller's loop."""
        with self._model_slots:
            try:
                if self._stopped:
                    raise closed_error()
                outcome: tuple[T | None, BaseException | None] = (fn(*args), None)
            except BaseException as exc:  # noqa: BLE001, RUF100 - handed to the awaiting caller, which raises it
                outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(_settle, answer, *outcome)
        except RuntimeError:  # the loop closed: nobody waits for this answer any more
            return

    def close(self) -> None:
        self._stopped = True
        self._writer.shutdown(wait=True)


def _settle(answer: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if answer.cancelled():
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result)  # type: ignore[arg-type]
