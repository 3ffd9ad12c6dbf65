"""Whole-store work: rebuilding, moving and checking.

- ``_reindex``: rebuild the indexes from the ledger (``rebuild`` on an engine), and ``doctor``'s
  health checks.
- ``_bulk``: bulk import in batches (one embedding call, one transaction, one index append each).
- ``_export``: ``memorch export`` and the lines ``memorch import`` reads back.
- ``_backup``: a consistent copy of the SQLite ledger while a server runs, and its restore.
"""
