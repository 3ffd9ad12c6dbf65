"""Each replica's own graph, following the ledger's change sequence (several replicas).

Kuzu is embedded and single-writer, so replicas cannot share one graph. Each keeps a copy in
its data directory and replays the ledger's changes into it: ``PostgresLedger.changed_since``
names the memories changed since this replica's cursor, ``Store.sync_graph`` makes the graph
hold exactly the ledger's relations for them (idempotent), and only then is the cursor saved;
a crash in between replays the same memories again. Graph reads call ``flush`` first, so a
replica's graph answers with every change committed before the read, whichever replica made it.

Why a copy and not graph reads from the ledger: search already reads one-hop relations from the
ledger (indexed by scope and name); the graph serves the multi-hop neighbourhood
(``memorch graph ENTITY --hops N``), which is what Kuzu is for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from memorch.storage.sql import chunks

if TYPE_CHECKING:
    from memorch.storage.postgres import PostgresLedger

    from .config import MemoryConfig
    from .store import Store

BATCH = 500  # memories per Kuzu open, as Store.drain_graph


def cursor_file(config: MemoryConfig) -> Path:
    return config.data_dir / "graph.cursor"


def forget_cursor(config: MemoryConfig) -> None:
    """The graph was wiped (``reindex``): the next replay starts from the beginning."""
    cursor_file(config).unlink(missing_ok=True)


def replay_changes(store: Store) -> int:
    """Bring this replica's graph up to the ledger's finished changes; how many memories."""
    ledger = cast("PostgresLedger", store.parts.ledger)  # the feed exists with ledger_url only
    path = cursor_file(store.config)
    with store.graph_feed_lock:
        cursor = path.read_text().strip() if path.exists() else None
        ids, horizon = ledger.changed_since(cursor or None)
        for batch in chunks(ids, BATCH):
            store.sync_graph(batch)
        store.config.prepare_data_dir()
        partial = path.with_suffix(".partial")
        partial.write_text(horizon)
        os.replace(partial, path)  # the cursor moves only after the graph has the changes
    return len(ids)
