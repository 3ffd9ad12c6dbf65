"""The orchestrator's own tests again, with the ledger on PostgreSQL: the same add, search,
update, delete, history, filters, restore and point-in-time checks, unchanged. (The filter
grammar and export/import are checked at the ledger level in tests/test_ledger_backends.py:
the end-to-end round trip embeds for minutes on a busy 2-core machine.)

Also the layer tests (``project`` on memories, history and relations, the layered scope SQL) and
the graph tests that open the ``memory`` fixture (history ``reason`` and ``relations_before``,
restore, reindex), whose graph reads are answered from the ledger on PostgreSQL (``LedgerGraph``).

They are imported from their modules and collected here a second time; the ``config`` and
``memory`` fixtures below replace the suite's (``tests/conftest.py``, ``tests/test_graph.py``) for
them, so every ``amem`` / ``mem`` / ``memory`` these tests open has ``ledger_url`` on a fresh
PostgreSQL schema. Vectors stay on local LanceDB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig

from .fake_llm import FakeLLM
from .pg_helpers import fresh_schema
from .test_graph import (  # noqa: F401 - collected again, on PostgreSQL
    graph_config,
    test_default_threshold_keeps_distinct_names_apart,
    test_hostile_names_are_stored_verbatim,
    test_reindex_reproduces_the_same_graph_without_the_llm,
    test_relations_come_from_the_single_call,
    test_restore_brings_back_the_relations_of_the_restored_version,
    test_scopes_are_separate_graphs,
    test_update_replaces_exactly_its_relations_and_delete_removes_orphans,
)
from .test_layers import (  # noqa: F401
    test_another_user_never_sees_a_project_memory,
    test_configured_project_is_the_default_and_global_is_asked_for,
    test_duplicates_are_found_in_the_layers_a_project_sees_only,
    test_filters_as_of_and_max_tokens_keep_to_the_layers,
    test_projects_see_their_layer_and_the_global_one_never_another,
)
from .test_orchestrator import *  # noqa: F403 - collected again, on PostgreSQL
from .test_restore import *  # noqa: F403
from .test_timeline import *  # noqa: F403


@pytest.fixture
def config(tmp_path: Path) -> Iterator[MemoryConfig]:
    with fresh_schema() as url:
        yield MemoryConfig(data_dir=tmp_path / "data", graph="off", ledger_url=url)


@pytest.fixture
async def memory(tmp_path: Path, fake: FakeLLM) -> AsyncIterator[AsyncMemory]:
    with fresh_schema() as url:
        instance = AsyncMemory(graph_config(tmp_path, fake, ledger_url=url))
        yield instance
        await instance.close()
