"""AsyncMemory on real SQLite + LanceDB: every operation, history, dedup, filters, scopes."""

from __future__ import annotations

import time

import pytest

from memorch import AsyncMemory, Memory, MemoryConfig, MemoryNotFoundError, ValidationError


async def test_add_get_search_update_delete_history(amem: AsyncMemory) -> None:
    added = await amem.add("I am allergic to peanuts", user_id="alice")
    [event] = added["results"]
    assert event["event"] == "ADD"
    memory_id = event["id"]
    await amem.add("My favourite city is Lisbon", user_id="alice")
    await amem.add("I play the cello on Sundays", user_id="alice")

    got = await amem.get(memory_id)
    assert got["memory"] == "I am allergic to peanuts" and got["user_id"] == "alice"

    found = await amem.search("what foods should I avoid?", user_id="alice", limit=3)
    assert found["results"][0]["id"] == memory_id
    scores = [r["score"] for r in found["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)

    updated = await amem.update(memory_id, "I am allergic to peanuts and shellfish")
    assert updated["event"] == "UPDATE" and updated["previous_memory"] == "I am allergic to peanuts"
    assert (await amem.get(memory_id))["memory"] == "I am allergic to peanuts and shellfish"
    found = await amem.search("shellfish", user_id="alice", limit=1)
    assert found["results"][0]["id"] == memory_id

    await amem.delete(memory_id)
    with pytest.raises(MemoryNotFoundError):
        await amem.get(memory_id)
    assert memory_id not in [r["id"] for r in (await amem.search("peanuts", user_id="alice"))["results"]]

    events = await amem.history(memory_id)
    assert [e["event"] for e in events] == ["ADD", "UPDATE", "DELETE"]
    assert events[0]["new_memory"] == "I am allergic to peanuts"
    assert events[1]["old_memory"] == "I am allergic to peanuts"
    assert events[1]["new_memory"] == "I am allergic to peanuts and shellfish"
    assert events[2]["is_deleted"] is True and events[2]["new_memory"] is None


async def test_only_true_repeats_are_none(amem: AsyncMemory) -> None:
    first = (await amem.add("I live in Berlin", user_id="u"))["results"][0]
    exact = (await amem.add("  i live in   BERLIN ", user_id="u"))["results"][0]
    punctuated = (await amem.add("I live in Berlin.", user_id="u"))["results"][0]
    assert exact["event"] == "NONE" and exact["id"] == first["id"]
    assert punctuated["event"] == "NONE" and punctuated["id"] == first["id"]
    other_user = (await amem.add("I live in Berlin", user_id="v"))["results"][0]
    assert other_user["event"] == "ADD"  # duplicates are judged within a scope only
    batch = await amem.add(
        [
            {"role": "user", "content": "I own a red bike"},
            {"role": "user", "content": "I own a red bike"},
            {"role": "system", "content": "ignored"},
        ],
        user_id="u",
    )
    assert [r["event"] for r in batch["results"]] == ["ADD", "NONE"]
    assert len((await amem.get_all(user_id="u"))["results"]) == 2


NEAR_DUPLICATE_PAIRS = [
    ("My flight to Paris is on Monday at 10:00", "My flight to Paris is on Tuesday at 10:00"),
    ("I am allergic to peanuts", "I am not allergic to peanuts"),
    ("Meeting with Sam at 3pm on Friday", "Meeting with Sam at 4pm on Friday"),
    ("The rent is 1200 euros a month", "The rent is 1500 euros a month"),
    ("My sister Anna lives in Porto", "My sister Maria lives in Porto"),
    ("It is -5 degrees outside", "It is 5 degrees outside"),
]


@pytest.mark.parametrize(("first", "second"), NEAR_DUPLICATE_PAIRS)
async def test_a_changed_detail_is_stored_not_dropped(amem: AsyncMemory, first: str, second: str) -> None:
    """Without a model, a near-duplicate is a new statement: stored, and pointed at the similar one."""
    old = (await amem.add(first, user_id="u"))["results"][0]
    new = (await amem.add(second, user_id="u"))["results"][0]
    assert new["event"] == "ADD" and new["id"] != old["id"] and new["memory"] == second
    stored = {r["memory"] for r in (await amem.get_all(user_id="u"))["results"]}
    assert stored == {first, second}
    if "similar" in new:  # reported when the embedding sees them as near-duplicates
        assert new["similar"]["id"] == old["id"] and new["similar"]["similarity"] >= amem.config.dedup_threshold


async def test_a_near_duplicate_is_reported_as_similar(amem: AsyncMemory) -> None:
    old = (await amem.add("My flight to Paris is on Monday at 10:00", user_id="u"))["results"][0]
    new = (await amem.add("My flight to Paris is on Tuesday at 10:00", user_id="u"))["results"][0]
    assert new["similar"]["id"] == old["id"]
    unrelated = (await amem.add("I play the cello", user_id="u"))["results"][0]
    assert "similar" not in unrelated


FLIGHT = ("My flight to Paris is on Monday at 10:00", "My flight to Paris is on Tuesday at 10:00")


@pytest.mark.parametrize("held_rows", [20_000, 0])  # the scope's embeddings in memory / too many: LanceDB
async def test_the_similar_hint_follows_every_change(
    config: MemoryConfig, monkeypatch: pytest.MonkeyPatch, held_rows: int
) -> None:
    """The hint sees a commit whose vector row is not written yet, forgets a deleted memory, and
    sees what another process (another SQLite connection) stored, from either source."""
    import memorch.engine._nearest as nearest

    monkeypatch.setattr(nearest, "MAX_ROWS", held_rows)
    slow = config.model_copy(update={"index_flush_delay": 5.0})  # rows written only before a search
    first, other = AsyncMemory(slow), AsyncMemory(slow)
    try:
        old = (await first.add(FLIGHT[0], user_id="u"))["results"][0]
        if not slow.ledger_url:  # one data directory: the row is written later (replicas: at once)
            assert first.engine.components.vectors.count() == 0
        new = (await first.add(FLIGHT[1], user_id="u"))["results"][0]
        assert new["similar"]["id"] == old["id"]
        await first.delete(old["id"])
        await first.delete(new["id"])
        again = (await first.add(FLIGHT[1] + " sharp", user_id="u"))["results"][0]
        assert "similar" not in again  # the ones it resembled are deleted
        theirs = (await other.add("I play the cello every evening", user_id="u"))["results"][0]
        await other.engine.index_sync.flush()
        time.sleep(0.3)  # past the read-consistency interval (the index's view of other processes)
        mine = (await first.add("I play the cello every single evening", user_id="u"))["results"][0]
        assert mine["similar"]["id"] == theirs["id"]
    finally:
        await first.close()
        await other.close()


MEALS_AND_TRIPS = [
    f"{who} {verb} {thing}"
    for who in ("I", "My sister", "Our neighbour", "My boss")
    for verb in ("loves", "cooked", "booked", "hates")
    for thing in ("spicy ramen", "a trip to Lisbon", "fresh figs", "the night train to Vienna", "tomato soup")
]


@pytest.mark.parametrize("filters", [None, {"topic": "food"}])
async def test_held_vectors_rank_as_the_index_does(
    config: MemoryConfig, monkeypatch: pytest.MonkeyPatch, filters: dict[str, str] | None
) -> None:
    """The vector signal from the embeddings held in memory is LanceDB's exact ranking: the same
    memories, ranks and similarities as the index gives (held rows 0: every search asks LanceDB),
    for a whole scope and for a filter's id list; another user's memories never enter it."""
    import memorch.engine._nearest as nearest

    async def vector_signal(memory: AsyncMemory) -> dict[str, tuple[int, float]]:
        found = await memory.search(
            "what food do they like", user_id="u", limit=100, threshold=0.0, explain=True, filters=filters
        )
        hits = [(r["id"], r["explain"]["vector"]) for r in found["results"] if "vector" in r["explain"]]
        return {memory_id: (v["rank"], v["similarity"]) for memory_id, v in hits}

    memory = AsyncMemory(config)
    for i, text in enumerate(MEALS_AND_TRIPS):
        topic = "travel" if "trip" in text or "train" in text else "food"
        await memory.add(text, user_id="u", infer=False, metadata={"topic": topic, "n": i})
    await memory.add("Someone else loves spicy ramen", user_id="other", infer=False, metadata={"topic": "food"})
    held = await vector_signal(memory)
    await memory.close()
    monkeypatch.setattr(nearest, "MAX_ROWS", 0)
    memory = AsyncMemory(config)
    indexed = await vector_signal(memory)
    await memory.close()
    expected = 48 if filters else 80  # the scope's (filtered) memories, all within the fetch
    assert len(held) == len(indexed) == expected
    assert [held[i][0] for i in indexed] == [indexed[i][0] for i in indexed]
    assert all(abs(held[i][1] - indexed[i][1]) < 1e-5 for i in indexed)


async def test_a_scope_too_large_to_hold_is_not_read_again_at_every_search(
    config: MemoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding that a scope is too large reads MAX_ROWS + 1 embeddings; that answer is kept for a
    while, so the scope's next searches and adds go straight to the index (and still find).
    With a shared (PostgreSQL) ledger nothing is held, and nothing is read."""
    import memorch.engine._nearest as nearest

    monkeypatch.setattr(nearest, "MAX_ROWS", 3)
    memory = AsyncMemory(config)
    try:
        for text in MEALS_AND_TRIPS[:5]:
            await memory.add(text, user_id="u", infer=False)
        reads: list[object] = []
        ledger = memory.engine.components.ledger
        counted = ledger.embeddings
        monkeypatch.setattr(ledger, "embeddings", lambda scope, limit: reads.append(scope) or counted(scope, limit))
        for _ in range(3):
            found = await memory.search("spicy ramen", user_id="u", limit=5)
            assert found["results"][0]["memory"] == "I loves spicy ramen"
        await memory.add("I loves green tea", user_id="u", infer=False)
        assert len(reads) <= 1  # the adds above may have found it too large already
        before = len(reads)
        monkeypatch.setattr(nearest, "TOO_LARGE_RECHECK_S", 0.0)
        await memory.search("spicy ramen", user_id="u", limit=5)
        held = memory.engine.store.nearest_cache() is not None
        assert len(reads) == (before + 1 if held else 0)  # counted again once the answer is old
    finally:
        await memory.close()


async def test_messages_keep_role_and_name_in_history(amem: AsyncMemory) -> None:
    result = await amem.add(
        [
            {"role": "user", "content": "My dog is called Rex", "name": "alice"},
            {"role": "assistant", "content": "Rex is a lovely name"},
        ],
        user_id="alice",
    )
    [first] = result["results"]  # without an LLM the user's turns are kept (tests/test_first_hour.py)
    history = await amem.history(first["id"])
    assert history[0]["role"] == "user" and history[0]["actor_id"] == "alice"
    said = await amem.add([{"role": "assistant", "content": "The deploy runs on Fridays"}], user_id="alice")
    assert (await amem.history(said["results"][0]["id"]))[0]["role"] == "assistant"


async def test_metadata_filters(amem: AsyncMemory) -> None:
    rows = [
        ("I run every morning", {"category": "health", "priority": 1, "tags": "sport"}),
        ("I take vitamin D", {"category": "health", "priority": 3}),
        ("I love jazz", {"category": "music", "priority": 2, "fav": True}),
        ("I read sci-fi novels", {"category": "books", "priority": 5}),
    ]
    for text, meta in rows:
        await amem.add(text, user_id="f", metadata=meta)

    async def listed(filters: dict) -> set[str]:
        return {r["memory"] for r in (await amem.get_all(user_id="f", filters=filters))["results"]}

    assert await listed({"category": "health"}) == {"I run every morning", "I take vitamin D"}
    assert await listed({"priority": {"gte": 2, "lt": 5}}) == {"I take vitamin D", "I love jazz"}
    assert await listed({"category": {"in": ["music", "books"]}}) == {"I love jazz", "I read sci-fi novels"}
    assert await listed({"category": {"nin": ["health"]}}) == {"I love jazz", "I read sci-fi novels"}
    assert await listed({"OR": [{"category": "music"}, {"priority": 5}]}) == {"I love jazz", "I read sci-fi novels"}
    assert await listed({"AND": [{"category": "health"}, {"NOT": {"priority": 1}}]}) == {"I take vitamin D"}
    assert await listed({"fav": True}) == {"I love jazz"}
    assert await listed({"tags": "*"}) == {"I run every morning"}
    assert await listed({"category": {"icontains": "HEAL"}}) == {"I run every morning", "I take vitamin D"}
    assert await listed({"created_at": {"gte": "2000-01-01"}}) == {r[0] for r in rows}
    assert await listed({"created_at": {"lt": "2000-01-01"}}) == set()

    found = await amem.search("exercise", user_id="f", filters={"category": "health"}, threshold=0)
    assert {r["memory"] for r in found["results"]} == {"I run every morning", "I take vitamin D"}
    found = await amem.search("exercise", user_id="f", filters={"category": "music"}, limit=5, threshold=0)
    assert [r["memory"] for r in found["results"]] == ["I love jazz"]


async def test_threshold_and_limit(amem: AsyncMemory) -> None:
    for text in ["I am allergic to peanuts", "The Eiffel tower is in Paris", "I drive a blue Volvo"]:
        await amem.add(text, user_id="t")
    everything = await amem.search("peanut allergy", user_id="t", limit=10, threshold=0)
    assert len(everything["results"]) == 3
    relevant = await amem.search("peanut allergy", user_id="t", limit=10)  # the default threshold
    assert [r["memory"] for r in relevant["results"]] == ["I am allergic to peanuts"]
    strict = await amem.search("peanut allergy", user_id="t", limit=10, threshold=0.5)
    assert [r["memory"] for r in strict["results"]] == ["I am allergic to peanuts"]
    assert all(r["score"] >= 0.5 for r in strict["results"])
    assert len((await amem.search("peanut allergy", user_id="t", limit=2, threshold=0))["results"]) == 2


async def test_scope_isolation_everywhere(amem: AsyncMemory) -> None:
    a = (await amem.add("Alice's secret: the safe code is 1234", user_id="alice"))["results"][0]["id"]
    await amem.add("Bob likes tea", user_id="bob")
    await amem.add("Bob's agent note", user_id="bob", agent_id="planner")

    assert [r["id"] for r in (await amem.search("safe code", user_id="bob"))["results"]].count(a) == 0
    assert all(r["user_id"] == "bob" for r in (await amem.get_all(user_id="bob"))["results"])
    assert len((await amem.get_all(user_id="bob", agent_id="planner"))["results"]) == 1
    with pytest.raises(MemoryNotFoundError):
        await amem.get(a, user_id="bob")
    with pytest.raises(MemoryNotFoundError):
        await amem.update(a, "hijacked", user_id="bob")
    with pytest.raises(MemoryNotFoundError):
        await amem.delete(a, user_id="bob")
    with pytest.raises(MemoryNotFoundError):
        await amem.history(a, user_id="bob")
    result = await amem.delete_all(user_id="bob")
    assert result["deleted"] == 2
    assert (await amem.get(a, user_id="alice"))["memory"].startswith("Alice's secret")
    assert (await amem.get_all(user_id="bob"))["results"] == []
    assert len(await amem.history(a, user_id="alice")) == 1


async def test_a_second_scope_appearing_after_searches_stays_out(amem: AsyncMemory) -> None:
    """A one-user store searches without LanceDB's scope filter (it would select every row);
    the index itself must bring the filter back once another scope's rows arrive."""
    from memorch.storage.base import Scope

    await amem.add("the safe code is 1234", user_id="alice")
    assert len((await amem.search("safe code", user_id="alice"))["results"]) == 1  # alice covers the table
    vectors = amem.engine.components.vectors
    probe = amem.engine.components.embedder.embed(["safe code"])[0]
    assert vectors._plan(Scope(user_id="alice"), None) == (None, False)
    bob = (await amem.add("the safe code for the shed is 9876", user_id="bob"))["results"][0]["id"]
    # Its row follows the add (a search writes it first); the plan is read directly.
    await amem.engine.index_sync.flush()
    assert vectors._plan(Scope(user_id="alice"), None) == ("user_id = 'alice'", True)  # small: exact
    assert bob not in {hit.id for hit in vectors.search(probe, Scope(user_id="alice"), 10)}
    assert bob not in {hit.id for hit in vectors.text_search("safe code", Scope(user_id="alice"), 10)}
    assert [r["id"] for r in (await amem.search("safe code", user_id="bob"))["results"]] == [bob]


async def test_delete_all_refuses_empty_scope_and_reset_needs_confirm(amem: AsyncMemory) -> None:
    await amem.add("keep me", user_id="k")
    with pytest.raises(ValidationError) as info:
        await amem.delete_all()
    assert info.value.error_code == "SCOPE_REQUIRED"
    with pytest.raises(ValidationError):
        await amem.reset()
    assert len((await amem.get_all(user_id="k"))["results"]) == 1
    await amem.reset(confirm=True)
    assert (await amem.get_all(user_id="k"))["results"] == []
    assert (await amem.stats())["history_events"] == 0
    assert (await amem.add("after reset", user_id="k"))["results"][0]["event"] == "ADD"


async def test_update_without_change_is_none(amem: AsyncMemory) -> None:
    memory_id = (await amem.add("same text", user_id="n"))["results"][0]["id"]
    assert (await amem.update(memory_id, "same text"))["event"] == "NONE"
    assert len(await amem.history(memory_id)) == 1
    assert (await amem.update(memory_id, "same text", metadata={"k": 1}))["event"] == "UPDATE"
    assert (await amem.get(memory_id))["metadata"] == {"k": 1}


def test_sync_facade_runs_the_async_core(mem: Memory) -> None:
    memory_id = mem.add("I am allergic to peanuts", user_id="s")["results"][0]["id"]
    hit = mem.search("what foods should I avoid?", user_id="s")["results"][0]
    assert hit["id"] == memory_id
    assert mem.update(memory_id, "I am allergic to walnuts")["event"] == "UPDATE"
    assert [e["event"] for e in mem.history(memory_id)] == ["ADD", "UPDATE"]
    assert mem.stats()["memories"] == 1


async def test_hybrid_search_fuses_meaning_and_keywords_and_explains(amem: AsyncMemory) -> None:
    texts = [
        "My locker code is QX-7731",
        "I keep my bike in the garage",
        "The gym opens at six",
        "Unicode: 東京 café naïve façade",
        "quotes ' \" and OR 1=1 -- are just text",
    ]
    ids = {t: (await amem.add(t, user_id="h"))["results"][0]["id"] for t in texts}
    found = await amem.search("QX-7731", user_id="h", limit=3, explain=True)
    top = found["results"][0]
    assert top["id"] == ids["My locker code is QX-7731"]  # an exact token: BM25 finds it
    assert top["explain"]["text"]["rank"] == 1 and top["explain"]["text"]["bm25"] > 0
    assert top["explain"]["vector"]["rank"] >= 1 and 0 <= top["score"] <= 1
    assert "explain" not in (await amem.search("QX-7731", user_id="h"))["results"][0]
    meaning = await amem.search("where is my bicycle stored?", user_id="h", limit=1)
    assert meaning["results"][0]["id"] == ids["I keep my bike in the garage"]
    for query in ["東京", "naïve", "' OR 1=1 --", 'title:" AND (', "*", "日本語の質問はどうですか"]:
        results = (await amem.search(query, user_id="h", limit=5))["results"]
        assert all(0 <= r["score"] <= 1 for r in results)
    assert (await amem.search("café", user_id="h", limit=1))["results"][0]["id"] == ids[
        "Unicode: 東京 café naïve façade"
    ]


async def test_infer_asked_for_without_a_model_says_so(amem: AsyncMemory) -> None:
    """``infer: true`` with no LLM configured stores the text as said (nothing is lost) and says
    why inference did not run; left out, the same add is the plain verbatim one."""
    asked = (await amem.add("I like chess", user_id="c", infer=True))["results"][0]
    assert asked["event"] == "ADD" and asked["memory"] == "I like chess"
    assert asked["reason"] == "stored as said: infer was asked for, but no LLM is configured (set MEMORCH_LLM_MODEL)"
    plain = (await amem.add("I like go", user_id="c"))["results"][0]
    assert plain["reason"] == "stored as said (no inference)"


async def test_an_import_keeps_the_times_it_is_given(amem: AsyncMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A given ``created_at`` is stored as given; items that share one keep their order, a
    microsecond apart (a chat's turns often share their session's time), across the import's
    batches too (two items each here)."""
    import memorch.maintenance._bulk as bulk

    monkeypatch.setattr(bulk, "BATCH", 2)
    at = "2023-04-04T19:00:00Z"
    items = [
        {"memory": "We met at the museum", "user_id": "t", "created_at": at},
        {"memory": "Then we had lunch by the river", "user_id": "t", "created_at": at},
        {"memory": "The next day it rained", "user_id": "t", "created_at": "2023-04-05T08:30:00+00:00"},
        {"memory": "And the museum was closed", "user_id": "t", "created_at": at},
    ]
    await amem.import_memories(items)
    listed = {r["memory"]: r["created_at"] for r in (await amem.get_all(user_id="t"))["results"]}
    assert listed == {
        "We met at the museum": "2023-04-04T19:00:00.000000+00:00",
        "Then we had lunch by the river": "2023-04-04T19:00:00.000001+00:00",
        "The next day it rained": "2023-04-05T08:30:00.000000+00:00",
        "And the museum was closed": "2023-04-04T19:00:00.000002+00:00",
    }
