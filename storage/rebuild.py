"""Rebuilding a derived index from the ledger without ever destroying the last good copy.

``memorch reindex`` used to wipe the live LanceDB table and Kuzu graph and refill them in place:
a failure half-way (a corrupt graph, a full disk) left an empty index behind. Here a new copy is
built in a sibling location (``lance.rebuild``, ``graph.kuzu.rebuild``), its row count is checked
against the ledger, and only then is it renamed into place; the old copy is renamed aside first
and removed last. Each index is rebuilt on its own, so a graph failure cannot cost the vector
index (or the other way round). Until the final rename the live copy is untouched; a crash
between the two renames leaves ``<name>.old`` and the new copy, and the next start repairs a
missing index from the ledger anyway.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from memorch.errors import StorageError
from memorch.storage.base import MemoryRecord
from memorch.storage.engine import LANCE_ERRORS, engine_errors
from memorch.storage.graph import GraphWork
from memorch.storage.graph_process import GraphProcess

log = logging.getLogger("memorch.storage")

STAGING = ".rebuild"
RETIRED = ".old"
# Kuzu keeps its write-ahead log next to the database file: it must move with its database (a
# stale log beside a new database would be replayed into it).
KUZU_SIDECARS = ("", ".wal", ".shadow")
SWAP_HINT = "free disk space and check that MEMORCH_DATA_DIR is writable, then run `memorch reindex` again"


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def remove_path(path: Path) -> None:
    """Remove a file or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _file_errors(what: str) -> Any:
    return engine_errors(what, (OSError,), error_code="REBUILD_SWAP_FAILED", suggestion=SWAP_HINT)


def _incomplete(what: str, built: int, expected: int) -> StorageError:
    return StorageError(
        f"the rebuilt {what} holds {built} rows where the ledger has {expected}; the old copy is kept",
        error_code="REBUILD_INCOMPLETE",
        details={"index": what, "built": built, "expected": expected},
        suggestion=SWAP_HINT,
    )


def swap_in(staging: Path, live: Path, sidecars: Sequence[str] = ("",)) -> None:
    """Put ``staging`` in place of ``live`` (with each sidecar suffix), keeping the old copy
    aside until the new one is in place."""
    with _file_errors("swapping in the rebuilt index"):
        for suffix in sidecars:
            remove_path(sibling(live, suffix + RETIRED))
            if sibling(live, suffix).exists():
                os.replace(sibling(live, suffix), sibling(live, suffix + RETIRED))
        for suffix in sidecars:
            if sibling(staging, suffix).exists():
                os.replace(sibling(staging, suffix), sibling(live, suffix))
        for suffix in sidecars:
            remove_path(sibling(live, suffix + RETIRED))


def stored_row_count(uri: Path, table: str) -> int | None:
    """Rows in the LanceDB table at ``uri`` without creating anything; None when there is no
    table or it cannot be read (a damaged index tells nothing about what the ledger lost)."""
    if not uri.is_dir():
        return None
    import lancedb

    try:
        db = lancedb.connect(str(uri))
        if table not in db.list_tables().tables:
            return None
        return int(db.open_table(table).count_rows())
    except LANCE_ERRORS:
        log.warning("the LanceDB index at %s could not be counted", uri, exc_info=True)
        return None


def build_vectors(
    uri: Path, dimension: int, batches: Iterable[Sequence[MemoryRecord]], expected: int, progress: Callable[[int], None]
) -> int:
    """Build a new vector index from ``batches`` beside ``uri`` and swap it in when it holds
    ``expected`` rows. Returns the row count."""
    from memorch.storage.vectors import LanceVectorIndex

    staging = sibling(uri, STAGING)
    with _file_errors("clearing an earlier rebuild"):
        remove_path(staging)
    index = LanceVectorIndex(staging, dimension, freshness_s=None)
    index.prewarms = False  # closed and swapped in at once: nothing searches this copy
    try:
        done = 0
        for batch in batches:
            index.append(batch)
            done += len(batch)
            progress(done)
        index.maintain_now()
        built = index.count()
    finally:
        index.close()
    if built != expected:
        remove_path(staging)
        raise _incomplete("vector index", built, expected)
    swap_in(staging, uri)
    return built


def build_graph(path: Path, lock: Path, batches: Iterable[Sequence[GraphWork]]) -> int:
    """Build a new Kuzu graph from ``batches`` beside ``path`` and swap it in (under the live
    graph's lock, so no process has the old one open) when every relation arrived."""
    staging = sibling(path, STAGING)
    with _file_errors("clearing an earlier graph rebuild"):
        for suffix in KUZU_SIDECARS:
            remove_path(sibling(staging, suffix))
    graph = GraphProcess(staging, sibling(staging, ".lock"))  # the engine in a child: see graph_process
    expected = 0
    try:
        for batch in batches:
            graph.apply(batch)
            expected += sum(len(w.relations) for w in batch if w.scope is not None)
        built = graph.counts()["relations"]
    finally:
        graph.close()
    if built != expected:
        for suffix in KUZU_SIDECARS:
            remove_path(sibling(staging, suffix))
        raise _incomplete("graph", built, expected)
    with GraphProcess(path, lock).exclusive():
        swap_in(staging, path, KUZU_SIDECARS)
    remove_path(sibling(staging, ".lock"))
    return built
