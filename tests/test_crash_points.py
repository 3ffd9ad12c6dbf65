"""Crash consistency: kill -9 at 76 points of the write path, restart, and check the stores.

Each case is a real function of the write path (the ledger transaction, the LanceDB append,
the request to the Kuzu child process, maintenance, reindex's build-beside-and-swap, reprocess,
background inference, import) that a victim process dies before, after or during
(``crash_harness.py``), at its Nth call in a workload (``crash_workloads.py``), with inference
off (verbatim, import) and on (the scripted model of ``crash_workloads.respond`` served by
``fake_llm.py`` on 127.0.0.1). Two "child" points kill the graph's engine process mid-write
instead: the victim must carry on (``GRAPH_ERROR``, the work kept queued). After the restart
(``crash_state.py``, which also finishes pending background inference): every acknowledged
write is present and searchable, nothing unacknowledged is half-present (a message acknowledged
before inference is there as its facts, never both, never neither), LanceDB and Kuzu equal the
ledger, history is intact (``crash_check.py``).

The victims and restarts are forked from one zygote that imported everything once, two at a
time (``PARALLEL``), each from a copy of a template data directory (see
docs/reliability.md for the cost).
``-k`` selects cases as usual; only the selected ones run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .crash_check import check, read_acks
from .crash_harness import Case, KillPoint
from .crash_workloads import BACKGROUND_WORKLOADS, DOWN_MODEL, respond
from .fake_llm import Failure, FakeLLM

PARALLEL = 2
ROOT = Path(__file__).resolve().parent.parent
SUITE_TIMEOUT_S = 600

COMMIT = "memorch.engine._store:Store.commit"
LEDGER = "memorch.storage.ledger_core:LedgerCore.apply"
LEDGER_ROW = "memorch.storage.ledger_core:LedgerCore._apply_change"  # inside the ledger transaction
CLEAR = "memorch.storage.ledger_core:LedgerCore.clear_pending"
# One index write per commit (or per deferred batch): its deletions, then its append.
REPLACE = "memorch.storage.vectors:LanceVectorIndex.replace"
LANCE_ADD = "lancedb.table:LanceTable.add"
LANCE_DELETE = "lancedb.table:LanceTable.delete"
LANCE_OPTIMIZE = "lancedb.table:LanceTable.optimize"
MAINTAIN = "memorch.storage.vector_maintenance:VectorMaintenance._maintain_once"
PRUNE = "memorch.storage.vector_versions:VersionPruner.prune"
SYNC_GRAPH = "memorch.engine._store:Store.sync_graph"
# The graph runs in a child process (storage/graph_process.py): the victim's seam is the request
# and its reply (``GraphProcess._call("apply", work)``); "during" kills the victim while the child
# writes (the child finishes or not, then exits at end of input), "child" kills the child itself.
GRAPH_CALL = "memorch.storage.graph_process:GraphProcess._call"
MODEL = "memorch.models._llm:LLMClient.structured"
INFER_APPLY = "memorch.inference._plan:apply"
IMPORT_BATCH = "memorch.maintenance._bulk:_plan_batch"
# reindex (storage/rebuild.py): each index built beside the live one, counted, then swapped in.
SWAP_IN = "memorch.storage.rebuild:swap_in"
RENAME = "os:replace"  # swap_in's renames: old aside, new in (nothing else in a victim renames)
REMOVE = "memorch.storage.rebuild:remove_path"
BUILD_GRAPH = "memorch.storage.rebuild:build_graph"

LANCE_DATA = ("lance/memories.lance/data", "")  # "during": once a data file is written
KUZU_FILES = ("", "graph.kuzu")  # "during": once Kuzu's file or WAL changes
LANCE_INDICES = ("lance/memories.lance/_indices", "")  # "during": once an index update is written


@dataclass(frozen=True)
class Point:
    workload: str
    in_flight: str | None  # the operation the kill must land in (None: background work, any)
    target: str
    when: str
    nth: int
    watch: tuple[str, str] = ("", "")
    method: str = ""  # only calls with this first argument count (GRAPH_CALL: "apply")
    xfail: str | None = None

    @property
    def id(self) -> str:
        name = self.target.rsplit(":", 1)[1] + (f".{self.method}" if self.method else "")
        return f"{self.workload}-{name}-{self.when}-{self.nth}"

    @property
    def infer(self) -> bool:
        return self.workload not in ("verbatim", "verbatim_deferred", "importing")


def _verbatim() -> list[Point]:
    """add (1, 2 messages), update, delete, restore, add (other user), delete_all, add; infer off.
    Call numbers: Store.commit, the ledger's apply, replace and clear_pending run once per
    operation; LanceDB's add once per replace with rows (ops 1, 2, 3, 5, 6, 8), its delete for
    the update's old row (op 3), the delete (op 4) and delete_all (op 7)."""
    v = "verbatim"
    return [
        Point(v, "add", COMMIT, "before", 1),
        Point(v, "add", LEDGER, "after", 1),
        Point(v, "add", LEDGER, "after", 2),
        Point(v, "add", LEDGER_ROW, "after", 2),  # the first of two messages written, no COMMIT yet
        Point(v, "add", LANCE_ADD, "during", 2, LANCE_DATA),
        Point(v, "update", COMMIT, "before", 3),
        Point(v, "update", REPLACE, "after", 3),
        Point(v, "update", LANCE_DELETE, "after", 1),  # the old row deleted, the new not appended
        Point(v, "delete", LEDGER, "after", 4),
        Point(v, "delete", LANCE_DELETE, "after", 2),
        Point(v, "delete", CLEAR, "before", 4),  # indexed, the outbox row not yet cleared
        Point(v, "restore", LEDGER, "after", 5),
        Point(v, "restore", LANCE_ADD, "during", 4, LANCE_DATA),
        Point(v, "add", REPLACE, "after", 6),
        Point(v, "delete_all", LEDGER, "after", 7),
        Point(v, "delete_all", LEDGER_ROW, "after", 9),  # one of two deletions written
        Point(v, "delete_all", LANCE_DELETE, "after", 3),
        Point(v, "add", CLEAR, "after", 8),
    ]


