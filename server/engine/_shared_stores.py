"""Which vector index a configuration gets: the local one, or the shared one of several replicas.

Kept apart from ``components.py`` so that the single-machine default stays exactly as it was:
without ``MEMORCH_LEDGER_URL`` this returns the same ``LanceVectorIndex`` as before, on
``MEMORCH_VECTOR_URI`` or the data directory.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memorch.config import MemoryConfig

if TYPE_CHECKING:
    from memorch.storage.ledger import Ledger
    from memorch.storage.vectors import LanceVectorIndex

MAINTENANCE_LEASE = "vector-maintenance"
OPEN_LOCK = "vector-index-open"


def vector_uri(config: MemoryConfig) -> str | Path:
    """Where the vector dataset lives: ``MEMORCH_VECTOR_URI`` (``s3://...``), else the data directory."""
    return config.vector_uri or config.data_dir / "lance"


def open_vector_index(
    config: MemoryConfig,
    ledger: Ledger,
    dimension: int,
    writers_lock: Callable[[], AbstractContextManager[Any]] | None = None,
) -> LanceVectorIndex:
    """``writers_lock``: what every writer of a local index holds (``Components.index_lock``)."""
    if not config.ledger_url:
        from memorch.storage.vectors import LanceVectorIndex

        return LanceVectorIndex(vector_uri(config), dimension, writers_lock=writers_lock)
    from memorch.storage.ledger import shared_ledger
    from memorch.storage.vectors_shared import MAINTENANCE_LEASE_S, SharedLanceVectorIndex

    shared = shared_ledger(ledger)  # ledger_url is set: Components opened a PostgresLedger
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    # Replicas starting together would each create the table and its indexes; one at a time,
    # the later ones find it made.
    with shared.named_lock(OPEN_LOCK):
        return SharedLanceVectorIndex(
            vector_uri(config),
            dimension,
            take_lease=lambda: shared.acquire_lease(MAINTENANCE_LEASE, holder, MAINTENANCE_LEASE_S),
            release_lease=lambda: shared.release_lease(MAINTENANCE_LEASE, holder),
        )
