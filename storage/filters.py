"""Metadata filters: validated, then compiled to parameterized SQLite SQL.

Grammar (mem0-compatible)::

    {"category": "food"}                          equality
    {"priority": {"gte": 2, "lt": 5}}             ranges: eq ne gt gte lt lte
    {"tag": {"in": ["a", "b"]}}                   membership: in nin
    {"note": {"contains": "x"}}                   substring: contains icontains
    {"topic": "*"}                                the key exists
    {"AND": [f1, f2]}, {"OR": [...]}, {"NOT": f}  logic (any case); several keys = AND
    {"created_at": {"gte": "2026-01-01"}}         timestamps compare as ISO 8601 strings

User values never enter SQL text: keys are checked against a strict pattern and every value is
a bound parameter, so quotes, ``OR 1=1`` or ``;--`` are just strings to compare with.

Size limits (``INVALID_FILTER`` past them, checked before anything is compiled or queried):
nesting at most ``MAX_DEPTH`` levels, at most ``MAX_TERMS`` conditions in all, at most
``MAX_LIST`` values per ``in``/``nin`` list and ``MAX_VALUES`` bound values in all. A filter is
a selection an assistant writes, not a data set: a longer list of ids or tags belongs in a
narrower scope or several calls. SQLite would refuse far sooner than most JSON limits: an ``OR``
of n conditions parses to an expression n deep (SQLITE_MAX_EXPR_DEPTH is 1,000), and a statement
binds at most 32,766 values.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from memorch.errors import ValidationError
from memorch.storage.expiry import stamp

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
COLUMN_FIELDS = {"created_at", "updated_at"}
COMPARISONS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
OPERATORS = sorted([*COMPARISONS, "in", "nin", "contains", "icontains"])
LOGIC = {"and", "or", "not"}
# Levels of AND/OR/NOT nesting.
MAX_DEPTH = 8
# Conditions (field comparisons) in the whole filter: keeps the SQL expression well inside
# SQLite's depth limit of 1,000 whatever the shape of the AND/OR tree.
MAX_TERMS = 200
# Values in one in/nin list, and bound values in the whole filter (well inside 32,766, with
# room for the scope's and the query's own parameters).
MAX_LIST = 1000
MAX_VALUES = 5000

# SQLite integers are 64-bit.
SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1

Scalar = str | int | float | bool | None


SHAPE_HINT = (
    'use filters like {"category": "food"}, {"priority": {"gte": 2}}, '
    '{"tag": {"in": ["a", "b"]}} or {"OR": [...]}; operators: ' + ", ".join(OPERATORS)
)
SIZE_HINT = (
    f"narrow the filter: at most {MAX_DEPTH} levels of AND/OR/NOT, {MAX_TERMS} conditions, "
    f"{MAX_LIST} values per in/nin list and {MAX_VALUES} values in all; pass user_id/agent_id/run_id "
    "to narrow by scope, or split the request into several calls"
)


def _invalid(message: str, suggestion: str = SHAPE_HINT, **details: Any) -> ValidationError:
    return ValidationError(message, error_code="INVALID_FILTER", details=details, suggestion=suggestion)


def compile_filters(filters: dict[str, Any] | None) -> tuple[str, list[Any]] | None:
    """Return ``(sql, params)`` over the ``memories`` table, or None for no filter."""
    if filters is None or filters == {}:
        return None
    if not isinstance(filters, dict):
        raise _invalid("filters must be a JSON object", got=type(filters).__name__)
    check_size(filters)
    params: list[Any] = []
    return _node(filters, params, 0), params


def check_size(filters: Any) -> None:
    """Refuse a filter past the size limits, without recursion and without walking past the
    first limit crossed: a list of 100,000 filters or nesting 1,200 deep is refused at once."""
    terms = values = 0
    stack: list[tuple[Any, int]] = [(filters, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _invalid(f"filters nest deeper than {MAX_DEPTH} levels", SIZE_HINT, max_depth=MAX_DEPTH)
        if isinstance(node, list):
            if len(node) > MAX_TERMS:
                raise _too_wide(len(node))
            if any(isinstance(item, list) for item in node):
                raise _invalid("each filter in an AND/OR list must be a JSON object, not a list")
            stack.extend((item, depth) for item in node)
            continue
        if not isinstance(node, dict):
            continue  # shape errors are reported by the compiler, with the key
        if len(node) > MAX_TERMS:
            raise _too_wide(len(node))
        for key, value in node.items():
            if isinstance(key, str) and key.lower() in LOGIC:
                stack.append((value, depth + 1))
                continue
            operands = value.values() if isinstance(value, dict) else [value]
            terms += max(1, len(operands))
            values += sum(len(v) if isinstance(v, list) else 1 for v in operands)
            if terms > MAX_TERMS:
                raise _too_wide(terms)
            if values > MAX_VALUES:
                raise _invalid(
                    f"filters may compare with at most {MAX_VALUES} values in all (in/nin lists included)",
                    SIZE_HINT,
                    max_values=MAX_VALUES,
                )


def _too_wide(count: int) -> ValidationError:
    return _invalid(
        f"filters may hold at most {MAX_TERMS} conditions in all (this one has more than {MAX_TERMS})",
        SIZE_HINT,
        max_terms=MAX_TERMS,
        got_at_least=min(count, MAX_TERMS + 1),
    )


def _node(node: Any, params: list[Any], depth: int) -> str:
    if depth > MAX_DEPTH:
        raise _invalid(f"filters nest deeper than {MAX_DEPTH} levels", SIZE_HINT, max_depth=MAX_DEPTH)
    if not isinstance(node, dict) or not node:
        raise _invalid("each filter must be a non-empty JSON object")
    parts = [_entry(key, value, params, depth) for key, value in node.items()]
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _entry(key: Any, value: Any, params: list[Any], depth: int) -> str:
    if not isinstance(key, str):
        raise _invalid("filter keys must be strings")
    logic = key.lower()
    if logic in LOGIC:
        return _logic(logic, value, params, depth)
    return _field(key, value, params)


def _logic(op: str, value: Any, params: list[Any], depth: int) -> str:
    if op == "not":
        return f"NOT ({_node(value, params, depth + 1)})"
    if not isinstance(value, list) or not value:
        raise _invalid(f"{op.upper()} takes a non-empty list of filters")
    joined = f" {op.upper()} ".join(_node(item, params, depth + 1) for item in value)
    return f"({joined})"


def _column(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise _invalid("filter keys may use letters, digits, '_', '.', '-' (at most 64 characters)", key=key[:80])
    if key in COLUMN_FIELDS:
        return key
    return f"json_extract(metadata, '$.\"{key}\"')"  # key matched KEY_PATTERN: no quotes inside


def _scalar(value: Any, key: str) -> Scalar:
    if key in COLUMN_FIELDS:
        return _moment(value, key)
    if isinstance(value, str):
        return _text(value, key)
    if isinstance(value, int) and not isinstance(value, bool) and not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
        # sqlite3 raises OverflowError binding it (fuzzer: an INTERNAL_ERROR for {"priority": 2**63}).
        raise _invalid(f"filter numbers must be within ±2**63 (got {str(value)[:40]})", key=key)
    if value is None or isinstance(value, bool | int | float):
        return value
    raise _invalid("filter values must be strings, numbers, booleans or null", key=key)


def _text(value: str, key: str) -> str:
    """A string SQLite can bind: a lone surrogate cannot be encoded as UTF-8 (tests/test_fuzz.py
    found it as an INTERNAL_ERROR, a UnicodeEncodeError from sqlite3)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid("filter values must be valid Unicode text (no lone surrogates)", key=key) from None
    return value


