"""The time a query names: "last week", "two weeks ago", "yesterday", "last Friday", "this year".

A query that names a time asks about what was said then. ``window`` resolves the query's first
such phrase (English) against the moment the query is asked into a span of time; the search then
adds a signal for the memories created in it (``_search``). Only phrases that fix a span are read:
"how many days ago did I ..." asks for a length of time and names none, and "recently" or "in
March" are left alone (the first is vague; the second names no year and is often a topic).

Why not a library: dateparser (the maintained one) was measured on such questions (2026-12): it
returns a moment, not a span ("last month" -> the same day a month ago), read "we" in "what did
we talk about" as a date, found nothing in "last weekend", took ~1 s to import and 580 ms for its
first search. The phrases that matter here are few and are written out below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DAY = timedelta(days=1)
# A memory about a time is often said the day after (or the zone differs): each span is widened
# by this on both sides.
SLACK = DAY
UNITS = {"day": DAY, "week": 7 * DAY, "month": timedelta(days=30.44), "year": timedelta(days=365.25)}
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "couple of": 2,
    "few": 3,
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER = r"(?P<n>\d{1,3}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + ")"
_UNIT = r"(?P<unit>day|week|month|year)s?\b"
AGO = re.compile(rf"\b{_NUMBER}\s+{_UNIT}\s+ago\b", re.IGNORECASE)
# "the past week", "the last 3 days": up to now ("last week" alone is the calendar week, PERIOD).
WITHIN = re.compile(rf"\b(?:past|last)\s+(?:{_NUMBER}\s+)?{_UNIT}", re.IGNORECASE)
PERIOD = re.compile(r"\b(?P<which>last|previous|this)\s+(?P<period>week|weekend|month|year)\b", re.IGNORECASE)
WEEKDAY = re.compile(rf"\blast\s+(?P<day>{'|'.join(WEEKDAYS)})\b", re.IGNORECASE)
# Before "last", a noun phrase: "the last day of the trip", "my last year of college".
OWNERS = frozenset(("the", "my", "our", "your", "his", "her", "their", "its", "that"))
DAYS = re.compile(
    r"\b(?P<word>yesterday|today|tonight|last\s+night|this\s+(?:morning|afternoon|evening))\b", re.IGNORECASE
)

PATTERNS = (AGO, PERIOD, WEEKDAY, WITHIN, DAYS)
# Words before a phrase that belong to it ("in the past week", "over the last 3 days").
LEAD_INS = frozenset(("the", "in", "over", "during", "within"))


@dataclass(frozen=True)
class Window:
    """A span of time, ``start`` inclusive, ``end`` exclusive (aware datetimes), and the phrase."""

    start: datetime
    end: datetime
    phrase: str
    topic: str  # the query without the phrase (the query itself if nothing else is left)


def window(query: str, asked_at: datetime) -> Window | None:
    """The span the query's first time phrase names, widened by ``SLACK``; None without one.
    ``asked_at`` is aware: "yesterday" is a day in its time zone."""
    # The earliest phrase; at one position the first pattern listed ("last week": PERIOD).
    found = [m for pattern in PATTERNS for m in pattern.finditer(query) if not _names_a_topic(m, query)]
    if not found:
        return None
    match = min(found, key=lambda m: (m.start(), PATTERNS.index(m.re)))
    # No overflow: ``asked_at`` is now or a moment validation keeps within the years 1900-9000.
    start, end = _span(match, asked_at)
    topic = _without(query, match)
    return Window(start - SLACK, min(end + SLACK, asked_at + SLACK), match.group(0), topic)


def _without(query: str, match: re.Match[str]) -> str:
    """The query without the time phrase: "what did I cook last week?" -> "what did I cook?"."""
    before = query[: match.start()].split()
    while before and before[-1].lower() in LEAD_INS:  # "in the last 3 days"
        before.pop()
    rest = f"{' '.join(before)} {query[match.end() :].lstrip()}".strip()
    rest = re.sub(r"\s+([?.,!;:])", r"\1", rest).lstrip(" ,;:")
    return rest if re.search(r"\w", rest) else query


def _names_a_topic(match: re.Match[str], query: str) -> bool:
    """Whether "last ..." or "today" is part of a noun phrase, not a time counted from now: "the
    last day of the trip", "my last year of college", "the last month I lived in Paris", "a week
    from today" (but "last year I went to Japan", "in the last 3 days")."""
    before = query[: match.start()].split()
    previous = before[-1].lower() if before else ""
    if match.re is DAYS:
        return previous in ("from", "until", "till")
    if not match.group(0).lower().startswith("last") or previous not in OWNERS:
        return False
    if match.re is WITHIN and match.group("n"):  # "the last 3 days" is a span; "... of the trip" not
        after = query[match.end() :].split()
        return bool(after) and after[0].lower() == "of"
    return True


def _span(match: re.Match[str], asked_at: datetime) -> tuple[datetime, datetime]:
    today = asked_at.replace(hour=0, minute=0, second=0, microsecond=0)
    if match.re is AGO:
        length = _count(match.group("n")) * UNITS[match.group("unit").lower()]
        # "two weeks ago" is about 10-18 days ago: a quarter of the length either side.
        reach = max(DAY, length / 4)
        return asked_at - length - reach, asked_at - length + reach
    if match.re is WITHIN:
        count = _count(match.group("n")) if match.group("n") else 1
        return asked_at - count * UNITS[match.group("unit").lower()], asked_at
    if match.re is PERIOD:
        return _period(match.group("which").lower(), match.group("period").lower(), today, asked_at)
    if match.re is WEEKDAY:
        back = (today.weekday() - WEEKDAYS.index(match.group("day").lower())) % 7 or 7
        return today - back * DAY, today - (back - 1) * DAY
    word = match.group("word").lower()
    if word == "yesterday" or word.startswith("last"):
        return today - DAY, today
    return today, asked_at


def _period(which: str, period: str, today: datetime, asked_at: datetime) -> tuple[datetime, datetime]:
    if period in ("week", "weekend"):
        monday = today - today.weekday() * DAY
        if period == "weekend":  # the latest Saturday and Sunday that have begun
            saturday = monday + 5 * DAY if today.weekday() >= 5 else monday - 2 * DAY
            if which != "this" and today.weekday() >= 5:
                saturday -= 7 * DAY
            return saturday, saturday + 2 * DAY
        return (monday, asked_at) if which == "this" else (monday - 7 * DAY, monday)
    if period == "month":
        first = today.replace(day=1)
        if which == "this":
            return first, asked_at
        return (first - DAY).replace(day=1), first
    first = today.replace(month=1, day=1)
    return (first, asked_at) if which == "this" else (first.replace(year=first.year - 1), first)


def _count(word: str) -> int:
    word = " ".join(word.lower().split())
    return int(word) if word.isdigit() else NUMBERS[word]
