"""A server process keeps glibc's heap from fragmenting: two arenas however many threads
allocate, and blocks from 1 MB up mapped on their own however large a block freed before
(``memorch.serve._app.steady_heap``; the soak's RSS figures are in docs/reliability.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "tuned":
    from memorch.serve._app import steady_heap
    steady_heap()
def work():  # 5000 rounds made 7-9 arenas untuned here (20000: 9, and three times as long)
    for _ in range(5000):
        del [bytearray(256) for _ in range(50)][:]
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def arenas(mode: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_server_process_allocates_from_two_arenas() -> None:
    assert arenas("plain") > 2  # eight threads allocating at once: glibc adds arenas
    assert arenas("tuned") <= 2
    assert arenas("tuned", MALLOC_ARENA_MAX="1") == 1  # the environment's own setting wins


MAPPED_PROBE = """
import ctypes, sys
if sys.argv[1] == "tuned":
    from memorch.serve._app import steady_heap
    steady_heap()
names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in names]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
libc.free(libc.malloc(8 << 20))  # a large block, mapped and freed: glibc's own threshold rises to 8 MB
before = libc.mallinfo2().hblks
block = libc.malloc(2 << 20)
print(libc.mallinfo2().hblks - before)  # 1: the 2 MB block is mapped on its own; 0: it is in the heap
libc.free(block)
"""


def mapped(mode: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", MAPPED_PROBE, mode], env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_server_process_maps_large_blocks_however_large_one_freed_before() -> None:
    assert mapped("plain") == 0  # glibc's moving threshold: the 2 MB block comes from the heap
    assert mapped("tuned") == 1
