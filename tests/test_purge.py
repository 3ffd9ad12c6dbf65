"""Forget means gone (issue 27 item 1): ``delete(..., purge=True)`` and ``delete_all(purge=True)``
leave no byte of the text under the data directory (SQLite file, WAL and free pages, LanceDB's
versions and indexes, the graph), no embedding-cache entry, a text-free PURGE event as the whole
history, and ``restore`` answering MEMORY_PURGED; every other memory keeps its behaviour."""

from __future__ import annotations

import asyncio
import random
import string
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from mcp import Client

from memorch import AsyncMemory, Memory, MemoryConfig
from memorch.domain._records import new_record, replaced, utc_now
from memorch.errors import MemoryNotFoundError, ValidationError
from memorch.models._embeddings import text_hash
from memorch.serve._app import build_server
from memorch.storage.base import Change, Scope
from memorch.storage.ledger import Ledger

from .conftest import fake_llm_config
from .fake_llm import FakeLLM
from .test_ledger_backends import ledger  # noqa: F401 - the SQLite and PostgreSQL ledgers, one test each


def token() -> str:
    """A distinctive 12-character word: found in the data directory only if a purge missed it."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=12))


def occurrences(data_dir: Path, needles: list[str]) -> list[str]:
    """Every file under ``data_dir`` holding one of ``needles`` (as written, or lower-cased as the
    full-text index keeps its terms): read as bytes, every file, locks and indexes included."""
    forms = {form.encode() for needle in needles for form in (needle, needle.lower())}
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(data_dir)}: {form.decode()}" for form in forms if form in data]
    return found


def cached(memory: AsyncMemory, text: str) -> bool:
    """The persistent embedding cache has the text's vector."""
    parts = memory.engine.components
    return bool(parts.ledger.cached_vectors(parts.embedder.model_id, [text_hash(text)]))


async def test_a_purge_during_reads_and_writes_leaves_no_byte_of_the_text(
    amem: AsyncMemory, config: MemoryConfig
) -> None:
    first, second = token(), token()
    kept = (await amem.add("I keep bees on the roof", user_id="u"))["results"][0]["id"]
    for i in range(12):
        await amem.add(f"Filler memory number {i} about the garden", user_id="u")
    doomed = (await amem.add(f"My locker code is {first}", user_id="u"))["results"][0]["id"]
    await amem.update(doomed, f"My locker code is {second} since Monday")  # history holds both texts
    assert (await amem.search(f"locker code {second}", user_id="u"))["results"][0]["id"] == doomed
    await asyncio.sleep(0.3)
    before = datetime.now(UTC).isoformat()
    assert occurrences(config.data_dir, [first, second]), "the test must see the text before the purge"

    async def writes() -> None:
        for i in range(6):
            await amem.add(f"Another memory {i} written during the purge", user_id="u")

    async def reads() -> None:
        for _ in range(6):
            await amem.search("garden", user_id="u")
            await amem.get_all(user_id="u")

    purged, *_ = await asyncio.gather(amem.delete(doomed, purge=True), writes(), reads(), reads())
    assert purged["event"] == "PURGE" and purged["purged"] is True
    assert purged["memory"] == f"My locker code is {second} since Monday"  # in the answer, nowhere else

    assert occurrences(config.data_dir, [first, second, "My locker code"]) == []
    assert not cached(amem, f"My locker code is {first}") and not cached(
        amem, f"My locker code is {second} since Monday"
    )
    events = await amem.history(doomed)
    assert [(e["event"], e["old_memory"], e["new_memory"], e["is_deleted"]) for e in events] == [
        ("PURGE", None, None, True)
    ]
    with pytest.raises(MemoryNotFoundError) as gone:
        await amem.restore(doomed)
    assert gone.value.error_code == "MEMORY_PURGED" and gone.value.suggestion
    with pytest.raises(MemoryNotFoundError):
        await amem.get(doomed)
    assert doomed not in {
        r["id"] for r in (await amem.search(f"locker code {second}", user_id="u", threshold=0))["results"]
    }
    then = await amem.search("locker code", user_id="u", as_of=before, threshold=0)
    assert doomed not in {r["id"] for r in then["results"]}  # not in the past either
    again = await amem.delete(doomed, purge=True)
    assert again["event"] == "NONE" and "purged" in again["message"]
    assert (await amem.delete(doomed))["event"] == "NONE"

    # Nothing else changed: the other memories are all there and keep history, restore and as_of.
    assert len((await amem.get_all(user_id="u", limit=100))["results"]) == 1 + 12 + 6
    await amem.update(kept, "I keep bees in the garden")
    assert [e["event"] for e in await amem.history(kept)] == ["ADD", "UPDATE"]
    assert (await amem.restore(kept))["memory"] == "I keep bees on the roof"
    old = await amem.search("bees", user_id="u", as_of=before, threshold=0)
    assert old["results"][0]["id"] == kept and old["results"][0]["memory"] == "I keep bees on the roof"
    await amem.delete(kept)
    assert (await amem.restore(kept))["event"] == "RESTORE"  # a plain delete is still undone