def _moment(value: Any, key: str) -> Scalar:
    """A ``created_at`` / ``updated_at`` operand: an ISO 8601 date or datetime, written as the
    ledger writes times (UTC; no offset means UTC, a date its midnight), so any form Python reads
    ("20260131", "2026-01-31 10:00", "+05:00") compares right. Anything else would compare as a
    string and match nothing, silently ("yesterday", "2026-13-45")."""
    if value is None:
        return None
    try:
        moment = stamp(datetime.fromisoformat(value)) if isinstance(value, str) else None
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        moment = None
    if moment is None:
        raise _invalid(
            f"{key} compares with an ISO 8601 date or datetime such as '2026-01-31' or '2026-01-31T09:00:00Z' "
            f"(got {str(value)[:40]!r})",
            "pass a date such as {'created_at': {'gte': '2026-01-01'}}",
            key=key,
        )
    return moment


def _field(key: str, value: Any, params: list[Any]) -> str:
    column = _column(key)
    if value == "*":
        return f"{column} IS NOT NULL"
    if not isinstance(value, dict):
        return _condition(column, key, "eq", value, params)
    if not value:
        raise _invalid("an operator object needs at least one operator", key=key)
    parts = [_operator(column, key, op, operand, params) for op, operand in value.items()]
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _operator(column: str, key: str, op: Any, operand: Any, params: list[Any]) -> str:
    if op in COMPARISONS:
        return _condition(column, key, op, operand, params)
    if op in ("in", "nin"):
        if not isinstance(operand, list) or not 0 < len(operand) <= MAX_LIST:
            hint = SIZE_HINT if isinstance(operand, list) and operand else SHAPE_HINT  # too long, or not a list
            raise _invalid(f"'{op}' takes a list of 1 to {MAX_LIST} values", hint, key=key)
        if key in COLUMN_FIELDS:  # each a moment or a whole day
            any_of = "(" + " OR ".join(_condition(column, key, "eq", item, params) for item in operand) + ")"
            return any_of if op == "in" else f"NOT {any_of}"
        params.extend(_scalar(item, key) for item in operand)
        marks = ", ".join("?" * len(operand))
        return f"{column} {'IN' if op == 'in' else 'NOT IN'} ({marks})"
    if op in ("contains", "icontains"):
        if not isinstance(operand, str):
            raise _invalid(f"'{op}' takes a string", key=key)
        operand = _text(operand, key)
        if op == "icontains":
            params.append(operand.lower())
            return f"instr(lower({column}), ?) > 0"
        params.append(operand)
        return f"instr({column}, ?) > 0"
    raise _invalid(f"unknown filter operator {op!r}", key=key, operator=str(op)[:40])


