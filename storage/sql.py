"""SQL helpers every ledger query shares: the scope rule as SQL, and chunked ``IN (...)`` lists.

Written once so the rule a scope follows, and the number of bound values a statement may carry,
cannot drift apart between the ledger's modules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from .base import Scope

T = TypeVar("T")

# Values bound into one ``IN (...)`` list. SQLite refuses more than SQLITE_MAX_VARIABLE_NUMBER
# bound values per statement (999 before 3.32, 32,766 since); 500 stays under the old limit with
# room for the statement's other parameters, and a longer list would not make a page faster.
IN_CHUNK = 500


def scope_sql(scope: Scope, prefix: str = "") -> tuple[str, list[Any]]:
    """The scope rule (see ``Scope``) as a parameterized condition: one ``key = ?`` per given
    part, nothing for the parts not given (``1 = 1`` for an empty scope). ``prefix`` qualifies
    the columns (``"h."``) when a query joins tables."""
    items = scope.items()
    if not items:
        return "1 = 1", []
    return " AND ".join(f"{prefix}{key} = ?" for key, _ in items), [value for _, value in items]


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def marks(n: int) -> str:
    """``?, ?, ...`` for ``n`` bound values."""
    return ", ".join("?" * n)


def select_in(
    conn: sqlite3.Connection, sql: str, values: Sequence[Any], before: Sequence[Any] = ()
) -> Iterator[sqlite3.Row]:
    """Rows of ``sql`` run once per chunk of ``values``; ``sql`` holds ``{marks}`` where the
    ``IN`` list goes, and ``before`` are the parameters bound ahead of it."""
    for chunk in chunks(values):
        yield from conn.execute(sql.format(marks=marks(len(chunk))), [*before, *chunk])
