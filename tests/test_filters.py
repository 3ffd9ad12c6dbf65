"""Wide and deep metadata filters are bad input (INVALID_FILTER, refused at once, nothing
changed), not ledger failures; filters up to the documented limits still work."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from memorch import AsyncMemory
from memorch.errors import ValidationError
from memorch.storage import filters as f

FAST_S = 1.0


def nested(key: str, depth: int, leaf: Any) -> dict[str, Any]:
    node: Any = leaf
    for _ in range(depth):
        node = {key: node}
    return node


@pytest.fixture
async def store(amem: AsyncMemory) -> AsyncMemory:
    for i in range(6):
        await amem.add(f"note number {i}", user_id="u", metadata={"n": i, "tag": f"t{i % 2}"}, infer=False)
    return amem


async def snapshot(memory: AsyncMemory) -> list[dict[str, Any]]:
    return (await memory.get_all(user_id="u", limit=1000))["results"]


async def assert_refused(memory: AsyncMemory, filters: Any) -> ValidationError:
    before = await snapshot(memory)
    errors = []
    for call in (
        lambda: memory.get_all(user_id="u", filters=filters),
        lambda: memory.search("note", user_id="u", filters=filters),
    ):
        started = time.perf_counter()
        with pytest.raises(ValidationError) as caught:
            await call()
        assert time.perf_counter() - started < FAST_S
        assert caught.value.error_code == "INVALID_FILTER"
        assert caught.value.suggestion
        errors.append(caught.value)
    assert await snapshot(memory) == before
    return errors[0]


async def test_wide_filters_are_invalid_input(store: AsyncMemory) -> None:
    # The shapes fuzzing found answering LEDGER_ERROR ("check the data directory is writable").
    error = await assert_refused(store, {"OR": [{"n": i} for i in range(2000)]})
    assert str(f.MAX_TERMS) in str(error)
    in_lists = {"AND": [{f"k{i}": {"in": list(range(1000))}} for i in range(300)]}
    error = await assert_refused(store, in_lists)
    assert str(f.MAX_VALUES) in str(error)
    await assert_refused(store, {f"k{i}": {"in": list(range(1000))} for i in range(300)})
    await assert_refused(store, {"n": {"in": list(range(f.MAX_LIST + 1))}})


async def test_huge_and_deep_filters_are_refused_at_once(store: AsyncMemory) -> None:
    await assert_refused(store, {"OR": [{"n": i} for i in range(100_000)]})
    await assert_refused(store, {f"k{i}": i for i in range(100_000)})
    await assert_refused(store, nested("NOT", 1200, {"n": 1}))
    await assert_refused(store, _or_chain(1200))
    await assert_refused(store, {"OR": [_list_chain(1200)]})


def _or_chain(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"n": 1}
    for _ in range(depth):
        node = {"OR": [node, {"n": 2}]}
    return node


def _list_chain(depth: int) -> Any:
    node: Any = {"n": 1}
    for _ in range(depth):
        node = [node]
    return node


async def test_filters_up_to_the_limits_work(store: AsyncMemory) -> None:
    widest = {"OR": [{"n": i} for i in range(f.MAX_TERMS)]}
    assert len((await store.get_all(user_id="u", filters=widest))["results"]) == 6
    values_per_list = f.MAX_VALUES // 5
    assert values_per_list <= f.MAX_LIST
    many_values = {"AND": [{"n": {"in": list(range(k, k + values_per_list))}} for k in range(5)]}
    # n must lie in [k, k + values_per_list) for k = 0..4: n in 4..5
    found = await store.get_all(user_id="u", filters=many_values)
    assert sorted(r["metadata"]["n"] for r in found["results"]) == [4, 5]
    deepest: dict[str, Any] = {"tag": "t1"}
    for _ in range(f.MAX_DEPTH):
        deepest = {"AND": [deepest]}
    hits = await store.search("note number", user_id="u", filters=deepest)
    assert hits["results"] and all(r["metadata"]["tag"] == "t1" for r in hits["results"])


@pytest.mark.parametrize(
    "filters",
    [
        {"created_at": {"gte": "yesterday"}},
        {"created_at": {"gte": "2026-13-45"}},
        {"updated_at": "garbage"},
        {"created_at": {"lt": 5}},
        {"updated_at": {"in": ["2026-01-01", "soon"]}},
        {"created_at": {"gte": "0001-01-01T00:00:00+05:00"}},  # UTC would be before year 1
    ],
)
async def test_a_time_that_is_no_date_is_refused_not_matched_to_nothing(store: AsyncMemory, filters: Any) -> None:
    """A time filter compares with ISO dates: "yesterday" compared as a string matched nothing,
    and the answer said no memory matches, as if the filter were right."""
    error = await assert_refused(store, filters)
    assert "ISO 8601" in error.message


async def test_a_time_with_an_offset_is_compared_in_utc(store: AsyncMemory) -> None:
    everything = await snapshot(store)
    newest = max(m["created_at"] for m in everything)
    assert newest.endswith("+00:00")
    moment = datetime.fromisoformat(newest)
    # Just after the newest, written in a zone west of UTC: as a string it sorts hours before it.
    west = (moment + timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-5)))
    after = await store.get_all(user_id="u", filters={"created_at": {"gte": west.isoformat()}})
    assert after["results"] == []
    until = await store.get_all(user_id="u", filters={"created_at": {"lt": west.isoformat()}}, limit=1000)
    assert len(until["results"]) == len(everything)
    dated = await store.get_all(user_id="u", filters={"created_at": {"gte": moment.date().isoformat()}}, limit=1000)
    assert len(dated["results"]) >= 1
    # Forms Python reads but the ledger does not write (a space, no offset: UTC; a basic date).
    naive = (moment + timedelta(microseconds=1)).replace(tzinfo=None).isoformat(sep=" ")
    assert (await store.get_all(user_id="u", filters={"created_at": {"gte": naive}}))["results"] == []
    basic = moment.date().strftime("%Y%m%d")
    assert len((await store.get_all(user_id="u", filters={"created_at": {"gte": basic}}, limit=1000))["results"]) >= 1


async def test_a_bare_date_is_its_whole_day(amem: AsyncMemory) -> None:
    """A date means the day, not its midnight: items imported with a date alone (stored at
    midnight and a microsecond after) and one that afternoon are all "on" 2026-01-31 (a review
    found "gt" dropping the first and "lte" keeping only it)."""
    said = [("I cooked curry", "2026-01-31"), ("I baked bread", "2026-01-31"), ("I ran 5 km", "2026-01-31")]
    items = [{"memory": m, "user_id": "d", "created_at": at} for m, at in said]
    items.append({"memory": "I read a book", "user_id": "d", "created_at": "2026-01-31T10:00:00Z"})
    items.append({"memory": "I swam", "user_id": "d", "created_at": "2026-02-01T08:00:00Z"})
    await amem.import_memories(items)

    async def on(condition: Any) -> set[str]:
        found = await amem.get_all(user_id="d", filters={"created_at": condition})
        return {m["memory"] for m in found["results"]}

    that_day = {"I cooked curry", "I baked bread", "I ran 5 km", "I read a book"}
    assert await on("2026-01-31") == that_day
    assert await on({"in": ["2026-01-31"]}) == that_day
    assert await on({"gte": "2026-01-31", "lte": "2026-01-31"}) == that_day
    assert await on({"gt": "2026-01-31"}) == {"I swam"}
    assert await on({"lt": "2026-02-01"}) == that_day
    assert await on({"ne": "2026-01-31"}) == {"I swam"}
    assert await on({"nin": ["2026-01-31", "2026-02-01"]}) == set()
    assert await on({"gte": "2026-01-31T10:00:00Z", "lt": "2026-02-01"}) == {"I read a book"}