def _condition(column: str, key: str, op: str, value: Any, params: list[Any]) -> str:
    """``column op value``; a time column compared with a bare date compares with that whole day."""
    day = _day(value) if key in COLUMN_FIELDS else None
    if day is None:
        return _compare(column, op, _scalar(value, key), params)
    start, end = day
    if op in ("gte", "lt"):  # from the day's start; before it
        params.append(start)
        return f"{column} {COMPARISONS[op]} ?"
    if op in ("gt", "lte"):  # after the day; up to its end
        params.append(end)
        return f"{column} {'>=' if op == 'gt' else '<'} ?"
    params.extend([start, end])
    within = f"({column} >= ? AND {column} < ?)"
    return within if op == "eq" else f"NOT {within}"


def _day(value: Any) -> tuple[str, str] | None:
    """A bare ISO date ("2026-01-31", "20260131") as the UTC times its day starts and ends; None
    for anything else. A day, not its midnight: "lte 2026-01-31" includes that afternoon."""
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return stamp(start), stamp(start + timedelta(days=1))
    except (ValueError, OverflowError):  # not a bare date (a time, or nothing), or the last day
        return None


def _compare(column: str, op: str, value: Scalar, params: list[Any]) -> str:
    if value is None:
        if op not in ("eq", "ne"):
            raise _invalid(f"'{op}' cannot compare with null")
        return f"{column} IS {'NOT ' if op == 'ne' else ''}NULL"
    params.append(value)
    return f"{column} {COMPARISONS[op]} ?"