def _verbatim_deferred() -> list[Point]:
    """The same operations with the vector rows written after each answer, in batches (50 ms
    after a write, and at close): every index kill point is background work, whichever
    operation is in flight then."""
    w = "verbatim_deferred"
    return [
        Point(w, None, LANCE_ADD, "during", 1, LANCE_DATA),  # the first batch's rows half written
        Point(w, None, REPLACE, "after", 2),  # a batch indexed, its outbox rows not yet cleared
        Point(w, None, LANCE_DELETE, "after", 1),  # an update's old row deleted, its new one not added
        Point(w, None, CLEAR, "before", 2),
    ]


def _inferring() -> list[Point]:
    """Model adds: Alice (ADD), Bob (ADD), flush, Alice moves (UPDATE), Bob leaves (DELETE),
    flush, Carol (ADD), Alice edited by hand, Carol deleted, flush. One model call and one commit
    per add; clear_pending runs per commit and per graph batch (3rd: the first flush)."""
    i = "inferring"
    return [
        Point(i, "add", MODEL, "before", 1),
        Point(i, "add", MODEL, "after", 3),  # the reply in hand, nothing committed
        Point(i, "add", INFER_APPLY, "after", 2),
        Point(i, "add", LEDGER, "after", 1),
        Point(i, "add", LEDGER, "after", 3),
        Point(i, "add", LEDGER, "after", 4),
        Point(i, "add", REPLACE, "before", 3),
        Point(i, "add", LANCE_ADD, "during", 3, LANCE_DATA),
        Point(i, "flush_graph", SYNC_GRAPH, "after", 2),
        Point(i, "flush_graph", GRAPH_CALL, "before", 2, method="apply"),  # the request not sent
        Point(i, "flush_graph", GRAPH_CALL, "after", 3, method="apply"),  # the graph written, its outbox not cleared
        Point(i, "flush_graph", GRAPH_CALL, "during", 1, KUZU_FILES, "apply"),
        Point(i, "flush_graph", GRAPH_CALL, "during", 2, KUZU_FILES, "apply"),
        Point(i, None, GRAPH_CALL, "child", 2, KUZU_FILES, "apply"),  # GRAPH_ERROR; the next flush redoes it
        Point(i, "flush_graph", CLEAR, "before", 3),  # the graph written, its outbox not cleared
    ]


def _background() -> list[Point]:
    """The same adds with the graph following by itself (debounced flush, 50 ms)."""
    b = "inferring_background"
    return [
        Point(b, None, SYNC_GRAPH, "after", 2),
        Point(b, None, GRAPH_CALL, "during", 1, KUZU_FILES, "apply"),
        Point(b, None, GRAPH_CALL, "before", 2, method="apply"),
        Point(b, None, GRAPH_CALL, "child", 1, KUZU_FILES, "apply"),  # the debounced drain fails, retried
    ]


