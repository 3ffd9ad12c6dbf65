"""SQL helpers every ledger query shares: the scope rule as SQL, and chunked ``IN (...)`` lists.

Written once so the rule a scope follows, and the number of bound values a statement may carry,
cannot drift apart between the ledger's modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from memorch.storage.base import Scope

T = TypeVar("T")

# Values bound into one ``IN (...)`` list. SQLite refuses more than SQLITE_MAX_VARIABLE_NUMBER
# bound values per statement (999 before 3.32, 32,766 since); 500 stays under the old limit with
# room for the statement's other parameters, and a longer list would not make a page faster.
IN_CHUNK = 500


class Cursor(Protocol):
    """A statement's result rows, each readable by position and by column name."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the ledger's queries use of a connection: ``sqlite3.Connection`` itself, or the
    PostgreSQL ledger's ``PgConnection``, which translates the same SQL (``postgres_sql``)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...


class Transactions(Protocol):
    """What the ledger's query mixins (``RelationQueries``, ``CacheQueries``, ``TransferQueries``)
    use of ``LedgerCore``. They annotate ``self`` with it rather than declare stand-in methods,
    so no two of the ledger's bases define one name and base-class order cannot change what runs
    (``tests/test_ledger_structure.py``)."""

    cache_rows: int | None  # how many embeddings the persistent cache keeps (``store_vectors``)

    def _read(self) -> AbstractContextManager[Connection]: ...

    def _write(self, durable: bool = True) -> AbstractContextManager[Connection]: ...

    def _purging(self) -> AbstractContextManager[None]: ...


def scope_sql(scope: Scope, prefix: str = "") -> tuple[str, list[Any]]:
    """The scope rule (see ``Scope``) as a parameterized condition: one ``key = ?`` per given
    part, nothing for the parts not given (``1 = 1`` for an empty scope), and the layers a
    project sees when the scope names one. ``prefix`` qualifies
    the columns (``"h."``) when a query joins tables."""
    parts = [f"{prefix}{key} = ?" for key, _ in scope.items()]
    params: list[Any] = [value for _, value in scope.items()]
    if scope.project is not None:
        # The project's layer and the global one (see ``Scope``); both columns are indexed.
        parts.append(f"({prefix}project = ? OR {prefix}project IS NULL)")
        params.append(scope.project)
    return (" AND ".join(parts), params) if parts else ("1 = 1", [])


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def marks(n: int) -> str:
    """``?, ?, ...`` for ``n`` bound values."""
    return ", ".join("?" * n)


def select_in(conn: Connection, sql: str, values: Sequence[Any], before: Sequence[Any] = ()) -> Iterator[Any]:
    """Rows of ``sql`` run once per chunk of ``values``; ``sql`` holds ``{marks}`` where the
    ``IN`` list goes, and ``before`` are the parameters bound ahead of it."""
    for chunk in chunks(values):
        yield from conn.execute(sql.format(marks=marks(len(chunk))), [*before, *chunk])
