"""The ledgers' shape: one interface, one definition of each query, no ledger built on another."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from memorch.errors import StorageError
from memorch.storage.history import SQLiteCore, SQLiteLedger
from memorch.storage.ledger import Ledger, SharedLedger, shared_ledger
from memorch.storage.ledger_core import LedgerCore
from memorch.storage.postgres import PostgresLedger
from memorch.storage.readonly import ReadOnlyLedger

LEDGERS = (SQLiteLedger, PostgresLedger, ReadOnlyLedger)


def defined(cls: type) -> set[str]:
    return {name for name in vars(cls) if not (name.startswith("__") and name.endswith("__"))} - {"_abc_impl"}


def test_no_two_bases_of_the_ledger_core_define_the_same_name() -> None:
    # The mixins type ``self`` with a Protocol (storage/sql.Transactions) instead of declaring
    # stand-in methods; a stand-in that raised NotImplementedError would win or lose by base order.
    bases = [base for base in LedgerCore.__bases__ if base.__module__.startswith("memorch.")]
    assert len(bases) >= 3
    for a, b in itertools.combinations([*bases, LedgerCore], 2):
        assert not defined(a) & defined(b), (a.__name__, b.__name__, defined(a) & defined(b))


def test_every_ledger_resolves_each_query_to_its_one_definition() -> None:
    for ledger in LEDGERS:
        for base in LedgerCore.__mro__[1:]:
            if not base.__module__.startswith("memorch."):
                continue
            for name in defined(base):
                owner = next(c for c in ledger.__mro__ if name in vars(c))
                # Either the mixin's definition, or a deliberate override in the ledger itself.
                assert owner is base or owner is ledger, (ledger.__name__, name, owner)


def test_no_ledger_is_built_on_another_and_each_implements_the_whole_interface() -> None:
    for a, b in itertools.permutations(LEDGERS, 2):
        assert not issubclass(a, b), (a.__name__, b.__name__)
    for core in (LedgerCore, SQLiteCore):  # shared code, not ledgers: nothing to open
        assert core.__abstractmethods__, core.__name__
    operations = [name for name in vars(Ledger) if not name.startswith("_")]
    assert {"apply", "get_many", "list", "scope_lock", "backup_to"} <= set(operations)
    for ledger in LEDGERS:
        assert not ledger.__abstractmethods__, (ledger.__name__, ledger.__abstractmethods__)
        for name in operations:
            assert callable(getattr(ledger, name, None)), (ledger.__name__, name)


def test_only_the_shared_ledger_claims_work_across_replicas(tmp_path: Path) -> None:
    assert issubclass(PostgresLedger, SharedLedger)
    ledger = SQLiteLedger(tmp_path / "memorch.db")
    try:
        assert not isinstance(ledger, SharedLedger)
        with pytest.raises(TypeError):
            shared_ledger(ledger)
    finally:
        ledger.close()


def test_the_read_only_ledger_reads_and_refuses_every_write_before_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "memorch.db"
    SQLiteLedger(path).close()
    ledger = ReadOnlyLedger(path)
    try:
        assert ledger.counts()["memories"] == 0 and ledger.get_meta("k") is None
        for write in (lambda: ledger.set_meta("k", "v"), lambda: ledger.mark_all_pending("vectors"), ledger.wipe):
            with pytest.raises(StorageError) as caught:
                write()
            assert caught.value.error_code == "READ_ONLY"
    finally:
        ledger.close()


def test_an_old_without_rowid_embedding_cache_is_replaced_by_a_compact_one(tmp_path: Path) -> None:
    """Vectors of 1.5 kB overflowed a WITHOUT ROWID table's b-tree (~4.6 kB per entry): an
    earlier ledger's cache is dropped on open (it is only a cache) and rebuilt as a rowid table."""
    path = tmp_path / "memorch.db"
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE embedding_cache")
        conn.execute(
            "CREATE TABLE embedding_cache (model TEXT NOT NULL, text_hash TEXT NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (model, text_hash)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO embedding_cache VALUES ('m', 'h', ?)", (b"\0" * 1536,))
    conn.close()
    ledger = SQLiteLedger(path)
    try:
        assert ledger.cached_vectors("m", ["h"]) == {}
        vectors = {f"h{i}": np.full(384, i, dtype=np.float32) for i in range(400)}
        ledger.cache_vectors("m", vectors)
        assert np.array_equal(ledger.cached_vectors("m", ["h7"])["h7"], vectors["h7"])
    finally:
        ledger.close()
    with sqlite3.connect(path) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'embedding_cache'").fetchone()[0]
        pages = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = 'embedding_cache'").fetchone()[0]
    conn.close()
    assert "WITHOUT ROWID" not in sql.upper()
    assert pages / 400 < 2_500, f"{pages / 400:.0f} bytes per cached vector"  # ~2.1 kB; it was ~4.6 kB


async def test_the_persistent_embedding_cache_keeps_only_the_newest_entries(tmp_path: Path) -> None:
    """Bounded by MEMORCH_EMBEDDING_CACHE_SIZE: without a bound it grew by ~2 kB per distinct
    text (each query's and each memory's) for ever, the largest part of a soaked ledger."""
    from memorch import AsyncMemory, MemoryConfig

    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path, graph="off", embedding_cache_size=5, index_flush_delay=0))
    texts = [f"note number {n} about the garden" for n in range(12)]
    for text in texts:
        await memory.add(text, user_id="u", infer=False)
        await memory.search(f"query {text}", user_id="u")  # query embeddings reach the cache too
    await memory.add("one more to carry the last query's embedding", user_id="u", infer=False)
    await memory.close()

    with sqlite3.connect(tmp_path / "memorch.db") as conn:
        assert 0 < conn.execute("SELECT count(*) FROM embedding_cache").fetchone()[0] <= 5


def test_a_ledger_with_a_bound_drops_the_oldest_cache_entries(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "memorch.db", cache_rows=3)
    for n in range(6):
        ledger.cache_vectors("m", {f"h{n}": np.full(4, n, dtype=np.float32)})
    ledger.cache_vectors("m", {"h4": np.full(4, 40, dtype=np.float32)})  # rewritten: newest again
    kept = ledger.cached_vectors("m", [f"h{n}" for n in range(6)])
    # At most the last 3 writes' worth: h3 was written before the rewrite of h4, so it went.
    assert sorted(kept) == ["h4", "h5"] and kept["h4"][0] == 40
    for n in range(6, 9):
        ledger.cache_vectors("m", {f"h{n}": np.zeros(4, dtype=np.float32)})
    assert sorted(ledger.cached_vectors("m", [f"h{n}" for n in range(9)])) == ["h6", "h7", "h8"]
    ledger.close()


def test_a_cache_grown_before_the_bound_is_cut_when_the_ledger_opens(tmp_path: Path) -> None:
    unbounded = SQLiteLedger(tmp_path / "memorch.db")
    unbounded.cache_vectors("m", {f"h{n}": np.zeros(4, dtype=np.float32) for n in range(50)})
    unbounded.close()
    bounded = SQLiteLedger(tmp_path / "memorch.db", cache_rows=10)
    assert len(bounded.cached_vectors("m", [f"h{n}" for n in range(50)])) == 10  # one batch: no gaps
    bounded.close()
