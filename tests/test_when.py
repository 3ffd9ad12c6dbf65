"""A time the query names: resolved against when it is asked, and the memories said then rank
first; imported items keep when they were said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memorch import AsyncMemory
from memorch.errors import ValidationError
from memorch.retrieval._when import SLACK, window

ASKED = datetime(2023, 4, 5, 19, 25, tzinfo=UTC)  # a Wednesday


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("what did I eat yesterday?", "2023-04-04", "2023-04-05"),
        ("what did we talk about last night", "2023-04-04", "2023-04-05"),
        ("What did I start listening to last Friday?", "2023-03-31", "2023-04-01"),
        ("Where did I go last week?", "2023-03-27", "2023-04-03"),  # the calendar week, Monday first
        ("what game did I beat last weekend", "2023-04-01", "2023-04-03"),
        ("What certification did I complete last month?", "2023-03-01", "2023-04-01"),
        ("what did I read last year", "2022-01-01", "2023-01-01"),
        ("what is new this week", "2023-04-03", "2023-04-05T19:25:00"),
        ("how many weddings this year", "2023-01-01", "2023-04-05T19:25:00"),
        ("anything in the past 3 days?", "2023-04-02T19:25:00", "2023-04-05T19:25:00"),
        ("what did I buy in the last 3 days?", "2023-04-02T19:25:00", "2023-04-05T19:25:00"),
        ("last year I went to Japan, where did I stay?", "2022-01-01", "2023-01-01"),
    ],
)
def test_a_phrase_names_a_span_counted_from_when_it_is_asked(query: str, start: str, end: str) -> None:
    span = window(query, ASKED)
    assert span is not None, query
    assert (span.start, span.end) == (day(start) - SLACK, min(day(end) + SLACK, ASKED + SLACK))


def test_ago_is_about_that_long_ago() -> None:
    span = window("I went to an art event two weeks ago, where was it?", ASKED)
    assert span is not None and span.phrase == "two weeks ago"
    middle = span.start + (span.end - span.start) / 2
    assert abs(middle - (ASKED - timedelta(days=14))) < timedelta(hours=1)
    assert timedelta(days=8) < span.end - span.start < timedelta(days=10)  # a quarter either side, and the slack


@pytest.mark.parametrize(
    "query",
    [
        "How many days ago did I meet Emma?",
        "what is my job?",
        "what did I do recently",
        "weekend plans",
        "last",
        "what happened on the last day of the trip?",
        "my last year of college",
        "the last month I lived in Paris",
        "the last 3 days of the trip",
        "a week from today",
    ],
)
def test_no_span_without_a_phrase_that_fixes_one(query: str) -> None:
    assert window(query, ASKED) is None


def test_the_weekend_just_begun_is_this_one_not_the_last() -> None:
    saturday = datetime(2023, 4, 8, 10, 0, tzinfo=UTC)
    last, this = window("last weekend", saturday), window("this weekend", saturday)
    assert last is not None and this is not None
    assert last.start == day("2023-04-01") - SLACK and this.start == day("2023-04-08") - SLACK


DINNERS = [
    ("I cooked a mushroom risotto for dinner", "2023-03-08T19:00:00Z"),
    ("I cooked a lentil curry for dinner", "2023-03-29T19:00:00Z"),
    ("I cooked pasta with pesto for dinner", "2023-04-04T19:00:00Z"),
    ("I went running in the park", "2023-03-30T07:00:00Z"),
]


async def test_the_memory_said_in_the_named_time_ranks_first(amem: AsyncMemory) -> None:
    await amem.import_memories([{"memory": m, "user_id": "u", "created_at": at} for m, at in DINNERS])
    asked = ASKED.isoformat()
    expected = {
        "what did I cook last week?": "lentil curry",
        "what did I cook for dinner yesterday?": "pasta with pesto",
        "what did I cook about four weeks ago?": "mushroom risotto",
    }
    for query, dish in expected.items():
        found = (await amem.search(query, user_id="u", asked_at=asked, explain=True))["results"]
        assert dish in found[0]["memory"], (query, [f["memory"] for f in found])
        assert "time" in found[0]["explain"]
    # The same questions without a time phrase rank by meaning alone: no time signal.
    plain = (await amem.search("what did I cook?", user_id="u", asked_at=asked, explain=True))["results"]
    assert all("time" not in f["explain"] for f in plain)
    # A span that holds every candidate tells nothing the meaning does not: no time signal.
    year = (await amem.search("what did I cook this year?", user_id="u", asked_at=asked, explain=True))["results"]
    assert year and all("time" not in f["explain"] for f in year)
    # A time phrase with nothing said then changes no order and hides nothing.
    empty = (await amem.search("what did I cook last year?", user_id="u", asked_at=asked))["results"]
    assert {f["memory"] for f in empty} >= {m for m, _ in DINNERS[:3]}


async def test_a_question_about_a_time_finds_what_was_said_then(amem: AsyncMemory) -> None:
    """ "What did I do yesterday?" shares few words with anything said: what was said then is part
    of the answer, and the closest of it in meaning passes the default threshold."""
    await amem.import_memories([{"memory": m, "user_id": "u", "created_at": at} for m, at in DINNERS])
    asked = ASKED.isoformat()
    found = (await amem.search("what did I do yesterday?", user_id="u", asked_at=asked, explain=True))["results"]
    said = {f["memory"]: f for f in found}
    pesto = said["I cooked pasta with pesto for dinner"]  # the only memory of that day
    # Being said then counts 0.5, times the share of candidates from other times (3 of 4 here).
    assert pesto["explain"]["time"]["relevance"] == pytest.approx(0.5 * 3 / 4)
    assert pesto["score"] >= 0.3
    order = [f["memory"] for f in found]
    assert order.index(pesto["memory"]) < order.index("I cooked a mushroom risotto for dinner")
    # Without the time, the same memory scores under the threshold.
    plain = (await amem.search("what did I do?", user_id="u", asked_at=asked, threshold=0))["results"]
    assert {f["memory"]: f["score"] for f in plain}[pesto["memory"]] < 0.3


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("I saw a sports event two weeks ago. What was the event?", "I saw a sports event. What was the event?"),
        ("what did we talk about yesterday?", "what did we talk about?"),
        ("In the last 3 days, what did I eat?", "what did I eat?"),
        ("what did I do over the past week", "what did I do"),
        ("yesterday", "yesterday"),  # nothing else to search by
    ],
)
def test_the_query_without_its_time_phrase(query: str, topic: str) -> None:
    span = window(query, ASKED)
    assert span is not None and span.topic == topic


EVENTS = [
    ("I played in the company's charity soccer tournament today", "2023-03-22T15:00:00Z"),
    ("Two weeks ago I thought I would never finish the quarterly report, and it is done", "2023-04-04T09:00:00Z"),
    ("Two weeks ago I started a sourdough starter, and it is two weeks old", "2023-04-03T09:00:00Z"),
    ("I fixed the leaking kitchen tap", "2023-03-10T12:00:00Z"),
]


async def test_a_time_phrase_is_not_searched_as_words_when_something_was_said_then(amem: AsyncMemory) -> None:
    """ "Two weeks ago" names when, not what: memories that happen to say "two weeks ago" are no
    answer to "what sports event did I mention two weeks ago?". When the scope holds memories of
    that span (and others), the phrase is left out of the words and meaning searched, and the time
    signal alone carries it; with nothing said then, the phrase is searched as words."""
    await amem.import_memories([{"memory": m, "user_id": "u", "created_at": at} for m, at in EVENTS])
    query = "I mentioned a sports event two weeks ago. What was the event?"

    async def search(asked_at: datetime) -> tuple[str, set[str]]:
        found = await amem.search(query, user_id="u", asked_at=asked_at.isoformat(), threshold=0, explain=True)
        hits = found["results"]
        return hits[0]["memory"], {f["memory"] for f in hits if "text" in f["explain"]}

    saying_it = {m for m, _ in EVENTS[1:3]}
    # Asked then, the phrase is left out: the memories that merely say "two weeks ago" match no word.
    first, matched = await search(ASKED)
    assert first == EVENTS[0][0] and not saying_it & matched
    # Asked a year later, nothing was said two weeks before: the phrase's words are searched.
    first, matched = await search(ASKED + timedelta(days=365))
    assert first in saying_it and saying_it <= matched


async def test_imported_items_keep_when_they_were_said_in_order(amem: AsyncMemory) -> None:
    await amem.import_memories(
        [{"memory": f"turn {i} of the chat", "user_id": "u", "created_at": "2023-03-01T10:00:00Z"} for i in range(3)]
    )
    listed = (await amem.get_all(user_id="u"))["results"]
    times = {m["memory"]: m["created_at"] for m in listed}
    assert all(t.startswith("2023-03-01T10:00:00") for t in times.values())
    assert times["turn 0 of the chat"] < times["turn 1 of the chat"] < times["turn 2 of the chat"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ({"asked_at": "yesterday"}, "INVALID_ASKED_AT"),
        ({"asked_at": 20230405}, "INVALID_ASKED_AT"),
        ({"asked_at": "0001-01-01"}, "INVALID_ASKED_AT"),  # "last month" would be before year 1
        ({"asked_at": "9999-12-31"}, "INVALID_ASKED_AT"),
    ],
)
async def test_a_bad_asked_at_is_refused(amem: AsyncMemory, call: dict, code: str) -> None:
    with pytest.raises(ValidationError) as error:
        await amem.search("what did I cook last week?", user_id="u", **call)
    assert error.value.error_code == code and error.value.suggestion


@pytest.mark.parametrize("created_at", ["2999-01-01", "last tuesday", 5, "0001-01-01T00:00:00+01:00"])
async def test_an_import_with_a_bad_or_future_time_changes_nothing(amem: AsyncMemory, created_at: object) -> None:
    items = [{"memory": "fine", "user_id": "u"}, {"memory": "said when?", "user_id": "u", "created_at": created_at}]
    with pytest.raises(ValidationError) as error:
        await amem.import_memories(items)
    assert error.value.error_code == "INVALID_CREATED_AT" and error.value.details["item"] == 2
    assert (await amem.get_all(user_id="u"))["results"] == []