def _background_inference() -> list[Point]:
    """Adds acknowledged before inference (Alice, Bob; flush_inference; Alice moves: an UPDATE).
    Ledger commits: the adds' messages (1, 2, 5) and the worker's facts, each retiring its
    message in the same transaction (3-4 in either order with 2, then 6); two rows per facts
    commit (the 8th row: the UPDATE written, the message's deletion not yet)."""
    g = "background_inference"
    return [
        Point(g, None, MODEL, "before", 1),  # acknowledged, the model not yet asked
        Point(g, None, MODEL, "after", 3),  # the reply in hand, nothing committed
        Point(g, None, INFER_APPLY, "after", 1),  # the facts committed and indexed
        Point(g, None, LEDGER, "after", 4),  # a facts commit, LanceDB not yet told
        Point(g, None, LEDGER_ROW, "after", 8),
        Point(g, None, LEDGER, "after", 6),
        Point(g, None, LANCE_DELETE, "after", 3),  # the last facts commit: message row gone, fact not added
        Point(g, None, CLEAR, "before", 6),
    ]


def _reprocess() -> list[Point]:
    """Two adds while the model is down (model calls 1-2, commits 1-2), then reprocess: per
    pending memory one model call, one apply, one commit (calls 3-4) storing its fact and
    retiring it."""
    r = "reprocess"
    return [
        Point(r, "reprocess", MODEL, "before", 3),
        Point(r, "reprocess", MODEL, "after", 4),
        Point(r, "reprocess", INFER_APPLY, "after", 1),
        Point(r, "reprocess", LEDGER, "after", 3),
        Point(r, "reprocess", LEDGER, "after", 4),
        Point(r, "reprocess", REPLACE, "after", 3),
        Point(r, "reprocess", LANCE_DELETE, "after", 1),  # the message's row gone, its fact's not yet added
    ]


def _importing() -> list[Point]:
    """A 22-line JSONL import (one batch and commit; maintenance then runs in the background),
    an explicit maintenance pass, a graph flush, reindex, an update and an add; infer off."""
    m = "importing"
    return [
        Point(m, "import", IMPORT_BATCH, "after", 1),
        Point(m, "import", LEDGER_ROW, "after", 10),  # inside the import's transaction
        Point(m, "import", LEDGER, "after", 1),
        Point(m, "import", REPLACE, "after", 1),
        Point(m, "import", LANCE_ADD, "during", 1, LANCE_DATA),
        Point(m, None, MAINTAIN, "after", 1),
        Point(m, None, LANCE_OPTIMIZE, "during", 1, LANCE_INDICES),
        Point(m, None, PRUNE, "before", 1),
        # The 2nd optimize is the pruning pass's second compaction (the import's own pass, or the
        # explicit one): maintenance either way.
        Point(m, None, LANCE_OPTIMIZE, "after", 2),
        Point(m, "flush_graph", SYNC_GRAPH, "after", 1),
        # reindex: remove_path 1 clears the vector staging, 2-3 the old copy (before and after the
        # renames); 4-6 the graph staging, 7-9 and 10-12 the old graph's files.
        Point(m, "reindex", SWAP_IN, "before", 1),  # the new vector index built beside and counted
        Point(m, "reindex", RENAME, "after", 1),  # the old vector index aside, the new not yet in
        Point(m, "reindex", REMOVE, "before", 3),  # the new one in, the old not yet removed
        Point(m, "reindex", BUILD_GRAPH, "before", 1),  # vectors swapped and their outbox cleared
        Point(m, "reindex", GRAPH_CALL, "during", 2, ("", "graph.kuzu.rebuild"), "apply"),
        Point(m, "reindex", SWAP_IN, "before", 2),  # the new graph built beside and counted
        Point(m, "reindex", RENAME, "after", 3),  # the old graph aside, the new not yet in
        Point(m, "reindex", REMOVE, "before", 10),  # the new graph in, the old not yet removed
        Point(m, "update", COMMIT, "before", 2),
        Point(m, "add", LEDGER, "after", 3),
    ]


def _importing_inferred() -> list[Point]:
    """``import --from text --infer`` of three lines: three model adds, the third an UPDATE."""
    t = "importing_inferred"
    return [
        Point(t, "import", COMMIT, "before", 2),
        Point(t, "import", LEDGER, "after", 3),
        Point(t, "import", MODEL, "after", 2),
        Point(t, "import", REPLACE, "before", 3),
    ]


