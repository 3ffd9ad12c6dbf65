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
"""

from __future__ import annotations

import re
from typing import Any

from memorch.errors import ValidationError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
COLUMN_FIELDS = {"created_at", "updated_at"}
COMPARISONS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
OPERATORS = sorted([*COMPARISONS, "in", "nin", "contains", "icontains"])
LOGIC = {"and", "or", "not"}
MAX_DEPTH = 8
MAX_LIST = 1000

Scalar = str | int | float | bool | None


def _invalid(message: str, **details: Any) -> ValidationError:
    return ValidationError(
        message,
        error_code="INVALID_FILTER",
        details=details,
        suggestion='use filters like {"category": "food"}, {"priority": {"gte": 2}}, '
        '{"tag": {"in": ["a", "b"]}} or {"OR": [...]}; operators: ' + ", ".join(OPERATORS),
    )


def compile_filters(filters: dict[str, Any] | None) -> tuple[str, list[Any]] | None:
    """Return ``(sql, params)`` over the ``memories`` table, or None for no filter."""
    if filters is None or filters == {}:
        return None
    if not isinstance(filters, dict):
        raise _invalid("filters must be a JSON object", got=type(filters).__name__)
    params: list[Any] = []
    return _node(filters, params, 0), params


def _node(node: Any, params: list[Any], depth: int) -> str:
    if depth > MAX_DEPTH:
        raise _invalid(f"filters nest deeper than {MAX_DEPTH} levels")
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
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise _invalid("filter values must be strings, numbers, booleans or null", key=key)


def _field(key: str, value: Any, params: list[Any]) -> str:
    column = _column(key)
    if value == "*":
        return f"{column} IS NOT NULL"
    if not isinstance(value, dict):
        return _compare(column, "eq", _scalar(value, key), params)
    if not value:
        raise _invalid("an operator object needs at least one operator", key=key)
    parts = [_operator(column, key, op, operand, params) for op, operand in value.items()]
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _operator(column: str, key: str, op: Any, operand: Any, params: list[Any]) -> str:
    if op in COMPARISONS:
        return _compare(column, op, _scalar(operand, key), params)
    if op in ("in", "nin"):
        if not isinstance(operand, list) or not 0 < len(operand) <= MAX_LIST:
            raise _invalid(f"'{op}' takes a list of 1 to {MAX_LIST} values", key=key)
        params.extend(_scalar(item, key) for item in operand)
        marks = ", ".join("?" * len(operand))
        return f"{column} {'IN' if op == 'in' else 'NOT IN'} ({marks})"
    if op in ("contains", "icontains"):
        if not isinstance(operand, str):
            raise _invalid(f"'{op}' takes a string", key=key)
        if op == "icontains":
            params.append(operand.lower())
            return f"instr(lower({column}), ?) > 0"
        params.append(operand)
        return f"instr({column}, ?) > 0"
    raise _invalid(f"unknown filter operator {op!r}", key=key, operator=str(op)[:40])


def _compare(column: str, op: str, value: Scalar, params: list[Any]) -> str:
    if value is None:
        if op not in ("eq", "ne"):
            raise _invalid(f"'{op}' cannot compare with null")
        return f"{column} IS {'NOT ' if op == 'ne' else ''}NULL"
    params.append(value)
    return f"{column} {COMPARISONS[op]} ?"
