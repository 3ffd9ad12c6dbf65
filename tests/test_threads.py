"""numpy's BLAS runs on one thread once a memory is open (``server/engine/_blas.py``): its
spinning threads took the cores from the BM25 query beside a search's matrix products."""

from __future__ import annotations

from threadpoolctl import threadpool_info

from memorch import AsyncMemory, MemoryConfig


async def test_opening_a_memory_leaves_numpys_blas_one_thread(config: MemoryConfig) -> None:
    async with AsyncMemory(config) as memory:
        await memory.add("I play the cello on Sundays", user_id="u", infer=False)
        found = await memory.search("cello", user_id="u")
    assert found["results"]
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)
