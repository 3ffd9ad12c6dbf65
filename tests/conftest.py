"""Shared fixtures: real stores in temporary directories, no MEMORCH_* from the outside."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 set. The CLI's consoles are made when
# its modules are imported, and rich then keeps that width, so a test could not ask for another
# one (tests/test_cli.py renders at 80 and 120 columns). A real terminal has neither variable set.
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)

from memorch import AsyncMemory, Memory, MemoryConfig  # noqa: E402

from .fake_llm import FakeLLM  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _shared_bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The processes tests start (``memorch serve``, the CLI, replicas) share one cache of compiled
    modules. Where the environment forbids writing it (``PYTHONDONTWRITEBYTECODE``), each compiled
    LiteLLM, the OpenAI SDK and LanceDB from source again, about half of its time (a recipe's
    `memorch add` 21-24 s instead of 12-13 s), which no user's second run does. This process read
    the variable when it started, and keeps to it."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        yield
        return
    patch = pytest.MonkeyPatch()
    patch.delenv("PYTHONDONTWRITEBYTECODE")
    patch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("pycache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.startswith("MEMORCH_"):
            monkeypatch.delenv(key)
    # The user's config directory holds the default tokens file: never this machine's own.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))


@pytest.fixture
def config(tmp_path: Path) -> MemoryConfig:
    return MemoryConfig(data_dir=tmp_path / "data", graph="off")


@pytest.fixture
async def amem(config: MemoryConfig) -> AsyncIterator[AsyncMemory]:
    memory = AsyncMemory(config)
    yield memory
    await memory.close()


@pytest.fixture
def mem(config: MemoryConfig) -> Iterator[Memory]:
    with Memory(config) as memory:
        yield memory


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    """The scripted OpenAI-compatible server on 127.0.0.1."""
    server = FakeLLM().start()
    yield server
    server.stop()


def fake_llm_config(tmp_path: Path, fake: FakeLLM, **overrides: object) -> MemoryConfig:
    """A config whose LLM is ``fake`` (reached through LiteLLM's real HTTP path)."""
    settings: dict[str, object] = dict(
        data_dir=tmp_path / "data",
        graph="off",
        llm_model="openai/fake-model",
        llm_api_base=fake.url,
        llm_api_key="test-key",
        llm_max_retries=0,
    )
    settings.update(overrides)
    return MemoryConfig(**settings)  # type: ignore[arg-type]
