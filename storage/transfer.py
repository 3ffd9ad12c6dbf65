"""The ledger's export queries: every memory with its history and relations, page by page.

A mixin of ``SQLiteLedger`` (same connection and locks). A memory that was deleted still has
its history, so the export walks the memory ids of ``history`` (every memory has at least its
ADD event) in id order, which the ``history_memory`` index serves as a keyset: each page is one
short read, and writers are never blocked for the length of an export.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .base import SCOPE_KEYS, MemoryRecord, Scope
from .schema import EVENT_COLUMN_COUNT, EVENT_COLUMNS, history_event
from .sql import IN_CHUNK, marks, scope_sql, select_in

PAGE = IN_CHUNK  # memories per export page: one page's ids are one IN list


class TransferQueries:
    # Provided by SQLiteLedger and RelationQueries.
    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]:
        raise NotImplementedError

    def relations_for(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        raise NotImplementedError

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the ledger has seen (alive, or deleted with history left)."""
        with self._read() as conn:
            return {
                row[0]
                for row in select_in(conn, "SELECT DISTINCT memory_id FROM history WHERE memory_id IN ({marks})", ids)
            }

    def export_pages(self, scope: Scope) -> Iterator[list[dict[str, Any]]]:
        """Pages of export rows (``memorch export``): live memories with their relations, and
        deleted ones as their history only."""
        after = ""
        where, params = scope_sql(scope)
        query = f"SELECT DISTINCT memory_id FROM history WHERE memory_id > ? AND {where} ORDER BY memory_id LIMIT ?"
        while True:
            with self._read() as conn:
                ids = [row[0] for row in conn.execute(query, [after, *params, PAGE])]
            if not ids:
                return
            yield self._export_rows(ids)
            after = ids[-1]

    def _export_rows(self, ids: list[str]) -> list[dict[str, Any]]:
        records = {r.id: r for r in self.get_many(ids)}
        relations = self.relations_for(list(records))
        events: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        scopes: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for row in conn.execute(
                f"SELECT {EVENT_COLUMNS}, {', '.join(SCOPE_KEYS)} FROM history"
                f" WHERE memory_id IN ({marks(len(ids))}) ORDER BY memory_id, seq",
                ids,
            ):
                values = tuple(row)
                event = history_event(values).public()
                del event["memory_id"]
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
