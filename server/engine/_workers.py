"""Where blocking work runs, so that nothing waits behind what it does not need.

- reads (search, list, get, history): the default thread pool;
- writes: one writer thread. Writes serialize on the store's lock anyway; queued on one thread
  they wait as queued calls, not as pool threads blocked on a lock that searches would need;
- model calls (seconds each): a pool of their own, so a slow LLM holds neither the writer nor
  the readers.

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

T = TypeVar("T")
MODEL_THREADS = 16  # concurrent model calls (each mostly waits on the network)


class Workers:
    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memorch-write")
        self._models = ThreadPoolExecutor(max_workers=MODEL_THREADS, thread_name_prefix="memorch-model")
        self._reads = 0
        self._idle = threading.Condition()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        call = _Read(self)
        try:
            return await asyncio.to_thread(call.run, fn, *args)
        except asyncio.CancelledError:
            if not call.started:  # the pool never ran it: nothing else gives its count back
                call.done()
            raise

    def wait_for_reads(self, timeout: float) -> bool:
        """Block until no read runs (at most ``timeout`` seconds); whether none does."""
        with self._idle:
            return self._idle.wait_for(lambda: self._reads == 0, timeout)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, functools.partial(fn, *args))

    async def model(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._models, functools.partial(fn, *args))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._models.shutdown(wait=False, cancel_futures=True)


class _Read:
    """One read's place in ``Workers``' count, given back once."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.started = False
        self._counted = True
        with workers._idle:
            workers._reads += 1

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        self.started = True
        try:
            return fn(*args)
        finally:
            self.done()

    def done(self) -> None:
        with self.workers._idle:
            if self._counted:
                self._counted = False
                self.workers._reads -= 1
                self.workers._idle.notify_all()
