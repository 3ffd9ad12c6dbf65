"""Expiry and history retention in the ledger (``ExpiryQueries``, a mixin of ``LedgerCore``).

A memory may carry ``expires_at`` (an ISO UTC time, written like the ledger's other times so
that text order is time order). From that moment every read leaves it out: the ledger's reads
here and in ``ledger_core`` (list, the repeat check, ``as_of``, relations, export) compare with
the current time, and search drops the ids ``expired_ids`` names. Maintenance then purges it the
way ``purge`` does (``server/engine/_expiry.py``).

History retention (``MEMORCH_HISTORY_RETENTION``): ``strip_history`` removes the text of every
history event older than a cutoff, except a text the memory still says now; the events stay
(with their kind and times, and ``RETENTION_REASON``), so the timeline still shows that
something changed then.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from memorch.storage.sql import Transactions

# A memory readable now: no expiry, or one still ahead (one bound value: the current time).
LIVE = "(expires_at IS NULL OR expires_at > ?)"
# The ids of the memories expired by a time (served by the partial ``memories_expiry`` index).
EXPIRED_IDS = "SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ?"
# The deleted memories (not purged) whose expiry, as their last deletion recorded it, has passed:
# their history keeps their text until maintenance purges them as it purges an expired memory.
# (A scan of the history's deletions: maintenance asks at most once an hour.)
EXPIRED_DELETED_IDS = (
    "SELECT h.memory_id FROM history h WHERE h.event = 'DELETE' AND h.expires_at IS NOT NULL"
    " AND h.expires_at <= ? AND h.memory_id NOT IN (SELECT id FROM memories)"
    " AND h.seq = (SELECT MAX(d.seq) FROM history d WHERE d.memory_id = h.memory_id AND d.event = 'DELETE')"
)
RETENTION_REASON = "its text was removed by history retention (MEMORCH_HISTORY_RETENTION)"
EXPIRY_REASON = "expired: its text, history and relations were removed for good"


def stamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now; naive: UTC) as the ledger writes times: ISO, UTC, microseconds."""
    moment = moment or datetime.now(UTC)
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class HistoryStrip:
    """What ``strip_history`` did."""

    events: int = 0  # history events that lost text
    # Memories whose stripped events held a text they no longer say: older copies of their rows
    # may sit in the vector index's files (``LanceVectorIndex.purge`` rewrites them).
    memory_ids: list[str] = field(default_factory=list)
    relations: bool = False  # a stripped event held relations: the graph file may keep their names


class ExpiryQueries:
    def expired_ids(self: Transactions, now: str) -> set[str]:
        """Every memory expired at ``now`` and not purged yet: what a search leaves out (few:
        maintenance purges them), and what maintenance purges."""
        with self._read() as conn:
            return {row[0] for row in conn.execute(EXPIRED_IDS, (now,))}

    def expired_deleted_ids(self: Transactions, now: str) -> set[str]:
        """Every deleted memory (its history not purged) whose expiry had passed by ``now``: a
        deletion does not end what an expiry promised, so maintenance purges these too."""
        with self._read() as conn:
            return {row[0] for row in conn.execute(EXPIRED_DELETED_IDS, (now,))}

    def strip_history(self: Transactions, before: str, cache_key: Callable[[str], str]) -> HistoryStrip:
        """Remove the text (old and new, the relations replaced, the reason) of every history event
        dated before ``before``, except a text its memory says now, in one transaction that
        overwrites what it deletes (``_purging``). PURGE events and events stripped before are
        left alone. The embedding-cache entries of the texts removed go too, unless a memory still
        says the text. ``scrub`` afterwards clears the ledger's files."""
        from memorch.storage.purge import PURGE, forget_cached  # numpy (the cache's) only when it runs

        done = HistoryStrip()
        removed: set[str] = set()
        with self._purging(), self._write() as conn:
            rows = conn.execute(
                "SELECT h.seq, h.memory_id, h.old_memory, h.new_memory, h.relations_before, m.memory"
                " FROM history h LEFT JOIN memories m ON m.id = h.memory_id"
                " WHERE COALESCE(h.updated_at, h.created_at) < ? AND h.event != ? AND COALESCE(h.reason, '') != ?",
                (before, PURGE, RETENTION_REASON),
            ).fetchall()
            updates = []
            stale: set[str] = set()
            for seq, memory_id, old, new, relations, current in rows:
                kept_old, kept_new = (old if old == current else None), (new if new == current else None)
                gone = {t for t in (old, new) if t is not None and t != current}
                if gone:
                    stale.add(memory_id)
                    removed |= gone
                if relations is not None and json.loads(relations):
                    done.relations = True
                updates.append((kept_old, kept_new, RETENTION_REASON, seq))
            conn.executemany(
                "UPDATE history SET old_memory = ?, new_memory = ?, relations_before = NULL, metadata = NULL,"
                " reason = ? WHERE seq = ?",
                updates,
            )
            if removed:
                forget_cached(conn, removed, cache_key)
        done.events, done.memory_ids = len(updates), sorted(stale)
        return done
