"""A purge's part of the ``Store`` (a mixin): what "forget this" removes from the ledger and,
before the call returns, from the derived indexes. Also the outbox's targets and batch sizes,
shared with the rest of the Store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from memorch.config import MemoryConfig
from memorch.engine._components import Components
from memorch.errors import StorageError
from memorch.storage.base import MemoryRecord, Scope
from memorch.storage.ledger import shared_ledger
from memorch.storage.sql import chunks

if TYPE_CHECKING:
    from memorch.engine._nearest import NearestCache

VECTORS = "vectors"
GRAPH = "graph"
# A purge whose index and file part is not finished yet (a stop between its ledger commit and
# its scrub): the expiry sweep does that part again (``Store.finish_owed_purges``), every
# LanceDB version, the graph file and the ledger's own files, where replaying the vectors target
# alone deletes the row from the latest version only.
PURGED = "purged"
# Memories per index batch when replaying owed work, and per ledger transaction in delete_all
# (one transaction per batch keeps a huge scope's deletion from holding the ledger for long).
REPLAY_BATCH = 1000
GRAPH_BATCH = 500  # memories per Kuzu open when draining the graph outbox


class StorePurge:
    """What a purge uses of the ``Store``."""

    config: MemoryConfig
    parts: Components
    _nearest: NearestCache | None
    _unindexed: dict[str, Any]
    _unindexed_lock: threading.Lock

    def _index_safely(self, work: Callable[[], None]) -> None: ...

    def _index_shared(self, ids: list[str]) -> None: ...

    def sync_graph(self, ids: list[str]) -> None: ...

    def purge(
        self, records: Sequence[MemoryRecord], ids: Sequence[str], *, reason: str | None = None
    ) -> dict[str, str | None]:
        """The ledger's part of removing memories for good (the caller is inside ``writing``
        and checked the scope; ``records``: the live ones among ``ids``, as read under the lock):
        their rows, history (a text-free PURGE event stays), relations and embedding-cache
        entries in one transaction, which also marks each purge unfinished (a ``PURGED`` outbox
        row); ``reason``: the PURGE event's, if not a user's purge (an expiry). The messages they
        were inferred from go with them (``_made_from``). The caller then runs
        ``finish_purges`` on the keys of what this returns (once for several batches), after its
        lock transaction and before it answers. Returns what ``Ledger.purge`` does."""
        from memorch.domain._records import deletion, utc_now
        from memorch.models._embeddings import text_hash

        if not ids:
            return {}
        sources = self._made_from(ids)
        if sources:
            ids = [*ids, *sources]
            records = [*records, *self.parts.ledger.get_many(sources)]
        graph = [GRAPH] if self.config.graph_copy else []
        embedder = self.parts.loaded_embedder()
        # Embeddings computed since the last commit go to the cache first, so that the purge's
        # own transaction removes a purged text's among them (none is saved after it).
        cached = embedder.take_unsaved() if embedder is not None else None
        why = {} if reason is None else {"reason": reason}
        purged = self.parts.ledger.purge(ids, [VECTORS, PURGED], graph, text_hash, utc_now(), cached=cached, **why)
        if self._nearest is not None:
            self._nearest.apply([deletion(r) for r in records])
        with self._unindexed_lock:  # rows owed but not written: nothing left to write
            for memory_id in ids:
                self._unindexed.pop(memory_id, None)
        return purged

    def _made_from(self, ids: Sequence[str]) -> list[str]:
        """The pending messages ``ids`` were inferred from (``_memorch.from``) and not among them:
        a message holds what its facts say in the user's words, and was deleted (restorable, its
        text in its history) when they were made, so forgetting a fact purges it too. Only a
        message within the fact's own scope: inference for a user's message may update an agent's
        memory of that user, and the agent's purge must not reach what only the user's scope sees
        (nor may an imported ``from`` name another user's memory). One read when nothing was
        inferred; else two per fact and one per message."""
        from memorch.domain._records import sources_in

        ledger, purged = self.parts.ledger, set(ids)
        if not sources_in(ledger.metadata_of(ids)) - purged:
            return []
        found: set[str] = set()
        for memory_id in ids:
            sources = sources_in(ledger.metadata_of([memory_id])) - purged
            owner = ledger.history_scope(memory_id) if sources else None
            if owner is not None:
                found |= {s for s in sources if (scope := ledger.history_scope(s)) is not None and owner.holds(scope)}
        return sorted(found)

    def purge_indexes(self, ids: Sequence[str], *, unfinished: bool = False) -> None:
        """The derived indexes' part of a purge (inside ``writing``): the vector rows and every
        LanceDB version that held them (``LanceVectorIndex.purge``), and the graph's relations
        (the graph's own sync, at once). ``unfinished``: some of ``ids`` are purges a stop left
        unfinished (``finish_owed_purges``), whose graph work may have been drained since: the graph
        file, which keeps a removed entity's name, is rebuilt whatever the outbox says."""
        if not ids:
            return
        self.parts.vectors.purge(list(ids))
        if self.config.ledger_url:
            self._index_safely(lambda: self._index_shared(list(ids)))
        else:  # the rows are gone: the work the purge queued is done
            for batch in chunks(list(ids), REPLAY_BATCH):
                self.parts.ledger.clear_pending(VECTORS, self.parts.ledger.outbox_tokens(VECTORS, batch))
        if self.config.graph_copy:
            # The purge queued graph work only for the memories that had relations.
            related = self.parts.ledger.outbox_tokens(GRAPH, ids)
            for batch in chunks(list(ids), GRAPH_BATCH):
                self.sync_graph(batch)
            if related or (unfinished and self.parts.graph_path.exists()):
                self._rebuild_graph()

    def finish_purges(self, ids: Sequence[str], *, unfinished: bool = False) -> None:
        """The index and file part of the purges of ``ids``, whose ledger part committed: the
        derived indexes (``purge_indexes``) and the ledger's own files (``Ledger.scrub``). The
        caller holds the write lock and no ledger transaction: a vector purge waits for a
        maintenance pass, which waits for the ledger (its lease). Their ``PURGED`` rows are cleared
        when it is done, never on a failure (``finish_owed_purges`` then finishes it). With
        several replicas the rows are claimed meanwhile, so no replica's sweep does it beside
        this one; with SQLite the write lock, which every purge and sweep holds, does that."""
        ids = sorted(set(ids))
        if not ids:
            return
        ledger = self.parts.ledger
        if self.config.ledger_url:
            with shared_ledger(ledger).claim_outbox(PURGED, len(ids), ids=ids):
                self._purge_files(ids, unfinished)
            return
        tokens: dict[str, str] = {}
        for batch in chunks(ids, REPLAY_BATCH):
            tokens.update(ledger.outbox_tokens(PURGED, batch))
        self._purge_files(ids, unfinished)
        ledger.clear_pending(PURGED, tokens)

    def finish_owed_purges(self) -> int:
        """Finish the purges a stop left unfinished (a crash between a purge's ledger commit and
        its scrub, a failed index write): their text may still be in an older LanceDB version,
        the graph's file or the ledger's free pages. Run by the expiry sweep, which every process
        runs soon after its first operation (the caller holds the write lock). With several
        replicas, only those no replica is finishing (claimed, skipping locked rows), a batch at a
        time until a claim comes back short: one batch per sweep left a crash's thousands of
        purges owed for hours (the sweep is hourly). How many."""
        ledger = self.parts.ledger
        if self.config.ledger_url:
            finished: set[str] = set()
            while True:
                with shared_ledger(ledger).claim_outbox(PURGED, REPLAY_BATCH) as claimed:
                    if claimed:
                        self._purge_files(sorted(claimed), unfinished=True)
                # A claim of only purges this sweep finished already (owed again: a failed clear)
                # ends it too, so a row that cannot be cleared is not purged over and over.
                if len(claimed) < REPLAY_BATCH or claimed.keys() <= finished:
                    return len(finished | claimed.keys())
                finished |= claimed.keys()
        owed = ledger.pending(PURGED)
        self.finish_purges(owed, unfinished=True)
        return len(owed)

    def purge_is_owed(self, memory_id: str | None = None) -> bool:
        """A purge (of ``memory_id``, or any) committed in the ledger whose index and file part is
        not done."""
        ledger = self.parts.ledger
        return bool(ledger.pending(PURGED) if memory_id is None else ledger.outbox_tokens(PURGED, [memory_id]))

    def _purge_files(self, ids: list[str], unfinished: bool) -> None:
        try:
            self.purge_indexes(ids, unfinished=unfinished)
            self.parts.ledger.scrub()
        except StorageError as exc:  # said as what it is: half done, and finished later
            exc.message += (
                f" (the purge of {len(ids)} memories is done in the ledger, their text gone from"
                " memories and history; the index files are cleaned at the next start or by purging again)"
            )
            exc.details["purged_in_ledger"] = ids[:100]
            raise

    def rewrite_indexes(self, ids: Sequence[str], relations: bool) -> None:
        """History retention removed old texts of ``ids`` from the ledger (inside ``writing``):
        their vector rows are written again from the ledger as it is now, and every LanceDB
        version and file that held the older rows is removed (``LanceVectorIndex.purge`` with
        ``keep``); ``relations``: some relations went with them, and the graph file, which keeps
        the names of entities it no longer holds, is rebuilt from the ledger."""
        if ids:  # one pass: each rewrites the table's small fragments and its full-text index
            self.parts.vectors.purge(list(ids), keep=self.parts.ledger.get_many(list(ids)))
        if relations and self.config.graph_copy and self.parts.graph_path.exists():
            self._rebuild_graph()

    def _rebuild_graph(self) -> None:
        """A new Kuzu graph from the ledger's relations, swapped in (``storage.rebuild``): Kuzu
        keeps a deleted entity's name in its file, and has no vacuum. The caller holds the write
        lock, and the async side the graph's debouncer lock, so no change and no graph sync
        happens meanwhile."""
        from memorch.storage.graph import GraphWork
        from memorch.storage.rebuild import build_graph

        ledger = self.parts.ledger
        tokens = ledger.outbox_tokens(GRAPH, ledger.pending(GRAPH))

        def batches() -> Iterator[list[GraphWork]]:
            for batch in chunks(ledger.ids(Scope()), GRAPH_BATCH):
                relations = ledger.relations_for(batch)
                records = [r for r in ledger.get_many(batch) if relations.get(r.id)]
                yield [GraphWork(r.id, r.scope, relations[r.id], r.updated_at) for r in records]

        build_graph(self.parts.graph_path, self.parts.graph_lock_path, batches())
        ledger.clear_pending(GRAPH, tokens)
