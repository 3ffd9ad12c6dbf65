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

from memorch.engine._components import closed_error

T = TypeVar("T")
MODEL_THREADS = 16  # concurrent model calls (each mostly waits on the network)


class Workers:
    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memorch-write")
        self._models = ThreadPoolExecutor(max_workers=MODEL_THREADS, thread_name_prefix="memorch-model")
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
        return await asyncio.get_running_loop().run_in_executor(self._models, functools.partial(fn, *args))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._models.shutdown(wait=False, cancel_futures=True)
