"""The one scope rule, checked on every query path: a scope part that is given must equal the
memory's; parts not given match anything. Real SQLite, LanceDB and Kuzu in a temporary dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from memorch.domain._records import new_record, utc_now
from memorch.storage.base import Change, MemoryRecord, Scope
from memorch.storage.graph import GraphWork, KuzuGraph
from memorch.storage.history import SQLiteLedger
from memorch.storage.vectors import LanceVectorIndex

DIM = 8
STORED = {
    "alice-planner-r1": Scope("alice", "planner", "r1"),
    "alice-coder": Scope("alice", "coder"),
    "alice": Scope("alice"),
    "bob-planner": Scope("bob", "planner"),
}
# scope asked -> the memories it must find, exactly
CASES = [
    (Scope("alice"), {"alice-planner-r1", "alice-coder", "alice"}),
    (Scope("alice", "planner"), {"alice-planner-r1"}),
    (Scope("alice", run_id="r1"), {"alice-planner-r1"}),
    (Scope(agent_id="planner"), {"alice-planner-r1", "bob-planner"}),
    (Scope("alice", "nobody"), set()),
    (Scope("carol"), set()),
]


class Stores:
    def __init__(self, root: Path) -> None:
        self.ledger = SQLiteLedger(root / "memorch.db")
        self.vectors = LanceVectorIndex(root / "lance", DIM)
        self.graph = KuzuGraph(root / "graph.kuzu", root / "graph.lock")
        self.records: dict[str, MemoryRecord] = {}
        rng = np.random.default_rng(7)
        changes = []
        for name, scope in STORED.items():
            vector = rng.standard_normal(DIM).astype(np.float32)
            record = new_record(f"Rex the dog belongs to {name}", vector / np.linalg.norm(vector), scope, {}, utc_now())
            self.records[name] = record
            relation = {"source": "Rex", "relationship": "belongs_to", "destination": name}
            changes.append(Change("ADD", record, relations=(relation,)))
        self.ledger.apply(changes, [])
        self.vectors.upsert(list(self.records.values()))
        relations = self.ledger.relations_for([r.id for r in self.records.values()])
        self.graph.apply([GraphWork(r.id, r.scope, relations[r.id], r.created_at) for r in self.records.values()])

    def names(self, ids: object) -> set[str]:
        by_id = {r.id: name for name, r in self.records.items()}
        return {by_id[i] for i in ids}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    built = Stores(tmp_path_factory.mktemp("scope"))
    yield built
    built.vectors.close()
    built.ledger.close()


def paths(s: Stores) -> dict[str, Callable[[Scope], set[str]]]:
    probe = s.records["alice"].embedding
    return {
        "contains": lambda scope: {n for n, r in s.records.items() if scope.contains(r)},
        "ledger.list": lambda scope: s.names(r.id for r in s.ledger.list(scope, None, 100)),
        "ledger.ids": lambda scope: s.names(s.ledger.ids(scope)),
        "ledger.history": lambda scope: {n for n, r in s.records.items() if s.ledger.history(r.id, scope)},
        "ledger.find_by_hash": lambda scope: {
            n for n, r in s.records.items() if s.ledger.find_by_hash(scope, r.hash) is not None
        },
        "vector search": lambda scope: s.names(h.id for h in s.vectors.search(probe, scope, 100)),
        "text search": lambda scope: s.names(h.id for h in s.vectors.text_search("Rex dog", scope, 100)),
        "ledger relations": lambda scope: s.names(
            row["memory_id"] for row in s.ledger.relations_touching(scope, ["Rex"], [], 100)
        ),
        "ledger neighbourhood": lambda scope: s.names(
            r["memory_id"] for r in s.ledger.neighbourhood(scope, "rex", 1, 100)
        ),
        "graph neighbourhood": lambda scope: s.names(r["memory_id"] for r in s.graph.neighbourhood(scope, "Rex", 1)),
    }


@pytest.mark.parametrize(("scope", "expected"), CASES, ids=lambda v: str(v) if isinstance(v, Scope) else "")
def test_every_query_path_follows_the_scope_rule(stores: Stores, scope: Scope, expected: set[str]) -> None:
    found = {name: path(scope) for name, path in paths(stores).items()}
    assert found == dict.fromkeys(found, expected)
