"""Kuzu in a child process, so that a crash of the engine cannot take memorch down with it.

Kuzu 0.11 does not always fail with an exception: on a full disk it corrupts its heap and the
process aborts (`free(): invalid pointer`, exit 134) or segfaults, in whatever command touched the
graph: `memorch stats`, a search that flushed queued graph work, the MCP server itself. No
Python code can catch that. So every graph operation runs in one long-lived child process per
graph that holds the ``KuzuGraph``; its engine errors come back as the same typed errors, and
when the child dies the caller gets ``GRAPH_ERROR`` and the next call starts a new child. The
ledger keeps the graph work queued until a drain succeeds, so nothing is lost.

The protocol is pickled ``(method, args)`` requests and ``(status, value)`` replies, each
prefixed by its length, over the child's stdin and stdout. The child exits when its stdin
closes (the parent closed it, or died). Its stderr (where an aborting engine writes) goes to
a temporary file that the parent logs when the child dies; it never reaches the user's terminal.
"""

from __future__ import annotations

import logging
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any

from memorch.errors import MemoryError, StorageError

log = logging.getLogger("memorch.graph")

_HEADER = struct.Struct("!Q")
# What a child may be asked to run: the ``KuzuGraph`` methods, nothing else.
METHODS = frozenset({"apply", "wipe", "neighbourhood", "snapshot", "counts"})
CRASH_HINT = (
    "check free disk space in MEMORCH_DATA_DIR; run `memorch reindex` to rebuild the graph "
    "from the ledger (queued graph work is kept and retried)"
)


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # our own child process, over its private pipes


class GraphProcess:
    """A ``KuzuGraph`` (same methods) whose engine runs in a child process."""

    def __init__(self, path: Path, lock_path: Path, read_only: bool = False) -> None:
        from filelock import FileLock

        self.path = path
        self.read_only = read_only
        self._spec = (str(path), str(lock_path), read_only)
        self._file_lock = None if read_only else FileLock(str(lock_path), timeout=60)
        self._guard = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the child is gone
        child = subprocess.Popen(
            [sys.executable, "-m", "memorch.storage.graph_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert child.stdin is not None
        _send(child.stdin, self._spec)
        return child

    def _call(self, method: str, *args: Any) -> Any:
        with self._guard:
            if self._child is None or self._child.poll() is not None:
                self._child = self._start()
            child = self._child
            assert child.stdin is not None and child.stdout is not None
            try:
                _send(child.stdin, (method, args))
                status, value = _receive(child.stdout)
            except (EOFError, OSError) as exc:
                raise self._died(method) from exc
        if status == "ok":
            return value
        if status == "error":
            raise value
        raise RuntimeError(f"the graph process failed in {method}: {value}")  # a bug: reported as such

    def _died(self, method: str) -> StorageError:
        assert self._child is not None
        try:
            code = self._child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._child.kill()
            code = self._child.wait()
        detail = b""
        if self._stderr is not None:
            self._stderr.seek(0)
            detail = self._stderr.read()[-2000:]
            self._stderr.close()
        self._child = self._stderr = None
        log.warning("the graph engine stopped (exit %s) during %s: %s", code, method, detail.decode(errors="replace"))
        return StorageError(
            f"the graph engine stopped (exit code {code}) during {method}; memorch itself is unaffected",
            error_code="GRAPH_ERROR",
            details={"exit_code": code, "operation": method},
            suggestion=CRASH_HINT,
        )

    def __getattr__(self, name: str) -> Any:
        if name in METHODS:
            return lambda *args: self._call(name, *args)
        raise AttributeError(name)

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the graph's cross-process lock (no engine needed: see ``KuzuGraph.exclusive``)."""
        from memorch.storage.graph import held

        return held(nullcontext() if self._file_lock is None else self._file_lock)

    def close(self) -> None:
        with self._guard:
            child, self._child = self._child, None
            if child is not None:
                assert child.stdin is not None
                child.stdin.close()  # the child's loop ends at end of input
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child's loop: one ``KuzuGraph``, requests until end of input."""
    from memorch.storage.graph import KuzuGraph

    path, lock_path, read_only = _receive(inp)
    graph = KuzuGraph(Path(path), Path(lock_path), read_only=read_only)
    while True:
        try:
            method, args = _receive(inp)
        except EOFError:
            return
        if method not in METHODS:
            _send(out, ("bug", f"unknown method {method!r}"))
            continue
        try:
            _send(out, ("ok", getattr(graph, method)(*args)))
        except MemoryError as exc:  # typed engine errors travel as they are
            _send(out, ("error", exc))
        except Exception as exc:  # noqa: BLE001, RUF100 - a bug, not a guess: the parent raises it as a bug, with this text
            log.exception("graph process: %s failed", method)
            _send(out, ("bug", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":  # pragma: no cover - run by GraphProcess
    serve(sys.stdin.buffer, sys.stdout.buffer)