async def test_purging_a_memory_deleted_before_removes_its_history(amem: AsyncMemory, config: MemoryConfig) -> None:
    secret = token()
    doomed = (await amem.add(f"The alarm code is {secret}", user_id="u"))["results"][0]["id"]
    await amem.add("Something else entirely", user_id="u")
    await amem.delete(doomed)
    assert (await amem.history(doomed))[-1]["old_memory"] == f"The alarm code is {secret}"
    assert (await amem.delete(doomed, purge=True))["event"] == "PURGE"
    assert [e["event"] for e in await amem.history(doomed)] == ["PURGE"]
    assert occurrences(config.data_dir, [secret]) == []
    with pytest.raises(MemoryNotFoundError) as gone:
        await amem.restore(doomed)
    assert gone.value.error_code == "MEMORY_PURGED"


async def test_the_data_file_that_held_the_row_is_rewritten(amem: AsyncMemory) -> None:
    """LanceDB's delete only marks a row deleted, and its compaction leaves a large fragment with
    few deleted rows as it is: after a purge no fragment holds a row the table does not have."""
    ids = [(await amem.add(f"Fact number {i} {token()}", user_id="u"))["results"][0]["id"] for i in range(20)]
    await amem.search("fact", user_id="u")  # every row written
    vectors = amem.engine.components.vectors
    await asyncio.to_thread(vectors.maintain_now)  # one compacted fragment
    await amem.delete(ids[5], purge=True)
    stats = vectors._table.stats()
    fragments = stats["fragment_stats"]
    assert stats["num_rows"] == 19
    assert fragments["num_fragments"] == 1 and fragments["lengths"]["max"] == 19  # physical rows
    # Counted as manifest files: list_versions reads each manifest it listed, and an idle pass's
    # prune may remove one in between.
    assert len(list((Path(vectors._table.uri) / "_versions").glob("*.manifest"))) == 1


async def test_the_cache_keeps_a_text_another_memory_still_says(amem: AsyncMemory) -> None:
    text = f"My bike lock is {token()}"
    doomed = (await amem.add(text, user_id="a"))["results"][0]["id"]
    other = (await amem.add(text, user_id="b"))["results"][0]["id"]
    await amem.search("bike", user_id="a")  # committed and indexed
    assert cached(amem, text)
    await amem.delete(doomed, purge=True)
    assert cached(amem, text)  # user b's memory says the same: its vector stays
    assert (await amem.get(other))["memory"] == text
    await amem.delete(other, purge=True)
    assert not cached(amem, text)


async def test_a_purge_stays_in_its_scope_and_checks_its_argument(amem: AsyncMemory) -> None:
    doomed = (await amem.add("Only user a's", user_id="a"))["results"][0]["id"]
    with pytest.raises(MemoryNotFoundError):
        await amem.delete(doomed, purge=True, user_id="b")
    with pytest.raises(ValidationError):
        await amem.delete(doomed, purge="yes")  # type: ignore[arg-type]
    assert (await amem.get(doomed))["memory"] == "Only user a's"


async def test_delete_all_with_purge(amem: AsyncMemory, config: MemoryConfig) -> None:
    words = [token() for _ in range(4)]
    ids = [(await amem.add(f"Private note {w}", user_id="u"))["results"][0]["id"] for w in words]
    await amem.delete(ids[0])  # deleted before: its history goes too
    keep = (await amem.add("User v's note", user_id="v"))["results"][0]["id"]
    result = await amem.delete_all(purge=True, user_id="u")
    assert result["deleted"] == 3 and set(result["ids"]) == set(ids[1:]) and result["purged"] is True
    assert occurrences(config.data_dir, words) == []
    for memory_id in ids:
        assert [e["event"] for e in await amem.history(memory_id)] == ["PURGE"]
    assert (await amem.get(keep))["memory"] == "User v's note"
    assert [r["id"] for r in (await amem.search("note", user_id="v", threshold=0))["results"]] == [keep]


async def test_a_purge_removes_the_memorys_relations_from_the_graph(tmp_path: Path, fake: FakeLLM) -> None:
    person, place = token(), token()
    config = fake_llm_config(tmp_path, fake, graph="on", llm_api_key="k")
    memory = AsyncMemory(config)
    try:
        fact = {"fact": 0, "source": person, "source_type": "person", "relationship": "hides_in"}
        fake.push(
            {
                "memory": [{"event": "ADD", "text": f"{person} hides in {place}"}],
                "relations": [{**fact, "destination": place, "destination_type": "place"}],
            }
        )
        doomed = (await memory.add(f"{person} hides in {place}", user_id="g"))["results"][0]["id"]
        fake.push(
            {
                "memory": [{"event": "ADD", "text": "Ann lives in Rome"}],
                "relations": [{**fact, "source": "Ann", "relationship": "lives_in", "destination": "Rome"}],
            }
        )
        await memory.add("Ann lives in Rome", user_id="g")
        await memory.flush_graph()
        assert (await memory.stats())["relations"] == 2
        await memory.delete(doomed, purge=True)
        stats = await memory.stats()
        assert stats["relations"] == 1 and stats["entities"] == 2
        assert [(r["source"], r["destination"]) for r in (await memory.graph("Ann", user_id="g"))["relations"]] == [
            ("Ann", "Rome")
        ]
        assert (await memory.graph(person, user_id="g"))["relations"] == []
    finally:
        await memory.close()
    assert occurrences(config.data_dir, [person, place]) == []


