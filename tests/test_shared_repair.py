"""Repair on a shared deployment (ledger on PostgreSQL, vectors on S3-compatible storage): the
single-machine repair (``index_health``, rebuild-and-swap in ``reindex``) meeting several
replicas. Services as in tests/test_replicas.py (``.ci/run`` starts them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._records import new_record, utc_now
from memorch.engine._store import Store
from memorch.errors import StorageError
from memorch.storage.base import Scope

from .pg_helpers import S3_ENV, bucket_keys, fresh_bucket, fresh_schema, need_s3


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    need_s3()
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    with fresh_schema() as url:
        yield url, fresh_bucket()


def replica(tmp_path: Path, name: str, url: str, uri: str) -> AsyncMemory:
    return AsyncMemory(MemoryConfig(data_dir=tmp_path / name, graph="off", ledger_url=url, vector_uri=uri))


async def test_a_new_replica_does_not_index_the_shared_dataset_again(
    shared: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The health check on start counts the dataset in the bucket (a replica has no local copy):
    with nothing owed, a starting replica writes no vector rows."""
    url, uri = shared
    one = replica(tmp_path, "one", url, uri)
    for i in range(5):
        await one.add(f"the lighthouse keeper logs storm number {i}", user_id="u", infer=False)
    written: list[str] = []
    original = Store.sync_vectors
    monkeypatch.setattr(Store, "sync_vectors", lambda self, ids: (written.extend(ids), original(self, ids))[1])
    two = replica(tmp_path, "two", url, uri)
    try:
        found = (await two.search("lighthouse storm", user_id="u", limit=10))["results"]
        assert len(found) == 5
        assert written == []
    finally:
        await one.close()
        await two.close()


async def test_reindex_refills_the_shared_dataset_in_place(shared: tuple[str, str], tmp_path: Path) -> None:
    """No rename exists on object storage and other replicas have the dataset open: ``reindex``
    rewrites every row from the ledger where it is, deletes rows the ledger lacks, and never
    drops the table, so the other replica keeps answering with the handle it has."""
    url, uri = shared
    one, two = replica(tmp_path, "one", url, uri), replica(tmp_path, "two", url, uri)
    try:
        ids = [
            (await one.add(f"the ferry to island {i} leaves at {i} o'clock", user_id="u", infer=False))["results"][0][
                "id"
            ]
            for i in range(4)
        ]
        await two.search("ferry", user_id="u")  # two has the dataset open
        vectors = one.engine.components.vectors
        text = "a row only the index holds"
        stray = new_record(text, one.engine.components.embedder.embed([text])[0], Scope("u"), {}, utc_now())
        vectors.upsert([stray])  # never in the ledger
        version_before = vectors._table.version
        result = await one.reindex(force=True)  # the stray row makes the ledger look behind
        assert result["memories"] == 4
        assert vectors.all_ids() == set(ids)
        assert vectors._table.version > version_before  # written in place, the same table
        assert (await one.stats())["pending_index"] == 0
        time.sleep(0.3)
        found = (await two.search("ferry island", user_id="u", limit=10))["results"]
        assert {f["id"] for f in found} == set(ids)
    finally:
        await one.close()
        await two.close()
    assert any("/memories.lance/" in key for key in bucket_keys(uri))


async def test_a_lost_ledger_is_refused_on_a_shared_deployment(shared: tuple[str, str], tmp_path: Path) -> None:
    """Rows gone from PostgreSQL while the bucket still holds them: a starting replica refuses
    (``LEDGER_BEHIND_INDEX``) instead of deleting the only remaining copy."""
    import psycopg

    url, uri = shared
    one = replica(tmp_path, "one", url, uri)
    for i in range(3):
        await one.add(f"the orchard has {i} pear trees", user_id="u", infer=False)
    await one.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM memories")  # lost, as a restore of an old dump would lose them
    two = replica(tmp_path, "two", url, uri)
    try:
        with pytest.raises(StorageError) as caught:
            await two.search("pear trees", user_id="u")
        assert caught.value.error_code == "LEDGER_BEHIND_INDEX"
        # The advice is PostgreSQL's: there is no memorch.db here, and `memorch backup` refuses.
        assert "PostgreSQL" in caught.value.message and "memorch.db" not in str(caught.value)
        assert "pg_dump" in caught.value.suggestion and "restore-backup" not in caught.value.suggestion
        assert two.engine.components.vectors.count() == 3
    finally:
        await two.close()


async def test_re_embedding_cannot_change_the_size_of_a_shared_index(shared: tuple[str, str], tmp_path: Path) -> None:
    """The recorded dimension differs from what the embedder now makes (a new model): refused
    before any embedding is rewritten, as the shared table cannot be replaced in place."""
    from memorch.engine._components import META_EMBED_DIM
    from memorch.errors import ValidationError

    url, uri = shared
    one = replica(tmp_path, "one", url, uri)
    try:
        added = (await one.add("the kiln fires at dawn", user_id="u", infer=False))["results"][0]
        ledger = one.engine.components.ledger
        before = ledger.get(added["id"]).embedding
        ledger.set_meta(META_EMBED_DIM, "7")
        with pytest.raises(ValidationError) as caught:
            await one.reindex(re_embed=True)
        assert caught.value.error_code == "REINDEX_UNSUPPORTED"
        assert caught.value.details["stored"] == 7
        assert (ledger.get(added["id"]).embedding == before).all()
        assert one.engine.components.vectors.count() == 1
    finally:
        await one.close()
