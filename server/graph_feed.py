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

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, cast

from memorch.storage.sql import chunks

from .atomic import replace_file

if TYPE_CHECKING:
    from memorch.storage.postgres import PostgresLedger

    from .config import MemoryConfig
    from .store import Store

BATCH = 500  # memories per Kuzu open, as Store.drain_graph
# Ledger meta: a new value each time some replica resets the store (``mark_reset``). A wipe
# leaves no change to replay, so the other replicas compare it with the one their copy follows.
RESET_EPOCH = "reset_epoch"


def cursor_file(config: MemoryConfig) -> Path:
    return config.data_dir / "graph.cursor"


def epoch_file(config: MemoryConfig) -> Path:
    return config.data_dir / "graph.epoch"


def forget_cursor(config: MemoryConfig) -> None:
    """The graph was wiped (``reindex``): the next replay starts from the beginning."""
    cursor_file(config).unlink(missing_ok=True)


def mark_reset(store: Store) -> None:
    """This replica reset the store (and wiped its own graph): tell the others' copies."""
    epoch = uuid.uuid4().hex
    store.parts.ledger.set_meta(RESET_EPOCH, epoch)
    store.config.prepare_data_dir()
    replace_file(epoch_file(store.config), epoch)


def replay_changes(store: Store) -> int:
    """Bring this replica's graph up to the ledger's finished changes; how many memories."""
    ledger = cast("PostgresLedger", store.parts.ledger)  # the feed exists with ledger_url only
    path = cursor_file(store.config)
    with store.graph_feed_lock:
        epoch, epoch_path = ledger.get_meta(RESET_EPOCH) or "", epoch_file(store.config)
        reset_since = epoch != (epoch_path.read_text() if epoch_path.exists() else "")
        if reset_since:
            # Another replica reset the store: this copy describes memories that are gone.
            store.parts.graph.wipe()
            path.unlink(missing_ok=True)
        cursor = path.read_text().strip() if path.exists() else None
        ids, horizon = ledger.changed_since(cursor or None)
        for batch in chunks(ids, BATCH):
            store.sync_graph(batch)
        store.config.prepare_data_dir()
        replace_file(path, horizon)  # the cursor moves only after the graph has the changes
        if reset_since:
            replace_file(epoch_path, epoch)
    return len(ids)