CASES = [
    *_verbatim(),
    *_verbatim_deferred(),
    *_inferring(),
    *_background(),
    *_background_inference(),
    *_reprocess(),
    *_importing(),
    *_importing_inferred(),
]


def _case(point: Point, root: Path, llm_url: str) -> Case:
    watch_dir, watch_prefix = point.watch
    kill = KillPoint(point.target, point.when, point.nth, watch_dir, watch_prefix, point.method)
    return Case(point.id, point.workload, kill, str(root / point.id / "data"), llm_url, point.infer)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the selected cases (victim, then restart) through one zygote; {case id: (case, result)}."""
    selected = {
        item.callspec.params["point"].id
        for item in request.session.items
        if hasattr(item, "callspec") and "point" in item.callspec.params
    }
    root = tmp_path_factory.mktemp("crash")
    fake = FakeLLM()
    fake.responder = respond
    fake.fail_models[DOWN_MODEL] = Failure(503)
    fake.start()
    cases = {p.id: _case(p, root, fake.url) for p in CASES if p.id in selected}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORCH_")}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.crash_harness", str(PARALLEL)],
            input="".join(c.to_json() + "\n" for c in cases.values()),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=SUITE_TIMEOUT_S,
        )
    finally:
        fake.stop()
    assert done.returncode == 0, f"the zygote failed ({done.returncode}): {done.stderr[-3000:]}"
    results = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    for case_id, result in results.items():  # beside the case's acks and state, for a post-mortem
        (root / case_id / "result.json").write_text(json.dumps(result))
    print(f"\n{len(cases)} kill points in {time.monotonic() - started:.1f} s")
    yield {i: (cases[i], results.get(i)) for i in cases}


def _params() -> list[Any]:
    return [
        pytest.param(p, id=p.id, marks=[pytest.mark.xfail(strict=True, reason=p.xfail)] if p.xfail else [])
        for p in CASES
    ]


def test_the_kill_points_are_distinct_and_enough() -> None:
    assert len({p.id for p in CASES}) == len(CASES) >= 50
    assert {p.infer for p in CASES} == {True, False}


@pytest.mark.parametrize("point", _params())
def test_crash_point(point: Point, outcomes: dict[str, Any]) -> None:
    case, result = outcomes[point.id]
    assert result is not None, f"the runner of {point.id} reported nothing"
    error = case.error_path.read_text() if case.error_path.exists() else ""
    killed_at = case.marker_path.read_text() if case.marker_path.exists() else ""
    if point.when == "child":  # the graph's engine died mid-write; the victim carried on
        assert killed_at == "child", f"the graph engine was never killed mid-write (marker {killed_at!r})"
        assert result["victim"] == 0, f"the victim did not survive its graph engine's death: {error}"
    else:
        assert result["victim"] == -9, f"the kill point was never reached (exit {result['victim']}): {error}"
        assert killed_at == point.when, f"killed {killed_at!r}, not {point.when!r}"
    assert result["restart"] == 0, f"the restart failed: {error}"
    acks = read_acks(case.ack_path)
    if point.in_flight is not None:
        assert acks.in_flight is not None and acks.in_flight["begin"] == point.in_flight, (
            f"the kill landed in {acks.in_flight and acks.in_flight['begin']}, not {point.in_flight}"
        )
    state = json.loads(case.state_path.read_text())
    check(state, acks)
    if point.workload in BACKGROUND_WORKLOADS:
        assert state["pending_inference"] == 0, f"{state['pending_inference']} messages still wait for inference"


# -- the judge itself: a damaged store must not pass --------------------------------------------


def _acks(tmp_path: Path, *lines: dict[str, Any]) -> Any:
    path = tmp_path / "acks.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return read_acks(path)


def _row(memory_id: str, text: str, relations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    event = {"event": "ADD", "new_memory": text, "is_deleted": False}
    return {
        "id": memory_id,
        "memory": text,
        "user_id": "u",
        "agent_id": None,
        "run_id": None,
        "relations": relations or [],
        "history": [event],
    }


def _settled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A state in which the indexes equal the ledger (as ``crash_state.collect`` would report)."""
    from .crash_check import _relations

    live = {r["id"]: r for r in rows}
    return {
        "rows": rows,
        "vector_ids": sorted(live),
        "vector_rows": len(live),
        "pending": {"vectors": [], "graph": []},
        "graph": _relations(live),
        "search": {i: [i] for i in live},
    }


