"""``Store``: the one owner of writes.

Everything that changes memories goes through it, synchronously, on a worker thread:

- ``writing()`` holds the write lock: a thread lock for this process and the data directory's
  index lock for other processes (two assistant windows on one directory), so a duplicate check
  and the write it decides on, and an index write, never interleave with another writer's.
- ``ready()`` finishes index work a crash left owed and checks the indexes against the ledger,
  once, before the first write or search (with several replicas it also looks again every
  ``outbox_claims.SWEEP_EVERY_S`` for work another replica died owing).
- ``commit(changes)`` is one durable ledger transaction (the memories, their history events,
  the index work they owe and the embeddings computed since the last commit); the caller is
  answered then. The vector rows follow (``index_owed``): ``index_flush_delay`` later in one batch
  for a burst of writes, or before the next search (``searchable``, this process's or another's
  on the same data directory), so a search always sees every answered write, and the
  nearest-memory check reads the rows still owed from memory.
  A crash in between loses nothing: the outbox replays them. With several replicas the index
  write follows the commit at once, reading the memories back under their shared outbox rows'
  claim, so two replicas' index writes of one memory never interleave.

The operations call ``writing``/``reconciling`` and ``commit``: on single memories (verbatim add,
update, restore, delete, delete all) in ``operations``; inference, import, export and maintenance
in their own modules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from memorch.config import MemoryConfig
from memorch.engine._components import Components
from memorch.engine._purge import GRAPH, GRAPH_BATCH, REPLAY_BATCH, VECTORS, StorePurge
from memorch.errors import StorageError
from memorch.storage.base import Change, Scope
from memorch.storage.sql import chunks

if TYPE_CHECKING:
    from memorch.engine._centroids import Centroids
    from memorch.engine._nearest import NearestCache

log = logging.getLogger("memorch")

# A commit's vector rows are written ``index_flush_delay`` after it (1 s: one LanceDB append per
# burst of writes, not per write; a flush every 0.1 s doubled a stream of adds' p95, see
# docs/benchmarks.md), before this process's next search, by another process's next search
# (``searchable``), or at once when this many are owed.
INDEX_BATCH = 256
DELETE_BATCH = 500
# The vector index failing to open, be read or be written: a write still commits to the ledger
# (what makes it durable) and leaves its index work queued; a search reports the failure.
INDEX_UNAVAILABLE = frozenset({"VECTOR_WRITE_FAILED", "VECTOR_STORE_OPEN_FAILED", "VECTOR_READ_FAILED"})


class Store(StorePurge):
    def __init__(self, config: MemoryConfig, parts: Components) -> None:
        self.config = config
        self.parts = parts
        self._lock = threading.RLock()
        self._replayed = False
        self._swept_at = 0.0  # several replicas: when owed index work was last looked for
        self._seen_data_version: int | None = None  # the ledger's, at the last look for others' owed rows
        # Set by the async side: called (from a worker thread) when the graph has work owed.
        self.on_graph_work: Callable[[], None] = lambda: None
        # Inside ``reconciling`` with several replicas: the ids whose index work waits for its lock
        # transaction to commit.
        self._owed_after_lock: list[str] | None = None
        self._index_failures_said: set[str] = set()  # index failures a write went on despite, logged
        # Committed to the ledger (and owed in its outbox) but not yet in the vector index: id ->
        # its latest change. Read by ``operations.closest_stored``; written by ``index_owed``.
        self._unindexed: dict[str, Change] = {}
        self._unindexed_lock = threading.Lock()
        # Set by the async side: called (from a worker thread) when vector rows are owed.
        self.on_index_work: Callable[[], None] = lambda: None
        self._nearest: NearestCache | None = None  # one data directory only (``nearest_cache``)
        self._centroids: Centroids | None = None

    # -- the lock, readiness, commit ---------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The write lock alone (``reindex``, which rebuilds what ``ready`` would replay into)."""
        with self._lock, self.parts.index_lock():
            yield

    @contextmanager
    def writing(self) -> Iterator[None]:
        if self.parts.read_only:
            from memorch.storage.readonly import read_only_error

            raise read_only_error("change memories", self.config.data_dir)
        with self.locked():
            self.ready(for_write=True)
            yield

    def ready(self, for_write: bool = False) -> None:
        """Finish vector-index work a crash (or a failed index write) left owed, then check that
        the indexes are in step with the ledger (``index_health``); idempotent. With several
        replicas, also look again now and then for work another replica died owing.

        ``for_write``: an index that cannot be opened, read or written now (``INDEX_UNAVAILABLE``:
        a full disk, a damaged LanceDB manifest) does not stop a write, whose ledger commit is
        what makes it durable: the owed work stays queued and is tried again by the next
        operation (after ``memorch reindex`` for a damaged index). A search raises it instead, as
        its answer would miss those memories."""
        if self._replayed and not self._sweep_due():
            return
        from memorch.engine._index_health import refuse_lost_ledger, settle

        if self.parts.read_only:  # nothing can be replayed or repaired; only a lost ledger is reported
            refuse_lost_ledger(self.parts)
            self._replayed = True
            return
        with self._lock, self.parts.index_lock():
            if not self._replayed:
                try:
                    self._replay_owed()
                    missing: list[str] = []
                    settle(self.parts, self.config.graph_copy, missing)
                    for batch in chunks(missing, REPLAY_BATCH):
                        self.sync_vectors(batch)
                except StorageError as exc:
                    if not for_write or exc.error_code not in INDEX_UNAVAILABLE:
                        raise
                    refuse_lost_ledger(self.parts)  # the one check a write must not skip
                    # Every write tries again until it works: the traceback once, then a line.
                    said = exc.error_code in self._index_failures_said
                    log.warning(
                        "the vector index cannot be brought up to date (%s); its work stays queued",
                        exc.error_code,
                        exc_info=not said,
                    )
                    self._index_failures_said.add(exc.error_code)
                    return
                self._replayed = True
            elif self._sweep_due():
                self._replay_owed()

    def _replay_owed(self) -> None:
        """Index the memories the outbox says the vector index still owes."""
        if self.config.ledger_url:  # several replicas: claim owed work, never do it twice
            from memorch.engine._replica_claims import work_owed_vectors

            work_owed_vectors(self, VECTORS, REPLAY_BATCH)
            self._swept_at = time.monotonic()
        else:
            for batch in chunks(self.parts.ledger.pending(VECTORS), REPLAY_BATCH):
                self.sync_vectors(batch)

    def _sweep_due(self) -> bool:
        """Several replicas: another one may have died owing index work; look again now and then."""
        if not self.config.ledger_url:
            return False
        from memorch.engine._replica_claims import SWEEP_EVERY_S

        return time.monotonic() - self._swept_at > SWEEP_EVERY_S

    def mark_ready(self) -> None:
        """The indexes were rebuilt from the ledger as a whole (``reindex``)."""
        self._replayed = True
        if self._nearest is not None:  # the embeddings may have been recomputed
            self._nearest.clear()
        if self._centroids is not None:
            self._centroids.clear()

    @contextmanager
    def reconciling(self, scope: Scope | None = None, *, memories: Sequence[str] = ()) -> Iterator[None]:
        """``writing``, plus locks across replicas: on the scope (a duplicate check and the write
        it decides on never interleave with another replica's in the same scope), then on each
        memory the block may change (an update reads the version it replaces; a purge and an
        inference changing what it purges take turns, so neither brings back what the other
        removed). With several replicas the locks' transaction is the ledger commit, so the
        index work of what was committed inside runs after it ends (still under the write lock);
        a failure inside rolls the ledger back and leaves nothing to index."""
        ledger = self.parts.ledger
        with self.writing():
            self._owed_after_lock = [] if self.config.ledger_url else None
            try:
                with ExitStack() as locks:
                    if scope is not None:
                        locks.enter_context(ledger.scope_lock(scope))
                    if memories:  # with a scope alone, no savepoint for no lock (every add)
                        locks.enter_context(ledger.memory_locks(memories))
                    yield
                owed = self._owed_after_lock
            finally:
                self._owed_after_lock = None
            if owed:
                self._index_safely(lambda: self._index_shared(owed))

    def commit(self, changes: Sequence[Change]) -> None:
        """Ledger first (durable), then the vector index; the caller is inside ``writing``."""
        if not changes:
            return
        graph = [GRAPH] if self.config.graph_copy else []
        embedder = self.parts.loaded_embedder()
        cached = embedder.take_unsaved() if embedder is not None else None
        self.parts.ledger.apply(changes, [VECTORS], graph, cached=cached)
        if self._nearest is not None:
            self._nearest.apply(changes)
        latest = {c.record.id: c for c in changes}  # a memory changed twice in one commit: its last state
        if self._owed_after_lock is not None:  # inside ``reconciling`` with replicas: indexed after its commit
            self._owed_after_lock.extend(latest)
        elif self.config.ledger_url:
            self._index_safely(lambda: self._index_shared(list(latest)))
        else:
            self._defer_index(latest)
        if graph:
            self.on_graph_work()

    def _defer_index(self, latest: dict[str, Change]) -> None:
        """The caller's write is durable (ledger and outbox); its vector rows follow shortly."""
        with self._unindexed_lock:
            self._unindexed.update(latest)
            full = len(self._unindexed) >= INDEX_BATCH
        if full or self.config.index_flush_delay <= 0:
            self.index_owed()
        else:
            self.on_index_work()

    def index_owed(self) -> int:
        """Write the vector rows of this process's commits that the index does not hold yet, as
        the ledger has them now (another process may have changed one since: the ledger, read
        under the write lock, is the truth), in one batch. How many memories it indexed."""
        with self.locked():
            with self._unindexed_lock:
                owed = dict(self._unindexed)
            if not owed:
                return 0
            # An update or a deletion among them: a row is there to replace, so the index deletes
            # the batch's ids without looking for them first.
            indexed = any(change.kind in ("UPDATE", "DELETE") for change in owed.values())
            self._index_safely(lambda: self.sync_vectors(list(owed), some_indexed=indexed))
            with self._unindexed_lock:
                for memory_id, change in owed.items():
                    if self._unindexed.get(memory_id) is change:
                        del self._unindexed[memory_id]
        return len(owed)

    def searchable(self) -> None:
        """``ready``, and every committed change is in the vector index: what a search (or a
        count) needs. This process's owed rows are written now; so are another process's on the
        same data directory (a second assistant window) that it has not written yet, which the
        ledger's outbox names: a search never waits for the other's ``index_flush_delay``."""
        self.ready()
        if self._unindexed:
            self.index_owed()
        if not (self.config.ledger_url or self.parts.read_only):
            self._index_what_others_owe()

    def _index_what_others_owe(self) -> None:
        # SQLite's data_version moves only when another connection commits: one cheap pragma
        # per search, and the outbox is read only then.
        version = self.parts.ledger.data_version()
        if version == self._seen_data_version:
            return
        owed = self.parts.ledger.pending(VECTORS)
        if owed:
            from memorch.storage.vector_versions import held_if_free

            with self._lock, held_if_free(self.parts.index_lock()) as mine:
                if not mine:
                    # The other process is writing the index right now (a flush, a reindex):
                    # never wait behind it; look again at the next search.
                    return
                for batch in chunks(owed, REPLAY_BATCH):
                    self._index_safely(lambda batch=batch: self.sync_vectors(batch))
        self._seen_data_version = version

    def unindexed_changes(self) -> list[Change]:
        """This process's commits whose vector rows are not written yet (their latest change)."""
        with self._unindexed_lock:
            return list(self._unindexed.values())

    def _index_safely(self, index: Callable[[], None]) -> None:
        try:
            index()
        except StorageError:
            # The change is safe in the ledger and queued in its outbox; the next operation
            # replays the index work, so the caller's write still succeeded.
            log.warning("vector index update deferred; it will be replayed", exc_info=True)
            self._replayed = False

    def _index_shared(self, ids: list[str]) -> None:
        """Several replicas: serialized per memory by the shared outbox (``outbox_claims``)."""
        from memorch.engine._replica_claims import index_own_changes

        index_own_changes(self, VECTORS, ids)

    # -- owed index work (replay and the graph) ---------------------------------------------

    def sync_vectors(self, ids: list[str], *, some_indexed: bool = False) -> None:
        """Make the vector index match the ledger for ``ids``, then clear their outbox rows.
        ``some_indexed``: the caller knows some of them have rows (``LanceVectorIndex.replace``)."""
        if not ids:
            return
        ledger = self.parts.ledger
        if self.config.ledger_url:  # several replicas: queued, then claimed like any owed work
            from memorch.engine._replica_claims import index_own_changes

            ledger.mark_pending(VECTORS, ids)
            index_own_changes(self, VECTORS, ids)
            return
        with self.parts.index_lock():
            tokens = ledger.outbox_tokens(VECTORS, ids)  # read before the state it covers
            records = ledger.get_many(ids)
            present = {r.id for r in records}
            gone = [i for i in ids if i not in present]
            self.parts.vectors.replace(records, gone, look_up=not some_indexed, order=ids)
            ledger.clear_pending(VECTORS, tokens)
        if self.config.search_weights.get("words", 0.0) > 0:
            # Cut the new texts into word pieces here, in the index worker, not in the searches
            # that re-order them (retrieval/_words.py: 3.5-5 ms a search for 30 unseen long texts).
            from memorch.models._token_vectors import word_pieces

            word_pieces().bags([record.memory for record in records])

    def sync_graph(self, ids: list[str]) -> None:
        """Make the graph hold exactly the ledger's relations for ``ids``."""
        from memorch.storage.graph import GraphWork

        ledger = self.parts.ledger
        tokens = ledger.outbox_tokens(GRAPH, ids)  # read before the state it covers
        records = {r.id: r for r in ledger.get_many(ids)}
        relations = ledger.relations_for(ids)
        work = [
            GraphWork(
                i,
                records[i].scope if i in records else None,
                relations.get(i, []),
                records[i].updated_at if i in records else "",
            )
            for i in ids
        ]
        self.parts.graph.apply(work)
        ledger.clear_pending(GRAPH, tokens)

    def drain_graph(self) -> int:
        """Apply all graph work the ledger owes, in batches (one Kuzu open per batch)."""
        if not self.config.graph_copy or self.parts.read_only:
            return 0
        pending = self.parts.ledger.pending(GRAPH)
        for batch in chunks(pending, GRAPH_BATCH):
            self.sync_graph(batch)
        return len(pending)

    def index_targets(self) -> list[str]:
        return [VECTORS, GRAPH] if self.config.graph_copy else [VECTORS]

    def nearest_cache(self) -> NearestCache | None:
        """The scopes' embeddings in memory (``server/nearest.py``); None with several replicas."""
        if self._nearest is None and not self.config.ledger_url:
            from memorch.engine._nearest import NearestCache

            self._nearest = NearestCache(self.parts.ledger)
        return self._nearest

    def centroids(self) -> Centroids:
        """The centres of scopes not held in memory (``engine._centroids``), kept between searches."""
        if self._centroids is None:
            from memorch.engine._centroids import Centroids

            self._centroids = Centroids(self.parts.ledger)
        return self._centroids

    def reset(self) -> None:
        """Drop every memory, history event and index (``AsyncMemory.reset`` asks first)."""
        with self.writing():
            self.parts.ledger.wipe()
            self.parts.vectors.wipe()
            with self._unindexed_lock:
                self._unindexed.clear()
            if self._nearest is not None:
                self._nearest.clear()
            if self._centroids is not None:
                self._centroids.clear()
            if self.config.graph_copy:
                self.parts.graph.wipe()
