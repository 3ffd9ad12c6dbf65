"""Forget means gone for what a memory was made from, and after an expiry a deletion postponed
(a forget audit, 2026-12-07): purging a fact that background inference made also purges the
message it was made from (deleted when the fact was made, restorable, its text in its history);
the message's history names its facts by id, never by text; and a deleted memory whose expiry
passes is purged by maintenance as an undeleted one is. The model is the fake OpenAI-compatible
server behind LiteLLM's real HTTP path; the stores are real, in a temporary directory."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import memorch.inference._plan as inference_plan
from memorch import AsyncMemory, MemoryConfig
from memorch.domain._records import deletion, made_from, new_record, utc_now
from memorch.errors import MemoryNotFoundError
from memorch.storage.base import Change, Scope
from memorch.storage.expiry import stamp
from memorch.storage.ledger import Ledger

from .conftest import fake_llm_config
from .fake_llm import FakeLLM
from .test_expiry import until, warm
from .test_ledger_backends import ledger  # noqa: F401 - the SQLite and PostgreSQL ledgers, one test each
from .test_purge import occurrences, token
from .test_replicas import s3_env, shared  # noqa: F401 - a PostgreSQL ledger and a bucket, as replicas share


async def inferred(
    memory: AsyncMemory, fake: FakeLLM, said: str, facts: list[str], user_id: str = "u", **add: object
) -> tuple[str, dict]:
    """``said`` added with background inference, the model answering ``facts``: the message's id
    and the facts by text, once inference replaced the message."""
    fake.push({"memory": [{"event": "ADD", "text": text} for text in facts]})
    message = (await memory.add(said, user_id=user_id, **add))["results"][0]["id"]
    assert (await memory.flush_inference())["pending_inference"] == 0
    made = {m["memory"]: m for m in (await memory.get_all(user_id=user_id))["results"]}
    assert set(made) == set(facts)
    return message, made


async def test_purging_a_fact_purges_the_message_it_was_made_from(tmp_path: Path, fake: FakeLLM) -> None:
    secret, other = token(), token()
    said = f"Remember my locker code {secret} and that I swim on Mondays {other}"
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    async with AsyncMemory(config) as memory:
        await memory.add("warm-up", user_id="warm", infer=False)
        code, swim = f"User's locker code is {secret}", f"User swims on Mondays {other}"
        message, made = await inferred(memory, fake, said, [code, swim])
        # The message's history names what it became by id: the fact's text is the fact's alone.
        [added, replaced] = await memory.history(message)
        assert added["new_memory"] == said and replaced["event"] == "DELETE"
        assert replaced["reason"] == (
            f"replaced by what inference made of it: ADD {made[code]['id']}, ADD {made[swim]['id']}"
        )
        assert made[code]["metadata"]["_memorch"]["from"] == [message]
        assert occurrences(config.data_dir, [secret])  # the control: the text is on disk before

        await memory.delete(made[code]["id"], purge=True)
        assert [e["event"] for e in await memory.history(message)] == ["PURGE"]
        assert (await memory.stats())["pending_index"] == 0  # the message's purge is finished too
        with pytest.raises(MemoryNotFoundError) as refused:
            await memory.restore(message)
        assert refused.value.error_code == "MEMORY_PURGED"
        # The other fact is a memory of its own: it stays, in its own words.
        assert [m["memory"] for m in (await memory.get_all(user_id="u"))["results"]] == [swim]
        await memory.export_memories(tmp_path / "export.jsonl")
        assert secret not in (tmp_path / "export.jsonl").read_text()
    assert occurrences(config.data_dir, [secret]) == []


async def test_a_fact_updated_from_a_message_takes_the_message_with_it(tmp_path: Path, fake: FakeLLM) -> None:
    secret = token()
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    async with AsyncMemory(config) as memory:
        first, made = await inferred(memory, fake, "I live in Lisbon", ["User lives in Lisbon"])
        target = made["User lives in Lisbon"]["id"]
        fake.push({"memory": [{"event": "UPDATE", "id": 0, "text": f"User lives in Porto, flat {secret}"}]})
        second = (await memory.add(f"I moved to Porto, flat {secret}", user_id="u"))["results"][0]["id"]
        await memory.flush_inference()
        updated = await memory.get(target)
        assert updated["memory"].endswith(secret) and updated["metadata"]["_memorch"]["from"] == sorted([first, second])
        await memory.delete(target, purge=True)
        for message in (first, second):
            assert [e["event"] for e in await memory.history(message)] == ["PURGE"]
    assert occurrences(config.data_dir, [secret]) == []


async def test_a_deleted_memory_is_purged_when_its_expiry_passes(amem: AsyncMemory, config: MemoryConfig) -> None:
    secret = token()
    await warm(amem)
    deadline = time.monotonic() + 4  # room for two adds, two deletes and a sweep on a loaded machine
    gone = (await amem.add(f"Parcel locker code {secret}", user_id="u", expires_at="4s"))["results"][0]["id"]
    kept = (await amem.add("Deleted, and no expiry", user_id="u"))["results"][0]["id"]
    await amem.delete(gone)
    await amem.delete(kept)
    done = await amem.maintain()  # before the expiry: a deletion's history stays, to restore
    assert done["expired"] == 0 and [e["event"] for e in await amem.history(gone)] == ["ADD", "DELETE"]
    await until(deadline)
    done = await amem.maintain()
    assert done["expired_ids"] == [gone]
    assert [e["event"] for e in await amem.history(gone)] == ["PURGE"]
    assert [e["event"] for e in await amem.history(kept)] == ["ADD", "DELETE"]  # no expiry: restorable
    await amem.restore(kept)
    await amem.close()
    assert occurrences(config.data_dir, [secret]) == []


async def test_a_time_bound_add_leaves_nothing_once_it_expires(tmp_path: Path, fake: FakeLLM) -> None:
    """The message goes at the add's expiry with its facts, though inference deleted it first."""
    secret = token()
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    async with AsyncMemory(config) as memory:
        await warm(memory)
        # LiteLLM's first completion (its import: seconds) before the clock starts.
        await inferred(memory, fake, "Hello there", ["User said hello"], user_id="warm-llm")
        deadline = time.monotonic() + 2
        said, fact = f"Hotel room code {secret}", f"Room code {secret}"
        message, made = await inferred(memory, fake, said, [fact], expires_at="2s")
        await until(deadline)
        done = await memory.maintain()
        assert sorted(done["expired_ids"]) == sorted([message, made[fact]["id"]])
    assert occurrences(config.data_dir, [secret]) == []


