"""Keeping the derived indexes in step with the ledger, off the request path: ``Debounced``
runs a drain of owed work a moment after the last write, so a burst of writes shares one.

- The Kuzu graph checkpoints on every close (30-100 ms once relations exist, holding the GIL)
  and memorch opens it per operation so two processes can share a data directory; graph writes
  wait ``graph_flush_delay``. Searches read relations from the ledger (same data), and graph
  reads call ``flush`` first.
- The vector index: ``index_flush_delay`` (1 s), see ``Store.index_owed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from memorch.errors import StorageError

log = logging.getLogger("memorch.graph")


class Debounced:
    def __init__(self, drain: Callable[[], int], delay: float, what: str) -> None:
        self._drain = drain  # applies the work the ledger owes (``Store.drain_graph``, ``Store.index_owed``)
        self.delay = delay
        self.what = what
        self.lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def schedule(self) -> None:
        """Drain soon (one pending drain at a time); after ``close``, nothing (a write finishing
        while its memory closes leaves its work owed in the ledger, for the next start)."""
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self.delay)
        await self.flush_quietly()

    async def flush(self) -> int:
        """Apply the owed work now; raises on failure."""
        async with self.lock:
            return await asyncio.to_thread(self._drain)

    async def flush_quietly(self) -> None:
        try:
            await self.flush()
        except StorageError:
            # The work stays in the ledger's outbox (pending_index in stats) and is retried by
            # the next write, flush or start.
            log.warning("%s update deferred; it stays queued", self.what, exc_info=True)

    async def close(self, flush: bool = True) -> None:
        """No drain after this; ``flush``: the owed work is applied now (not when nothing was
        opened: there is nothing to apply)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the debounced drain: flushed right here instead
        if flush:
            await self.flush_quietly()
