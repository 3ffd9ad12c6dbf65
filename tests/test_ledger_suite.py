"""The orchestrator's own tests again, with the ledger on PostgreSQL: the same add, search,
update, delete, history, filters, restore and point-in-time checks, unchanged. (The filter
grammar and export/import are checked at the ledger level in tests/test_ledger_backends.py:
the end-to-end round trip embeds for minutes on a busy 2-core machine.)

They are imported from their modules and collected here a second time; the ``config`` fixture
below replaces the suite's (``tests/conftest.py``) for them, so every ``amem`` / ``mem`` these
tests open has ``ledger_url`` on a fresh PostgreSQL schema. Vectors stay on local LanceDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memorch import MemoryConfig

from .pg_helpers import fresh_schema
from .test_orchestrator import *  # noqa: F403 - collected again, on PostgreSQL
from .test_restore import *  # noqa: F403
from .test_timeline import *  # noqa: F403


@pytest.fixture
def config(tmp_path: Path) -> Iterator[MemoryConfig]:
    with fresh_schema() as url:
        yield MemoryConfig(data_dir=tmp_path / "data", graph="off", ledger_url=url)