async def test_purge_over_mcp(tmp_path: Path) -> None:
    secret = token()
    data_dir = tmp_path / "data"
    async with Client(build_server(MemoryConfig(data_dir=data_dir, graph="off"))) as client:
        added = await client.call_tool("add_memory", {"text": f"My PIN is {secret}"})
        memory_id = added.structured_content["results"][0]["id"]
        refused = await client.call_tool("delete_memory", {"memory_id": memory_id, "purge": "true"})
        assert refused.is_error
        result = await client.call_tool("delete_memory", {"memory_id": memory_id, "purge": True})
        assert result.structured_content["event"] == "PURGE" and result.structured_content["purged"] is True
        restore = await client.call_tool("restore_memory", {"memory_id": memory_id})
        assert restore.is_error and restore.content[0].text.startswith("[MEMORY_PURGED]")
        await client.call_tool("add_memory", {"text": f"Another PIN {token()}"})
        everything = await client.call_tool("delete_all_memories", {"confirm": True, "purge": True})
        assert everything.structured_content["purged"] is True and everything.structured_content["deleted"] == 1
    assert occurrences(data_dir, [secret]) == []


def test_the_sync_facade_purges(config: MemoryConfig) -> None:
    with Memory(config) as mem:
        memory_id = mem.add("Forget this one", user_id="u")["results"][0]["id"]
        assert mem.delete(memory_id, purge=True)["event"] == "PURGE"
        with pytest.raises(MemoryNotFoundError) as gone:
            mem.restore(memory_id)
        assert gone.value.error_code == "MEMORY_PURGED"


def test_the_ledgers_purge(ledger: Ledger) -> None:  # noqa: F811 - the fixture imported above
    """Both ledgers: one transaction leaves a text-free PURGE event, no relations, no cache entry
    (unless another memory says the text), owed index work, and ``scrub`` runs after it."""
    scope, vector = Scope(user_id="u"), np.ones(4, dtype=np.float32) / 2
    first = new_record("Old secret text", vector, scope, {}, utc_now())
    relation = {"source": "A", "source_type": "", "relationship": "knows", "destination": "B", "destination_type": ""}
    ledger.apply([Change("ADD", first, relations=(relation,))], ["vectors"], ["graph"])
    second = replaced(first, "New secret text", vector, None)
    ledger.apply([Change("UPDATE", second, old_memory=first.memory)], ["vectors"], ["graph"])
    twin = new_record("Old secret text", vector, Scope(user_id="v"), {}, utc_now())
    ledger.apply([Change("ADD", twin)], ["vectors"])
    ledger.cache_vectors("m", {text_hash(t): vector for t in ("Old secret text", "New secret text", "other")})
    ledger.clear_pending("vectors", ledger.outbox_tokens("vectors", [first.id]))
    ledger.clear_pending("graph", ledger.outbox_tokens("graph", [first.id]))
    when = utc_now()

    purged = ledger.purge([first.id, "never-seen"], ["vectors"], ["graph"], text_hash, utc_now())
    assert purged == {first.id: "New secret text"}
    ledger.scrub()
    assert ledger.get(first.id) is None and ledger.relations_for([first.id]).get(first.id, []) == []
    events = ledger.history(first.id)
    assert [(e.event, e.old_memory, e.new_memory, e.is_deleted) for e in events] == [("PURGE", None, None, True)]
    assert ledger.history(first.id, scope) == events and ledger.history(first.id, Scope(user_id="v")) == []
    assert set(ledger.cached_vectors("m", [text_hash(t) for t in ("Old secret text", "New secret text", "other")])) == {
        text_hash("Old secret text"),  # user v's memory says it
        text_hash("other"),
    }
    assert set(ledger.outbox_tokens("vectors", [first.id])) == {first.id}
    assert set(ledger.outbox_tokens("graph", [first.id])) == {first.id}  # it had relations
    assert [e.memory_id for e, _ in ledger.versions_at(scope, when, 10)] == []
    assert [row["id"] for page in ledger.export_pages(scope) for row in page] == []
    assert ledger.purge([first.id], ["vectors"], [], text_hash, utc_now()) == {}  # already purged
    assert ledger.get(twin.id) is not None
