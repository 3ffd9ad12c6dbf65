"""The ledger's SQL, as PostgreSQL runs it.

The ledger's queries are written once (``storage/history.py``, ``relations.py``, ``cache.py``,
``transfer.py``, and the filters of ``storage/filters.py``) in SQLite's dialect. The few
constructs PostgreSQL spells differently are rewritten here, mechanically and in one place,
instead of keeping a second copy of every query that could drift from the first:

- ``?`` placeholders become ``%s`` (psycopg's), a literal ``%`` becomes ``%%``;
- ``INSERT OR REPLACE INTO t (cols) ...`` becomes ``INSERT ... ON CONFLICT (key) DO UPDATE``;
- ``x IS ?`` (NULL-safe equality) becomes ``x IS NOT DISTINCT FROM %s``; ``instr`` is ``strpos``;
- ``lower(hex(randomblob(16)))`` (a fresh outbox token) becomes a random UUID's hex;
- ``json_extract(metadata, '$.path')``, whose SQLite result takes the JSON value's own type, is
  typed by what it is compared with: numbers and booleans against ``memorch_json_num`` (a JSON
  ``true`` is 1, as in SQLite), strings against ``memorch_json_text`` (strings only: SQLite never
  finds the text ``'5'`` equal to the number 5), and ``IS NULL`` / ``instr`` against the value as
  text (``memorch_json_any``). The three functions are created by the schema migrations
  (``storage/postgres_schema.py``).

Known difference, on purpose: SQLite orders values of different types (any number < any text),
so ``{"priority": {"lt": "m"}}`` matches numeric priorities there; here a comparison between a
number and a text is never true.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# Each upserted table's key: ON CONFLICT needs it, INSERT OR REPLACE did not.
PRIMARY_KEYS = {
    "memories": ("id",),
    "index_outbox": ("memory_id", "target"),
    "embedding_cache": ("model", "text_hash"),
    "meta": ("key",),
    "leases": ("name",),
}

_UPSERT = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+) \(([^)]*)\)(.*)$", re.DOTALL)
_JSON = r"json_extract\(metadata, '\$\.((?:\"[^\"']+\")|[A-Za-z0-9_.]+)'\)"
# One scan over the statement, left to right, so each ``?`` is matched with its parameter.
_TOKEN = re.compile(
    rf"(?P<in>{_JSON} (?P<not>NOT )?IN \((?P<marks>(?:\?, )*\?)\))"
    rf"|(?P<cmp>{_JSON} (?P<op>=|!=|>=|<=|>|<) (?P<rhs>\?|-?\d+(?:\.\d+)?))"
    rf"|(?P<bare>{_JSON})"
    r"|(?P<mark>\?)"
    r"|(?P<pct>%)"
)
_RANDOM_TOKEN = "lower(hex(randomblob(16)))"


def json_path(path: str) -> str:
    """``"a.b"`` (one key, quoted: dots are part of it) or ``a.b`` (nested keys) as a text[]
    literal. Keys reach here only after ``storage.filters.KEY_PATTERN`` (no quotes inside)."""
    keys = [path[1:-1]] if path.startswith('"') else path.split(".")
    return "ARRAY[" + ", ".join(f"'{key}'" for key in keys) + "]"


def _typed(function: str, path: str) -> str:
    return f"{function}(metadata, {json_path(path)})"


def _by_value(path: str, value: Any) -> tuple[str, Any]:
    """The JSON value typed like the value it is compared with, and that value as bound."""
    if isinstance(value, bool):
        return _typed("memorch_json_num", path), int(value)  # SQLite binds True as 1
    if isinstance(value, int | float):
        return _typed("memorch_json_num", path), value
    return _typed("memorch_json_text", path), value


@lru_cache(maxsize=512)
def _rewrite_static(sql: str) -> str:
    """The parameter-independent rewrites (everything but the typed JSON comparisons)."""
    sql = sql.replace(_RANDOM_TOKEN, "replace(gen_random_uuid()::text, '-', '')")
    sql = sql.replace(" IS ?", " IS NOT DISTINCT FROM ?").replace("instr(", "strpos(")
    match = _UPSERT.match(sql)
    if match:
        table, columns, rest = match.group(1), [c.strip() for c in match.group(2).split(",")], match.group(3)
        key = PRIMARY_KEYS[table]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        sql = f"INSERT INTO {table} ({', '.join(columns)}){rest} ON CONFLICT ({', '.join(key)}) {action}"
    return sql


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def translate(sql: str, params: Sequence[Any] = ()) -> tuple[str, list[Any]]:
    """``sql`` and ``params`` (SQLite's dialect) as PostgreSQL (psycopg) takes them."""
    sql = _rewrite_static(sql)
    params = list(params)
    if "json_extract(" not in sql:
        return _placeholders(sql), params
    out: list[str] = []
    bound: list[Any] = []
    position = 0  # the parameter the next ``?`` binds
    last = 0
    for match in _TOKEN.finditer(sql):
        out.append(sql[last : match.start()])
        last = match.end()
        if match.group("mark"):
            out.append("%s")
            bound.append(params[position])
            position += 1
        elif match.group("pct"):
            out.append("%%")
        elif match.group("in"):
            path, count = match.group(2), match.group("marks").count("?")
            tests = []
            for value in params[position : position + count]:
                column, value = _by_value(path, value)
                tests.append(f"{column} = %s")
                bound.append(value)
            position += count
            joined = "(" + " OR ".join(tests) + ")"
            out.append(f"NOT {joined}" if match.group("not") else joined)
        elif match.group("cmp"):
            path, op, rhs = match.group(6), match.group("op"), match.group("rhs")
            if rhs == "?":
                column, value = _by_value(path, params[position])
                position += 1
                bound.append(value)
                out.append(f"{column} {op} %s")
            else:
                out.append(f"{_typed('memorch_json_num', path)} {op} {rhs}")
        else:
            out.append(_typed("memorch_json_any", match.group(10)))
    out.append(sql[last:])
    return "".join(out), bound
