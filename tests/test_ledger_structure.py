"""The ledger's query mixins cannot shadow one another: base-class order changes nothing."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import numpy as np

from memorch.storage.history import SQLiteLedger
from memorch.storage.postgres import PostgresLedger
from memorch.storage.readonly import ReadOnlyLedger


def defined(cls: type) -> set[str]:
    return {name for name in vars(cls) if not (name.startswith("__") and name.endswith("__"))}


def test_no_two_bases_of_the_ledger_define_the_same_name() -> None:
    # The mixins type ``self`` with a Protocol (storage/sql.Transactions) instead of declaring
    # stand-in methods; a stand-in that raised NotImplementedError would win or lose by base order.
    bases = SQLiteLedger.__bases__
    assert len(bases) >= 3
    for a, b in itertools.combinations([*bases, SQLiteLedger], 2):
        assert not defined(a) & defined(b), (a.__name__, b.__name__, defined(a) & defined(b))


def test_every_ledger_resolves_each_query_to_its_one_definition() -> None:
    for ledger in (SQLiteLedger, PostgresLedger, ReadOnlyLedger):
        for base in SQLiteLedger.__bases__:
            for name in defined(base):
                owner = next(c for c in ledger.__mro__ if name in vars(c))
                # Either the mixin's definition, or a deliberate override in a ledger subclass.
                assert owner is base or issubclass(owner, SQLiteLedger), (ledger.__name__, name, owner)


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
