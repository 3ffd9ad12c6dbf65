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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._records import new_record, utc_now
from memorch.storage.base import Change, Scope
from memorch.storage.expiry import stamp
from memorch.storage.ledger import Ledger

from .fake_llm import FakeLLM
from .pg_helpers import fresh_schema
from .test_expiry import (  # noqa: F401 - collected again, on PostgreSQL
    test_a_restored_deletion_keeps_its_expiry_unless_it_passed,
    test_update_sets_keeps_and_removes_an_expiry,
)
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
from .test_ledger_backends import ledger  # noqa: F401 - the SQLite and PostgreSQL ledgers, one test each
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


def _record(text: str, scope: Scope, **fields: str) -> Any:
    record = new_record(text, np.ones(4, dtype=np.float32) / 2, scope, {}, utc_now())
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def _deletion(record: Any) -> Change:
    record.updated_at = utc_now()
    return Change("DELETE", record, old_memory=record.memory)


def test_the_deleted_view_and_the_scope_counts_in_one_query_each(ledger: Ledger) -> None:  # noqa: F811
    """``deleted``: the scope's deleted memories (not purged, not another scope's), newest deletion
    first, each with its text when deleted; ``scope_counts``: memories readable now, deleted ones,
    history events and relations, all of the scope."""
    me, other = Scope(user_id="u"), Scope(user_id="v")
    relation = {"source": "A", "source_type": "", "relationship": "knows", "destination": "B", "destination_type": ""}
    live = _record("Live text", me)
    gone = _record("Gone text", me, expires_at=stamp(datetime.now(UTC) - timedelta(microseconds=1)))
    first, second, purged, theirs = (_record(t, s) for t, s in (("First", me), ("Second", me), ("P", me), ("T", other)))
    ledger.apply([Change("ADD", r) for r in (gone, first, second, purged, theirs)], ["vectors"])
    ledger.apply([Change("ADD", live, relations=(relation, {**relation, "destination": "C"}))], ["vectors"])
    edited = replace(first, memory="First, edited", updated_at=utc_now())
    ledger.apply([Change("UPDATE", edited, old_memory="First")], ["vectors"])
    for record in (edited, second, purged, theirs):
        ledger.apply([_deletion(record)], ["vectors"])
    ledger.purge([purged.id], ["vectors"], [], str, utc_now())

    rows = ledger.deleted(me, 10)
    assert [(r["id"], r["memory"], r["events"]) for r in rows] == [
        (second.id, "Second", 2),
        (edited.id, "First, edited", 3),
    ]
    assert rows[0]["deleted_at"] > rows[1]["deleted_at"] and rows[1]["created_at"] == first.created_at
    assert [r["id"] for r in ledger.deleted(me, 1)] == [second.id]
    assert ledger.deleted(Scope(user_id="nobody"), 10) == []
    counts = ledger.scope_counts(me)
    # history: 4 adds, first's update, 2 deletions, and the purged memory's one PURGE event (its
    # add and deletion are gone); not v's 2. Memories: the expired one is not counted.
    assert counts == {"memories": 1, "deleted": 2, "history_events": 8, "relations": 2}
    assert ledger.scope_counts(other) == {"memories": 0, "deleted": 1, "history_events": 2, "relations": 0}
