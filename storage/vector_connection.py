"""The LanceDB connection an index reads and writes through, and how its caches stay small.

LanceDB's caches (index pages, manifests, file metadata) belong to a connection's session. They
fill with the entries of the versions maintenance replaces, which are never read again, so a
long-running server grew until they were full; ``holds_mostly_replaced`` tells the index when to
start a new connection (``LanceVectorIndex._drop_replaced_from_caches``), and
``release_free_memory`` hands what the old caches held back to the system.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

# LanceDB's per-connection caches (index pages, manifests and file metadata). They fill with
# the entries of versions maintenance has replaced, never read again, so a server grows until
# they are full: the library's defaults (several GB) are far too large, and 256/64 MB still grew
# a soak by ~25 MB per 1,000 operations. These bounds keep search at 100k rows as fast as before
# (bench/scale.py, README "Scale"): the replaced versions' entries are the least recently used.
INDEX_CACHE_BYTES = 128 * 1024 * 1024
METADATA_CACHE_BYTES = 16 * 1024 * 1024
# When the caches hold this many times the table's data (and at least the minimum), most of what
# they hold belongs to replaced versions: ``_drop_replaced_from_caches``.
CACHE_RENEW_FACTOR = 2
CACHE_RENEW_MIN_BYTES = 24 * 1024 * 1024


class CachedConnection:
    """A LanceDB connection with caches of its own; ``open`` starts a new one."""

    def __init__(self, uri: str, read_consistency_interval: timedelta | None) -> None:
        self._uri, self._interval = uri, read_consistency_interval
        self.open()

    def open(self) -> None:
        import lancedb

        self.session: Any = lancedb.Session(
            index_cache_size_bytes=INDEX_CACHE_BYTES, metadata_cache_size_bytes=METADATA_CACHE_BYTES
        )
        self.db: Any = lancedb.connect(self._uri, read_consistency_interval=self._interval, session=self.session)

    def holds_mostly_replaced(self, table_bytes: int) -> bool:
        """True once the caches hold more than ``CACHE_RENEW_FACTOR`` times the table's data
        (and ``CACHE_RENEW_MIN_BYTES``): most of it then belongs to replaced versions."""
        return bool(self.session.size_bytes > max(CACHE_RENEW_MIN_BYTES, CACHE_RENEW_FACTOR * table_bytes))


def release_free_memory() -> None:
    """Return the free pages in the middle of glibc's heap to the system (``malloc_trim``; it
    gives back only the top by itself); elsewhere nothing. Called after a cache renewal, not on
    a timer: trimming every 5 s under 50 concurrent clients cut throughput from 46 to 13
    requests/s (the pages are faulted back in at once)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc; musl's libc has no malloc_trim
    except (OSError, AttributeError):
        return
