"""The engine every operation runs on, and the write path.

- ``_engine``: ``Engine``: owns the config, the components, the ``Store``, the workers and the two
  debouncers; ``write`` (the one hop to the writer thread) and ``add_verbatim``.
- ``_store``: ``Store``: the one owner of writes: ledger first, then the derived indexes;
  ``_purge``: its part for a purge (forget for good), and the outbox's targets.
- ``_operations``: single-memory operations planned and committed through the store (verbatim
  add with its duplicate check, update, restore, delete, delete_all).
- ``_components``: the stores and models, created lazily from the config on first use.
- ``_workers``: the writer thread, the reader pool and the model pool.
- ``_debounce``: ``Debounced``: index and graph work drained a moment after the last write.
- ``_nearest``: embeddings of recently used scopes held in memory (duplicate hint, vector signal,
  the scope's centre).
- ``_centroids``: the centres of scopes not held in memory, from the ledger.
- ``_expiry``: maintenance of expiry and history retention: expired memories purged, old history
  text removed (``sweep``), now and then by itself (``Sweeper``) and on request.
- ``_index_health``: is each derived index in step with the ledger, and what to do if not.
- ``_shared_stores``, ``_replica_claims``: several replicas: the shared vector index, and owed
  index work claimed by whichever replica gets to it first.
"""
