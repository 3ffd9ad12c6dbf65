"""The library's face: ``AsyncMemory`` (the one implementation of every operation) and ``Memory``
(the blocking facade that forwards to it), both re-exported from ``memorch``.

- ``_async_memory``: ``AsyncMemory``: checks input (``domain``), then hands each operation to the
  engine: memories themselves (add, get, get_all, search, history, update, delete, restore,
  delete_all).
- ``_admin``: the whole-store operations of ``AsyncMemory`` (reset, stats, graph, import, export,
  doctor, reprocess, flush_inference, reindex, maintain, close), a mixin so each module stays on one topic.
- ``_memory``: ``Memory``: runs one ``AsyncMemory`` on a private event-loop thread; each method is
  a typed forward of the async one, nothing written twice.
"""
