"""Where blocking work runs, so that nothing waits behind what it does not need.

- reads (search, list, get, history): the default thread pool;
- writes: one writer thread. Writes serialize on the store's lock anyway; queued on one thread
  they wait as queued calls, not as pool threads blocked on a lock that searches would need;
- model calls (seconds each): a pool of their own, so a slow LLM holds neither the writer nor
  the readers.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
MODEL_THREADS = 16  # concurrent model calls (each mostly waits on the network)


class Workers:
    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memorch-write")
        self._models = ThreadPoolExecutor(max_workers=MODEL_THREADS, thread_name_prefix="memorch-model")

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, functools.partial(fn, *args))

    async def model(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._models, functools.partial(fn, *args))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._models.shutdown(wait=False, cancel_futures=True)
