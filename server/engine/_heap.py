"""Python's full garbage collections kept short in memorch's process.

A full collection (the oldest generation) walks every object the collector tracks. Once a
memory has searched, the process holds ~127,000 of them (the modules of LanceDB, pydantic, the
MCP SDK, the tokenizer, the calibration), and a full collection took 65-80 ms on two cores: a
search that ran into one took ~90 ms instead of 10-20 (``bench/longmemeval.py``, LongMemEval
scopes: one search in 12 to 24, which set the p95). Those objects live as long as the process,
so after its first search (when they are loaded) they are collected once and frozen
(``gc.freeze``: moved to a generation no collection walks). Objects made later are collected as
before; whatever the process had at that moment and frees later in a cycle stays (the first
memory's objects, once). Measured (``bench/search_outliers.py``, 24 LongMemEval scopes, 2 cores,
two runs each way): the longest of 120 searches 70.8 and 81.7 ms without the freeze, with full
collections of 60-89 ms beside them, and 21.4 and 15.1 ms with it (none over 20 ms); p50 about
the same (10.3 / 9.4 and 9.8 / 8.8 ms). The one collection before the freeze costs the
process's first search ~70 ms.
"""

from __future__ import annotations

import functools
import gc


@functools.cache
def freeze_loaded() -> None:
    """Collect once, then freeze what is left (once per process; the caller has just searched)."""
    gc.collect()
    gc.freeze()
