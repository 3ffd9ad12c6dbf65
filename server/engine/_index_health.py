"""Is each derived index in step with the ledger? A cheap check, and what to do about it.

Run once per process before the first search or write (``Store.ready``), under the index lock,
after owed work was replayed, so the counts of the ledger and the vector index must agree:

- vector index missing or holding fewer rows than the ledger (its directory was deleted, or a
  crash lost a version): the missing rows are indexed again from the ledger, which holds every
  embedding, so no model is called. Logged as a warning; the caller's operation goes on.
- vector index holding *more* rows than the ledger (plus deletions still owed): the ledger lost
  rows (truncated, replaced by an empty file). Nothing is rebuilt from it, and every operation
  fails with ``LEDGER_BEHIND_INDEX`` naming the recovery, until the ledger is restored or the
  user accepts it (``memorch reindex --force``).
- graph file missing while the ledger holds memories: all graph work is queued again, and the
  usual background drain rebuilds it.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from memorch.domain._counts import memories, plural
from memorch.engine._components import Components
from memorch.errors import StorageError
from memorch.storage.base import Scope

log = logging.getLogger("memorch")

VECTORS = "vectors"
GRAPH = "graph"
TABLE = "memories"  # the LanceDB table name (storage.vectors.TABLE), read without importing lancedb early
RECOVERY = (
    "restore the ledger with `memorch restore-backup DIR` (a directory written by `memorch backup`), or put "
    "the old memorch.db back; `memorch reindex --force` rebuilds the indexes from the ledger as it is, "
    "which drops what only the index still holds"
)


@dataclass(frozen=True)
class VectorHealth:
    ledger: int
    index: int | None  # None: no index on disk, or unreadable
    owed: int  # memories with vector work queued in the outbox

    @property
    def ledger_lost_rows(self) -> bool:
        return self.index is not None and self.index > self.ledger + self.owed

    @property
    def behind(self) -> bool:
        return (self.index or 0) + self.owed < self.ledger


def vector_health(parts: Components) -> VectorHealth:
    """Counts only: the index is read in place, never created."""
    from memorch.storage.rebuild import stored_row_count

    ledger = parts.ledger
    # On object storage (several replicas) there is no local directory to look at, and replicas
    # open the shared dataset anyway.
    index = parts.vectors.count() if parts.vectors_remote else stored_row_count(parts.vectors_path, TABLE)
    return VectorHealth(ledger.counts()["memories"], index, len(set(ledger.pending(VECTORS))))


def _lost_for_sure(parts: Components) -> bool:
    """Several replicas: the counts above are read one after another while other replicas
    write, so a deletion finishing in between can make the index look ahead of the ledger.
    Confirmed by ids: rows absent from the ledger and not owed, and still in the index when
    read again (an index row is deleted before its outbox row is cleared, so a finished
    deletion's row is gone by then)."""
    first = parts.vectors.all_ids()
    unknown = first - set(parts.ledger.ids(Scope())) - set(parts.ledger.pending(VECTORS))
    return bool(unknown & parts.vectors.all_ids())


def _ledger_lost_rows(parts: Components, health: VectorHealth) -> bool:
    if not health.ledger_lost_rows:
        return False
    return _lost_for_sure(parts) if parts.config.ledger_url else True


SHARED_RECOVERY = (
    "restore the PostgreSQL database (MEMORCH_LEDGER_URL) from your database backup (pg_dump); "
    "`memorch reindex --force` rebuilds the indexes from the ledger as it is, which drops what only "
    "the index still holds"
)


def ledger_behind_index(parts: Components, health: VectorHealth) -> StorageError:
    """A shared ledger (PostgreSQL) has no memorch.db and no ``memorch backup``: its own recovery."""
    shared = bool(parts.config.ledger_url)
    what = (
        "the PostgreSQL ledger looks truncated or replaced"
        if shared
        else ("the ledger file (memorch.db) looks truncated or replaced")
    )
    return StorageError(
        f"the ledger holds {health.ledger} memories but the search index holds {health.index}: {what}, "
        "so nothing is rebuilt from it",
        error_code="LEDGER_BEHIND_INDEX",
        details={"ledger_memories": health.ledger, "index_rows": health.index},
        suggestion=SHARED_RECOVERY if shared else RECOVERY,
    )


def refuse_lost_ledger(parts: Components) -> None:
    """Raise ``LEDGER_BEHIND_INDEX`` when the vector index holds rows the ledger lost."""
    health = vector_health(parts)
    if _ledger_lost_rows(parts, health):
        raise ledger_behind_index(parts, health)


def settle(parts: Components, graph_copy: bool, reindex_rows: list[str]) -> None:
    """The check on open (see the module doc). ``reindex_rows`` receives the ids whose vector
    rows must be written again; the caller (``Store.ready``) writes them."""
    health = vector_health(parts)
    if _ledger_lost_rows(parts, health):
        raise ledger_behind_index(parts, health)
    if health.behind:
        indexed = parts.vectors.all_ids() if health.index else set()
        missing = [i for i in parts.ledger.ids(Scope()) if i not in indexed]
        log.warning(
            "the vector index holds %s of %s memories; indexing %s again from the ledger",
            health.index or 0,
            health.ledger,
            len(missing),
        )
        reindex_rows.extend(missing)
    # Queuing every memory is cheap (one statement) and the drain skips those without relations.
    # Without relations (no LLM has extracted any) no graph file is written, and none is missing.
    if graph_copy and not parts.graph_path.exists() and health.ledger and parts.ledger.holds_relations():
        log.warning("the graph is missing; rebuilding it from the ledger in the background")
        parts.ledger.mark_all_pending(GRAPH)


# -- `memorch doctor`: each probe returns a line for the report or raises a typed error --------

# Below this much free space in the data directory, writes (Kuzu's checkpoints first: it grows
# its file by megabytes at a time) are likely to fail.
LOW_DISK_BYTES = 64 * 1024 * 1024


def _unhealthy(message: str, code: str, suggestion: str, **details: Any) -> StorageError:
    return StorageError(message, error_code=code, details=details, suggestion=suggestion)


def probe_data_dir(parts: Components) -> str:
    """Writable, with room to write."""
    d = parts.config.data_dir
    if parts.read_only:
        from memorch.storage.readonly import read_only_error

        raise read_only_error("write", d)
    probe = d / ".memorch-write-test"
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
        free = shutil.disk_usage(d).free
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # writable, but full: the probe's few bytes found no room
            raise _unhealthy(
                f"no space left in {d} ({exc.strerror}); writes will fail (acknowledged ones stay in the ledger)",
                "DISK_FULL",
                "free disk space in MEMORCH_DATA_DIR",
                free_bytes=0,
            ) from exc
        raise _unhealthy(
            f"cannot write to {d} ({exc.strerror or exc})",
            "DATA_DIR_UNUSABLE",
            "free disk space, or set MEMORCH_DATA_DIR to a writable directory",
        ) from exc
    if free < LOW_DISK_BYTES:
        raise _unhealthy(
            f"only {free // 1024} kB free in {d}; writes will fail (acknowledged ones stay in the ledger)",
            "DISK_FULL",
            "free disk space in MEMORCH_DATA_DIR",
            free_bytes=free,
        )
    return f"{d} ({free // (1024 * 1024)} MB free)"


def probe_ledger(parts: Components) -> str:
    from memorch.storage.history import SQLiteCore

    ledger = parts.ledger
    counts = ledger.counts()
    if not isinstance(ledger, SQLiteCore):  # PostgreSQL checks its own pages; a count proves the connection
        return f"{memories(counts['memories'])}, {plural(counts['pending_index'], 'index write')} queued (PostgreSQL)"
    # A read-only directory may not allow the shared-memory file WAL readers need; nobody can
    # write there, so reading the file as immutable is exact.
    flags = "immutable=1" if parts.read_only else "mode=ro"
    conn = sqlite3.connect(f"file:{quote(str(ledger.path))}?{flags}", uri=True)
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        verdict = str(exc)
    finally:
        conn.close()
    if verdict != "ok":
        raise _unhealthy(
            f"the ledger (memorch.db) is damaged: {verdict}",
            "LEDGER_DAMAGED",
            "`memorch export FILE` saves what is readable; then " + RECOVERY.split("; ")[0],
        )
    return (
        f"{memories(counts['memories'])}, {plural(counts['pending_index'], 'index write')} queued, "
        f"{plural(counts['pending_inference'], 'message')} awaiting reprocess; integrity ok"
    )


def probe_vectors(parts: Components) -> str:
    """The vector index against the ledger, without creating or repairing anything."""
    health = vector_health(parts)
    if _ledger_lost_rows(parts, health):
        raise ledger_behind_index(parts, health)
    if health.index is None and not parts.vectors_remote and parts.vectors_path.exists():
        parts.vectors.count()  # unreadable: opening it raises the engine's typed error
    if health.behind:
        what = "missing" if health.index is None else f"holds {health.index} of {health.ledger} memories"
        raise _unhealthy(
            f"the vector index is {what}: searches miss memories until it is rebuilt",
            "INDEX_BEHIND",
            "run `memorch reindex` (or any search or write: the next start rebuilds it from the ledger)",
            ledger_memories=health.ledger,
            index_rows=health.index,
        )
    if health.owed:  # a process stopped before its index write: the next start (or write) does it
        return (
            f"{plural(health.index or 0, 'vector')} and {health.owed} queued in the ledger for the next start "
            f"or write, for {memories(health.ledger)}"
        )
    return f"{plural(health.index or 0, 'vector')}, as many as the ledger's memories"


def probe_graph(parts: Components) -> str:
    if parts.config.ledger_url:  # several replicas: graph reads are answered from the ledger
        counts = parts.graph.counts()
        graph = f"{plural(counts['entities'], 'entity', 'entities')}, {plural(counts['relations'], 'relation')}"
        return f"read from the ledger: {graph}"
    if not parts.graph_path.exists():
        if parts.ledger.holds_relations():
            raise _unhealthy(
                "the graph (graph.kuzu) is missing",
                "GRAPH_MISSING",
                "run `memorch reindex` (or any search or write: the next start rebuilds it from the ledger)",
            )
        if parts.config.llm_enabled:
            return "empty: no relations yet (the LLM extracts them from what is added)"
        return "empty: relations come from an LLM's fact extraction (set MEMORCH_LLM_MODEL)"
    counts = parts.graph.counts()
    if not counts["relations"] and parts.ledger.holds_relations() and not parts.ledger.pending(GRAPH):
        raise _unhealthy(
            "the graph (graph.kuzu) is empty, but the ledger holds relations",
            "GRAPH_MISSING",
            "run `memorch reindex` to rebuild it from the ledger",
        )
    return f"{plural(counts['entities'], 'entity', 'entities')}, {plural(counts['relations'], 'relation')}"
