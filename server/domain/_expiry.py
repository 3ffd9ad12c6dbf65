"""When a memory stops being true: ``expires_at`` as given to ``add`` and ``update``, the
per-scope default (``MEMORCH_DEFAULT_EXPIRY``), durations (``30d``; also
``MEMORCH_HISTORY_RETENTION``), and the mark that carries an add's expiry to the records it
makes (pure functions, no I/O).

An add's expiry travels in its metadata's reserved ``_memorch`` object (``EXPIRY_MARK``), as the
add's other marks do, so every path that turns an add into records (verbatim, inference,
background inference, a procedural summary) carries it without a parameter of its own;
``take_expiry`` moves it into the record's ``expires_at`` when the record is built
(``_records.new_record``), and it is never stored in the metadata.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.errors import ValidationError
from memorch.storage.base import SCOPE_KEYS, Scope
from memorch.storage.expiry import stamp  # as the ledger writes times: text order is time order

EXPIRY_MARK = "expires_at"
NEVER = "never"  # update: remove the expiry
_DURATION = re.compile(r"^(\d{1,7})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=36_500)  # a hundred years: beyond is "never", and near datetime's end
# The scope part whose default applies, most specific first: a run's memory gets the run default.
DEFAULT_ORDER = ("run_id", "agent_id", "user_id")


def _examples() -> str:
    """Example values for a suggestion: a month from today, so an example is a future time."""
    ahead = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    return f'"{ahead}", "{ahead}T18:00:00Z" or a duration like "7d" (s, m, h, d, w)'


def duration(value: Any, name: str) -> timedelta:
    """A duration such as ``90d`` (a whole number and one of s, m, h, d, w), strictly: anything
    else, zero, or more than a hundred years is a ``ValueError`` naming ``name``."""
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{name} must be a duration like 90d (a whole number, then s, m, h, d or w)")
    length = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if not timedelta(0) < length <= MAX_DURATION:
        raise ValueError(f"{name} must be more than 0 and at most 36500d")
    return length


def _moment(text: str) -> datetime:
    """An ISO date (the end of that day, UTC) or datetime (naive = UTC), as for ``as_of``."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time.max, tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _invalid(message: str, value: Any) -> ValidationError:
    return ValidationError(
        message,
        error_code="INVALID_EXPIRY",
        details={"expires_at": str(value)[:80]},
        suggestion=f"pass expires_at as a future time or a duration: {_examples()}; omit it to keep the memory",
    )


def expires_at(value: Any, now: datetime, allow_never: bool = False) -> str | None:
    """``expires_at`` as given (None: not given): an ISO date or time in the future, or a
    duration from ``now``; ``allow_never`` (update): ``"never"`` removes the expiry, returned as
    ``NEVER``. Anything else is an ``INVALID_EXPIRY`` ValidationError, before anything is written."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid("expires_at must be a string: an ISO date or time, or a duration", value)
    text = value.strip()
    if allow_never and text.lower() == NEVER:
        return NEVER
    if _DURATION.match(text):
        try:
            return stamp(now + duration(text, "expires_at"))
        except ValueError as exc:
            raise _invalid(str(exc), value) from None
    try:
        moment = _moment(text)
    except ValueError:
        raise _invalid(f"expires_at {text[:40]!r} is neither an ISO date or time nor a duration", value) from None
    if moment <= now:
        raise _invalid(f"expires_at {text[:40]!r} is not in the future", value)
    if moment - now > MAX_DURATION:
        raise _invalid("expires_at is more than a hundred years away", value)
    return stamp(moment)


def default_rules(value: Any) -> dict[str, str]:
    """``MEMORCH_DEFAULT_EXPIRY`` checked: scope part → duration, e.g. ``{"run_id": "7d"}``."""
    if not isinstance(value, dict):
        raise ValueError('must map scope parts to durations, e.g. {"run_id": "7d"}')
    for key, length in value.items():
        if key not in SCOPE_KEYS:
            raise ValueError(f"{key!r} is not one of {', '.join(SCOPE_KEYS)}")
        duration(length, f"the default expiry of {key}")
    return {key: str(length).strip() for key, length in value.items()}


def default_expiry(rules: dict[str, str], scope: Scope, now: datetime) -> str | None:
    """The expiry a new memory of ``scope`` gets when its add names none: the rule of the most
    specific part the scope has (run, then agent, then user); None when no rule applies."""
    for key in DEFAULT_ORDER:
        if getattr(scope, key) is not None and key in rules:
            return stamp(now + duration(rules[key], key))
    return None


def with_expiry(metadata: dict[str, Any], expiry: str | None) -> dict[str, Any]:
    """``metadata`` carrying ``expiry`` in its reserved marks (unchanged when None)."""
    if expiry is None:
        return metadata
    return {**metadata, RESERVED_METADATA_KEY: {**metadata.get(RESERVED_METADATA_KEY, {}), EXPIRY_MARK: expiry}}


def take_expiry(metadata: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``metadata`` without the expiry mark (and without an emptied ``_memorch``), and the mark."""
    marks = metadata.get(RESERVED_METADATA_KEY)
    if not isinstance(marks, dict) or EXPIRY_MARK not in marks:
        return metadata, None
    rest = {k: v for k, v in marks.items() if k != EXPIRY_MARK}
    cleaned = {k: v for k, v in metadata.items() if k != RESERVED_METADATA_KEY}
    if rest:
        cleaned[RESERVED_METADATA_KEY] = rest
    return cleaned, marks[EXPIRY_MARK]
