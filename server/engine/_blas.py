"""numpy's BLAS on one thread in memorch's process.

numpy's bundled OpenBLAS starts a thread per core and, after each matrix product, keeps those
threads spinning for a while in case another follows. A search's products are small (the query
against a held scope, the related-words cosines), so the spinning threads bought nothing and took
the cores from the LanceDB BM25 query and the onnxruntime embedding that run beside them: on
LongMemEval scopes (two cores, index idle) the BM25 query took 12.0 ms instead of 6.4 ms and the
search 18.4 ms instead of 11.9 ms (docs/search.md "Related words"). So BLAS is limited to one
thread once per process, when the first memory opens, with ``threadpoolctl`` (OpenBLAS reads its
environment variables when numpy loads, which may be before memorch is imported). A program that
needs more BLAS threads for its own work can raise them again with ``threadpoolctl`` after
opening a memory.
"""

from __future__ import annotations

import functools


@functools.cache
def one_blas_thread() -> None:
    """Limit the BLAS libraries loaded in this process to one thread (once)."""
    import numpy  # noqa: F401 - loads its BLAS, so the limit reaches it
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