TWO_ADDS = (
    {"begin": "add", "n": 1, "expect": [{"create": [["a", "u"]]}]},
    {"done": "add", "n": 1, "result": {"results": [{"id": "m1", "memory": "a", "event": "ADD"}]}},
    {"begin": "add", "n": 2, "expect": [{"create": [["b", "u"], ["c", "u"]]}]},
)


def test_the_judge_accepts_a_settled_store(tmp_path: Path) -> None:
    acks = _acks(tmp_path, *TWO_ADDS)
    assert check(_settled([_row("m1", "a")]), acks) == 0
    assert check(_settled([_row("m1", "a"), _row("m2", "b"), _row("m3", "c")]), acks) == 1


def test_the_judge_rejects_a_half_present_write(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="matches no allowed state"):
        check(_settled([_row("m1", "a"), _row("m2", "b")]), _acks(tmp_path, *TWO_ADDS))


def test_the_judge_rejects_a_lost_acknowledged_write(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="acknowledged memory m1"):
        check(_settled([]), _acks(tmp_path, *TWO_ADDS))


def test_the_judge_rejects_orphans_and_stale_edges(tmp_path: Path) -> None:
    acks = _acks(tmp_path, *TWO_ADDS)
    orphan = _settled([_row("m1", "a")])
    orphan["vector_ids"].append("gone")
    with pytest.raises(AssertionError, match="orphans"):
        check(orphan, acks)
    stale = _settled([_row("m1", "a")])
    stale["graph"] = _settled([_row("m1", "a", [{"source": "A", "relationship": "r", "destination": "B"}])])["graph"]
    with pytest.raises(AssertionError, match="graph relates differ"):
        check(stale, acks)
    unsearchable = _settled([_row("m1", "a")])
    unsearchable["search"]["m1"] = []
    with pytest.raises(AssertionError, match="not found by searching"):
        check(unsearchable, acks)


PENDING_ADD = (
    {
        "begin": "add",
        "n": 1,
        "expect": [{"create": [["Alice lives in Paris", "u"]], "retired": ["Alice: I live in Paris"]}],
    },
    {
        "done": "add",
        "n": 1,
        "result": {"results": [{"id": "m1", "memory": "Alice: I live in Paris", "event": "ADD"}], "pending": True},
    },
)


def _retired(memory_id: str, text: str) -> dict[str, Any]:
    events = [
        {"event": "ADD", "new_memory": text, "is_deleted": False},
        {"event": "DELETE", "old_memory": text, "new_memory": None, "is_deleted": True},
    ]
    return {"id": memory_id, "deleted": True, "user_id": "u", "history": events}


def _with_retired(live: list[dict[str, Any]], *retired: dict[str, Any]) -> dict[str, Any]:
    state = _settled(live)
    state["rows"] = [*live, *retired]
    return state


def test_the_judge_wants_a_pending_message_as_its_facts_never_both_never_neither(tmp_path: Path) -> None:
    message = "Alice: I live in Paris"
    acks = _acks(tmp_path, *PENDING_ADD)
    assert check(_with_retired([_row("f1", "Alice lives in Paris")], _retired("m1", message)), acks) == 0
    with pytest.raises(AssertionError, match="matches no allowed state"):  # both
        check(_settled([_row("m1", message), _row("f1", "Alice lives in Paris")]), acks)
    with pytest.raises(AssertionError, match="matches no allowed state"):  # neither
        check(_with_retired([], _retired("m1", message)), acks)
    with pytest.raises(AssertionError, match="matches no allowed state"):  # the facts twice
        check(
            _with_retired(
                [_row("f1", "Alice lives in Paris"), _row("f2", "Alice lives in Paris")], _retired("m1", message)
            ),
            acks,
        )


def test_the_judge_allows_an_in_flight_pending_message_only_as_its_facts(tmp_path: Path) -> None:
    message = "Alice: I live in Paris"
    acks = _acks(tmp_path, PENDING_ADD[0])
    assert check(_settled([]), acks) == 0
    assert check(_with_retired([_row("f1", "Alice lives in Paris")], _retired("m9", message)), acks) == 1
    with pytest.raises(AssertionError, match="matches no allowed state"):  # stored, never inferred
        check(_settled([_row("m9", message)]), acks)
    with pytest.raises(AssertionError, match="neither live nor an expected deletion"):  # another text retired
        check(_with_retired([_row("f1", "Alice lives in Paris")], _retired("m9", "Bob: I live in Oslo")), acks)