def test_the_ledgers_read_sources_and_expired_deletions(ledger: Ledger) -> None:  # noqa: F811 - the fixture imported above
    scope, vector = Scope(user_id="u"), np.ones(4, dtype=np.float32) / 2
    message = new_record("the message", vector, scope, {}, utc_now())
    fact = new_record("the fact", vector, scope, made_from({"k": 1}, [message.id]), utc_now())
    short = new_record("short-lived", vector, scope, {}, utc_now())
    # Times are given, not waited for: a slow machine (CI's PostgreSQL) took over 50 ms between
    # the add and the first check.
    short.expires_at = stamp(datetime.now(UTC) + timedelta(hours=1))
    ledger.apply([Change("ADD", r) for r in (message, fact, short)], ["vectors"])
    ledger.apply([deletion(message), deletion(short), deletion(fact)], ["vectors"])
    assert {m["_memorch"]["from"][0] for m in ledger.metadata_of([fact.id]) if "_memorch" in m} == {message.id}
    assert ledger.expired_deleted_ids(utc_now()) == set()
    later = stamp(datetime.now(UTC) + timedelta(hours=2))
    assert ledger.expired_deleted_ids(later) == {short.id}


async def test_a_purge_follows_sources_only_within_the_facts_scope(tmp_path: Path, fake: FakeLLM) -> None:
    """Inference for a user's message may update an agent's memory of that user (the user's scope
    sees it); the agent's purge of that memory must not reach the user-level message, which the
    agent's scope cannot see (a review, 2026-12-07)."""
    secret = token()
    config = fake_llm_config(tmp_path, fake, background_inference="on")
    async with AsyncMemory(config) as memory:
        await memory.add("warm-up", user_id="warm", infer=False)
        agents = (await memory.add("Team standup is at 9", user_id="u", agent_id="A", infer=False))["results"][0]["id"]
        fake.push({"memory": [{"event": "UPDATE", "id": 0, "text": "Team standup is at 10"}]})
        message = (await memory.add(f"Standup moved to 10, badge {secret}", user_id="u"))["results"][0]["id"]
        assert (await memory.flush_inference())["pending_inference"] == 0
        assert (await memory.get(agents))["metadata"]["_memorch"]["from"] == [message]  # the link is kept
        with pytest.raises(MemoryNotFoundError):
            await memory.history(message, user_id="u", agent_id="A")
        await memory.delete(agents, purge=True, user_id="u", agent_id="A")
        assert [e["event"] for e in await memory.history(message)] == ["ADD", "DELETE"]  # the user's to forget
        await memory.delete(message, purge=True, user_id="u")
    assert occurrences(config.data_dir, [secret]) == []


