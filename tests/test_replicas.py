"""Several replicas: the vector dataset on S3-compatible object storage (moto in server mode on
127.0.0.1) and the ledger on PostgreSQL, both started by ``.ci/run``.

LanceDB reads only the standard ``AWS_*`` variables here; nothing memorch-specific configures the
object store.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.records import new_record, utc_now
from memorch.storage.base import Scope
from memorch.storage.vectors import LanceVectorIndex

from .pg_helpers import S3_ENV, bucket_keys, fresh_bucket, fresh_schema, need_s3

DIM = 4


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    need_s3()
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def shared(s3_env: None) -> Iterator[tuple[str, str]]:
    """A fresh ledger schema and a fresh bucket: what every replica of one deployment shares."""
    with fresh_schema() as url:
        yield url, fresh_bucket()


def records(n: int, tag: str) -> list:
    out = []
    for i in range(n):
        v = np.random.default_rng(i).standard_normal(DIM).astype(np.float32)
        out.append(new_record(f"{tag} memory {i}", v / np.linalg.norm(v), Scope("u"), {}, utc_now()))
    return out


def test_concurrent_writers_on_one_bucket_lose_nothing(s3_env: None) -> None:
    """Two writers (each its own LanceDB connection, as two replicas have) upsert at once: lance
    commits with conditional PUTs, a loser rebases and retries, no row is lost."""
    uri = fresh_bucket()
    writers = [LanceVectorIndex(uri, DIM), LanceVectorIndex(uri, DIM)]
    errors: list[BaseException] = []

    def write(index: LanceVectorIndex, tag: str) -> None:
        for record in records(12, tag):
            try:
                index.upsert([record])
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(w, tag)) for w, tag in zip(writers, "ab", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    time.sleep(0.3)  # past the read-consistency interval
    assert writers[0].count() == writers[1].count() == 24
    assert any(key.endswith(".manifest") for key in bucket_keys(uri))
    for w in writers:
        w.close()


async def test_replicas_share_the_ledger_and_the_bucket(shared: tuple[str, str], tmp_path: Path) -> None:
    url, uri = shared
    configs = [
        MemoryConfig(data_dir=tmp_path / f"replica{i}", graph="off", ledger_url=url, vector_uri=uri) for i in range(2)
    ]
    one, two = AsyncMemory(configs[0]), AsyncMemory(configs[1])
    try:
        added = (await one.add("Marta waters the tomatoes on Sundays", user_id="u", infer=False))["results"][0]
        # The other replica: same ledger and bucket, its own (empty) data directory.
        found = (await two.search("who waters the tomatoes", user_id="u"))["results"]
        assert [r["id"] for r in found] == [added["id"]]
        await two.update(added["id"], "Marta waters the tomatoes on Saturdays")
        time.sleep(0.3)
        found = (await one.search("tomatoes Saturdays", user_id="u"))["results"]
        assert found[0]["memory"] == "Marta waters the tomatoes on Saturdays"
        assert [e["event"] for e in await one.history(added["id"])] == ["ADD", "UPDATE"]
        # The same text added on both replicas: the second is a repeat, not a duplicate.
        again = (await two.add("Marta waters the tomatoes on Saturdays", user_id="u", infer=False))["results"]
        assert again[0]["event"] == "NONE"
        await one.delete(added["id"])
        time.sleep(0.3)
        assert (await two.search("tomatoes", user_id="u"))["results"] == []
    finally:
        await one.close()
        await two.close()
    # Nothing of the index went to the replicas' disks; the bucket holds it.
    assert not (tmp_path / "replica0" / "lance").exists() and not (tmp_path / "replica1" / "lance").exists()
    assert any("/memories.lance/" in key for key in bucket_keys(uri))


def test_maintenance_runs_on_the_lease_holder_only(shared: tuple[str, str]) -> None:
    from memorch.storage.postgres import PostgresLedger
    from memorch.storage.vectors_shared import SharedLanceVectorIndex

    url, uri = shared
    ledger = PostgresLedger(url)

    def index(holder: str) -> SharedLanceVectorIndex:
        return SharedLanceVectorIndex(
            uri,
            DIM,
            take_lease=lambda: ledger.acquire_lease("vector-maintenance", holder, 60),
            release_lease=lambda: ledger.release_lease("vector-maintenance", holder),
        )

    a, b = index("a"), index("b")
    a.upsert(records(5, "x"))
    assert ledger.acquire_lease("vector-maintenance", "a", 60)  # a is mid-pass
    before = b._table.version
    b.maintain_now()
    assert b.passes_skipped == 1 and b._table.version == before
    ledger.release_lease("vector-maintenance", "a")
    b.maintain_now()
    assert b.passes_skipped == 1 and b._table.version > before
    # The pass gave the lease back: a may take it at once.
    assert ledger.acquire_lease("vector-maintenance", f"a-{uuid.uuid4().hex[:4]}", 1)
    a.close()
    b.close()
    ledger.close()
