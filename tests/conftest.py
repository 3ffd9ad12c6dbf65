"""Shared fixtures: real stores in temporary directories, no MEMORCH_* from the outside."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, Memory, MemoryConfig


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MEMORCH_"):
            monkeypatch.delenv(key)


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
