"""The ledger's export queries: every memory with its history and relations, page by page.

A mixin of ``LedgerCore`` (same connection and locks). A memory that was deleted still has
its history, so the export walks the memory ids of ``history`` (every memory has at least its
ADD event) in id order, which the ``history_memory`` index serves as a keyset: each page is one
short read, and writers are never blocked for the length of an export.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from memorch.storage.base import SCOPE_KEYS, MemoryRecord, Scope
from memorch.storage.expiry import EXPIRED_IDS, stamp
from memorch.storage.schema import EVENT_COLUMN_COUNT, EVENT_COLUMNS, history_event
from memorch.storage.sql import IN_CHUNK, Transactions, marks, scope_sql, select_in

PAGE = IN_CHUNK  # memories per export page: one page's ids are one IN list


class Exporting(Transactions, Protocol):
    """What the export reads of the ledger besides its transactions."""

    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]: ...

    def relations_for(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]: ...


class TransferQueries:
    def known_ids(self: Transactions, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the ledger has seen (alive, or deleted with history left)."""
        with self._read() as conn:
            return {
                row[0]
                for row in select_in(conn, "SELECT DISTINCT memory_id FROM history WHERE memory_id IN ({marks})", ids)
            }

    def export_pages(self: Exporting, scope: Scope) -> Iterator[list[dict[str, Any]]]:
        """Pages of export rows (``memorch export``): live memories with their relations, and
        deleted ones as their history only."""
        after = ""
        where, params = scope_sql(scope)
        # A purged memory (its one event the text-free PURGE) has nothing to export, and an
        # expired one is forgotten (maintenance purges it).
        query = (
            f"SELECT DISTINCT memory_id FROM history WHERE memory_id > ? AND {where} AND event != 'PURGE'"
            f" AND memory_id NOT IN ({EXPIRED_IDS}) ORDER BY memory_id LIMIT ?"
        )
        while True:
            with self._read() as conn:
                ids = [row[0] for row in conn.execute(query, [after, *params, stamp(), PAGE])]
            if not ids:
                return
            yield _export_rows(self, ids)
            after = ids[-1]


def _export_rows(ledger: Exporting, ids: list[str]) -> list[dict[str, Any]]:
    records = {r.id: r for r in ledger.get_many(ids)}
    relations = ledger.relations_for(list(records))
    events: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    scopes: dict[str, dict[str, Any]] = {}
    with ledger._read() as conn:
        for row in conn.execute(
            f"SELECT {EVENT_COLUMNS}, {', '.join(SCOPE_KEYS)} FROM history"
            f" WHERE memory_id IN ({marks(len(ids))}) ORDER BY memory_id, seq",
            ids,
        ):
            values = tuple(row)
            recorded = history_event(values)
            event = recorded.public()
            del event["memory_id"]
            if recorded.metadata is not None:  # what restore gives back, so a moved store keeps it
                event["metadata"] = recorded.metadata
                if recorded.expires_at:
                    event["expires_at"] = recorded.expires_at
            events[row["memory_id"]].append(event)
            scope_values = values[EVENT_COLUMN_COUNT:]
            scopes[row["memory_id"]] = dict(zip(SCOPE_KEYS, scope_values, strict=True))
    rows = []
    for memory_id in ids:
        record = records.get(memory_id)
        if record is None:
            rows.append({"id": memory_id, "deleted": True, **scopes[memory_id], "history": events[memory_id]})
            continue
        row = record.public()
        row.pop("hash", None)
        rows.append({**row, "relations": relations[memory_id], "history": events[memory_id]})
    return rows