async def test_an_imported_source_in_another_scope_is_not_purged(amem: AsyncMemory, tmp_path: Path) -> None:
    """A line of memorch's own export format may carry ``_memorch.from``: one naming another
    user's memory does not let this user's purge reach it."""
    victim = (await amem.add("Bob's bank PIN is 4321", user_id="bob", infer=False))["results"][0]["id"]
    await amem.export_memories(tmp_path / "bob.jsonl", user_id="bob")
    line = json.loads((tmp_path / "bob.jsonl").read_text().splitlines()[0])  # bob's line, made mallory's
    mine = "11111111-1111-4111-8111-111111111111"
    line.update(id=mine, user_id="mallory", memory="my note", metadata={"_memorch": {"from": [victim]}})
    for event in line["history"]:
        event.update(id="22222222-2222-4222-8222-222222222222", memory_id=mine, new_memory="my note", user_id="mallory")
    (tmp_path / "forged.jsonl").write_text(json.dumps(line) + "\n")
    assert (await amem.import_memories(tmp_path / "forged.jsonl"))["imported"] == 1
    assert (await amem.get(mine))["metadata"]["_memorch"]["from"] == [victim]
    await amem.delete(mine, purge=True, user_id="mallory")
    assert (await amem.get(victim))["memory"] == "Bob's bank PIN is 4321"


def test_a_scope_holds_its_agents_and_its_layer_not_a_projects() -> None:
    """What a purge may follow (``_made_from``): the fact's own scope holds the source's. A
    memory's project None is the global layer, which sees no project's (a review, 2026-12-07)."""
    user, agent = Scope(user_id="u"), Scope(user_id="u", agent_id="A")
    assert user.holds(agent) and not agent.holds(user)
    assert not user.holds(Scope(user_id="u", project="P"))  # a global fact, a project's message
    assert Scope(user_id="u", project="P").holds(user)  # a project's fact, a global message
    assert not Scope(user_id="u", project="P").holds(Scope(user_id="u", project="Q"))
    assert not user.holds(Scope(user_id="v"))


@pytest.mark.parametrize("how", ["one", "delete_all", "expiry"])
async def test_a_purge_and_another_replicas_inference_take_turns(
    shared: tuple[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    fake: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """Inference on one replica updated a memory another replica purged meanwhile (a review,
    2026-12-07): its commit, after the purge's, brought the memory back with the purged text
    as the old text of its history. Inference now locks what it may change, so the purge waits
    for its commit and takes what it wrote: a purge of one memory, of a scope, and the sweep of
    an expired one. The inference is held between its check of the memory and its commit, as
    long as the purge takes or a few seconds (the purge waits for it now)."""
    url, uri = shared
    secret = token()
    purger = AsyncMemory(MemoryConfig(data_dir=tmp_path / "one", graph="off", ledger_url=url, vector_uri=uri))
    inferring = AsyncMemory(fake_llm_config(tmp_path / "two", fake, ledger_url=url, vector_uri=uri))
    in_window, purged = threading.Event(), threading.Event()
    plan = inference_plan._plan

    def held(*args: object, **kwargs: object) -> object:
        in_window.set()
        purged.wait(4 if how == "expiry" else 2)
        return plan(*args, **kwargs)

    async def purge(memory_id: str, expires: float) -> dict:
        await asyncio.to_thread(in_window.wait, 60)
        # A maintenance pass of the purger's starts while its purge waits for the inference: the
        # pass waits for the ledger (its lease), so the purge must not wait for the pass inside
        # its ledger transaction (it did: a deadlock).
        threading.Timer(0.5, purger.engine.components.vectors._schedule, kwargs={"force": True}).start()
        try:
            if how == "delete_all":
                return await purger.delete_all(purge=True, user_id="u")
            if how == "expiry":  # expired while the model answered: the inference had read it live
                await asyncio.sleep(max(0.0, expires - time.time()) + 0.1)
                return dict(await purger.maintain())
            return await purger.delete(memory_id, purge=True)
        finally:
            purged.set()

    try:
        fake.push({"memory": [{"event": "ADD", "text": "User likes tea"}]})  # LiteLLM's import, before
        await inferring.add("I like tea", user_id="warm")
        monkeypatch.setattr(inference_plan, "_plan", held)
        expiry = {"expires_at": "2s"} if how == "expiry" else {}
        added = await purger.add(f"User's locker code is {secret}", user_id="u", infer=False, **expiry)
        fact, expires = added["results"][0]["id"], time.time() + 2
        time.sleep(0.3)  # past the read-consistency interval: the other replica's search finds it
        fake.push({"memory": [{"event": "UPDATE", "id": 0, "text": "User's locker code is 4321"}]})
        updated, gone = await asyncio.gather(
            inferring.add("My locker code is now 4321", user_id="u"), purge(fact, expires)
        )
        with pytest.raises(MemoryNotFoundError):
            await inferring.get(fact)
        assert [e["event"] for e in await inferring.history(fact)] == ["PURGE"]
        assert (await purger.get_all(user_id="u"))["results"] == []
        # The inference's update went first, and the purge took it.
        assert [r["event"] for r in updated["results"]] == ["UPDATE"]
        if how == "one":
            assert gone["event"] == "PURGE" and gone["memory"] == "User's locker code is 4321"
        if how == "expiry":
            assert gone["expired_ids"] == [fact]
    finally:
        await purger.close()
        await inferring.close()
