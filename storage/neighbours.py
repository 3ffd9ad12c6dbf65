"""The memories said around a memory: ``NeighbourQueries``, a mixin of ``LedgerCore``.

A search's best hits bring along what was stored just before and after them in the same scope
(``memorch.retrieval._context``): in a conversation the answer to a question is often the turn
next to the one that names its topic. "Next to" is the ledger's order of creation,
``(created_at, id)`` (imports and multi-fact adds give each memory of a batch its own,
increasing time, so a batch keeps its order), limited to memories created within a window of the
anchor: two facts told a week apart are not each other's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from memorch.storage.base import Scope
from memorch.storage.expiry import LIVE, stamp
from memorch.storage.sql import Transactions, scope_sql, select_in

# One side's query: the nearest ``limit`` live memories of the scope before (or after) the
# anchor's position, inside the window. The position is a row value, which SQLite and PostgreSQL
# both turn into a range of the (user_id, created_at, id) index (written as ``a < ? OR (a = ?
# AND b < ?)`` instead, SQLite scanned the window: 0.23 ms a query instead of 0.03 at 5,000 rows).
_BEFORE = (
    "SELECT id FROM memories WHERE {scope} AND {live} AND created_at >= ?"
    " AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
)
_AFTER = (
    "SELECT id FROM memories WHERE {scope} AND {live} AND created_at <= ?"
    " AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?"
)


class NeighbourQueries:
    def neighbours(
        self: Transactions, scope: Scope, ids: Sequence[str], per_side: int, window_s: float
    ) -> dict[str, list[str]]:
        """For each of ``ids`` (in the scope), up to ``per_side`` memories created just before it
        and up to ``per_side`` just after it, within ``window_s`` seconds, nearest first (before
        ones, then after ones). Expired memories are not anyone's neighbours."""
        where, params = scope_sql(scope)
        now = stamp()
        before = _BEFORE.format(scope=where, live=LIVE)
        after = _AFTER.format(scope=where, live=LIVE)
        found: dict[str, list[str]] = {}
        with self._read() as conn:
            created = {
                row[0]: row[1]
                for row in select_in(conn, "SELECT id, created_at FROM memories WHERE id IN ({marks})", ids)
            }
            for memory_id, at in created.items():
                low, high = _window(at, window_s)
                near = [row[0] for row in conn.execute(before, [*params, now, low, at, memory_id, per_side])]
                near += [row[0] for row in conn.execute(after, [*params, now, high, at, memory_id, per_side])]
                found[memory_id] = near
        return found


def _window(created_at: str, seconds: float) -> tuple[str, str]:
    """The ledger times ``seconds`` before and after ``created_at``, written as the ledger writes
    them (text order is time order)."""
    moment = datetime.fromisoformat(created_at)
    span = timedelta(seconds=seconds)
    return stamp(moment - span), stamp(moment + span)
