"""Engine failures on a real, damaged data directory reach the caller as typed errors with a
suggestion and without internals (no data-directory path, no Rust source location); the
detail goes to the server log."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.errors import StorageError, VectorSearchError
from memorch.storage.graph import KuzuGraph
from memorch.storage.history import SQLiteLedger

SOURCE_PATH = re.compile(r"\.(rs|cpp|cc|h)\b")


def assert_client_safe(error: StorageError, data_dir: Path) -> None:
    for text in (str(error), repr(error.to_dict())):
        # Lance prints paths both absolute and without the leading slash.
        assert str(data_dir).lstrip("/") not in text, text
        assert not SOURCE_PATH.search(text), text
        assert "/root/" not in text and "/rustc/" not in text, text
    assert error.suggestion and "memorch reindex" in error.suggestion


async def filled(config: MemoryConfig) -> Path:
    memory = AsyncMemory(config)
    for user in ("alice", "bob"):  # two scopes: a scoped search plans with a scoped row count
        for text in ("I like green tea", "My dog is called Rex", "I work in Lisbon"):
            await memory.add(f"{text} ({user})", user_id=user, infer=False)
    await memory.close()
    return config.data_dir / "lance" / "memories.lance"


async def search_error(config: MemoryConfig, caplog: pytest.LogCaptureFixture) -> StorageError:
    memory = AsyncMemory(config)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(StorageError) as caught:
            await memory.search("tea", user_id="alice")
    finally:
        await memory.close()
    # The server log keeps what the client does not get.
    assert any(record.exc_info for record in caplog.records)
    return caught.value


async def test_broken_manifest(config: MemoryConfig, caplog: pytest.LogCaptureFixture) -> None:
    table = await filled(config)
    # Version manifests are named so the newest sorts first; damage the one a reader opens.
    newest = sorted((table / "_versions").glob("*.manifest"))[0]
    newest.write_bytes(b"not a manifest" * 4)
    error = await search_error(config, caplog)
    assert error.error_code == "VECTOR_STORE_OPEN_FAILED"
    assert_client_safe(error, config.data_dir)


async def test_missing_index_folder(config: MemoryConfig, caplog: pytest.LogCaptureFixture) -> None:
    table = await filled(config)
    shutil.rmtree(table / "_indices")
    error = await search_error(config, caplog)
    assert isinstance(error, VectorSearchError)
    assert_client_safe(error, config.data_dir)


async def test_missing_data_file(config: MemoryConfig, caplog: pytest.LogCaptureFixture) -> None:
    table = await filled(config)
    for data in (table / "data").iterdir():
        data.unlink()
    error = await search_error(config, caplog)
    assert isinstance(error, VectorSearchError)
    assert_client_safe(error, config.data_dir)


def test_ledger_and_graph_errors_hold_no_path(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data directory should be")
    with pytest.raises(StorageError) as ledger:
        SQLiteLedger(not_a_dir / "memorch.db")
    assert ledger.value.error_code == "LEDGER_ERROR"
    with pytest.raises(StorageError) as graph:
        KuzuGraph(not_a_dir / "graph.kuzu", not_a_dir / "graph.lock")
    assert graph.value.error_code == "GRAPH_ERROR"
    for error in (ledger.value, graph.value):
        assert str(tmp_path) not in str(error) and str(tmp_path) not in repr(error.to_dict())


@pytest.mark.parametrize("damage", ["manifest", "indices"])
async def test_reindex_repairs_a_damaged_vector_index(config: MemoryConfig, damage: str) -> None:
    """The error's suggestion is `memorch reindex`: it must work on exactly that damage."""
    table = await filled(config)
    if damage == "manifest":
        sorted((table / "_versions").glob("*.manifest"))[0].write_bytes(b"not a manifest" * 4)
    else:
        shutil.rmtree(table / "_indices")
    memory = AsyncMemory(config)
    try:
        assert (await memory.reindex())["memories"] == 6
        found = await memory.search("green tea", user_id="alice", threshold=0)
        assert found["results"][0]["memory"] == "I like green tea (alice)"
    finally:
        await memory.close()


async def test_a_search_that_fails_after_its_bm25_query_started_waits_for_it(
    config: MemoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph's candidates are read while the BM25 query runs on another thread: a ledger
    failure there is the search's typed error, returned only once that query has ended (it must
    not outlive the search, nor run into a close that follows)."""
    import time

    from memorch.storage.vectors import LanceVectorIndex

    memory = AsyncMemory(config.with_overrides(graph="on"))
    await memory.add("I keep bees in the garden", user_id="alice", infer=False)
    ran: dict[str, float] = {}
    text_search = LanceVectorIndex.text_search

    def slow_text_search(self: LanceVectorIndex, *args: object, **kwargs: object) -> object:
        ran["started"] = time.monotonic()
        time.sleep(0.5)
        try:
            return text_search(self, *args, **kwargs)
        finally:
            ran["finished"] = time.monotonic()

    def failing(*args: object, **kwargs: object) -> object:
        raise StorageError("the SQLite ledger could not read (disk I/O error)", error_code="LEDGER_ERROR")

    monkeypatch.setattr(LanceVectorIndex, "text_search", slow_text_search)
    monkeypatch.setattr(type(memory.engine.components.ledger), "relations_touching", failing)
    with pytest.raises(StorageError) as raised:
        await memory.search("bees", user_id="alice")
    returned = time.monotonic()
    assert raised.value.error_code == "LEDGER_ERROR"
    time.sleep(1.0)  # a query left running would end now
    # Cancelled before a pool thread took it, or ended before the search returned.
    assert "started" not in ran or ran["finished"] <= returned
    await memory.close()
