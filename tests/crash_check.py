"""Judge a restarted data directory (``crash_state.collect``) against a victim's ack file.

The acknowledged operations are replayed into the expected memories (id → text). The one
operation in flight when the kill landed (begun, never acknowledged) may have committed any
prefix of its expected ledger transactions (``crash_workloads``), each whole or not at all.
Then: the ledger equals one of those states; deleted memories are gone; every live memory is
in LanceDB once and found by a search for its text; LanceDB holds no other id; the graph holds
exactly the ledger's relations (no orphan memory node, mention, entity or edge); no index work
is left owed; every memory's history starts with ADD and ends with its present state, and holds
each acknowledged change.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memorch.storage.base import Scope
from memorch.storage.graph import entity_key

CHANGES = ("ADD", "UPDATE", "RESTORE")


@dataclass
class Expected:
    alive: dict[str, str] = field(default_factory=dict)  # id → text
    dead: set[str] = field(default_factory=set)
    creates: Counter[tuple[str, str]] = field(default_factory=Counter)  # (text, user) of new ids
    # Texts of messages stored in flight (ids never acknowledged) and then replaced by their
    # facts (background inference): their deleted rows are expected.
    retired: set[str] = field(default_factory=set)

    def copy(self) -> Expected:
        return Expected(dict(self.alive), set(self.dead), Counter(self.creates), set(self.retired))

    def set(self, memory_id: str, text: str) -> None:
        self.alive[memory_id] = text
        self.dead.discard(memory_id)

    def kill(self, memory_id: str) -> None:
        self.alive.pop(memory_id, None)
        self.dead.add(memory_id)

    def apply(self, tx: dict[str, Any]) -> None:
        for text, user in tx.get("create", []):
            self.creates[(text, user)] += 1
        for memory_id, text in tx.get("set", {}).items():
            self.set(memory_id, text)
        for old, new in tx.get("set_text", {}).items():  # an update of a memory created in flight
            key = next(k for k in self.creates if k[0] == old)
            self.creates[key] -= 1
            self.creates[(new, key[1])] += 1
        for memory_id in [*tx.get("delete", []), *tx.get("dead", [])]:
            self.kill(memory_id)
        self.retired.update(tx.get("retired", []))


@dataclass
class Acks:
    expected: Expected
    events: list[tuple[str, str, str | None]]  # acknowledged (id, event, text)
    in_flight: dict[str, Any] | None


def read_acks(path: Path) -> Acks:
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    begun = {line["n"]: line for line in lines if "begin" in line}
    expected, events = Expected(), []
    finished = set()
    for line in lines:
        if "done" not in line:
            continue
        finished.add(line["n"])
        result = line["result"]
        items = result.get("results", []) if isinstance(result, dict) else []
        if isinstance(result, dict) and "event" in result:
            items = [result]
        for item in items:
            if item["event"] == "DELETE":
                expected.kill(item["id"])
            elif item["event"] in (*CHANGES, "PRESENT"):
                expected.set(item["id"], item["memory"])
            if item["event"] in (*CHANGES, "DELETE"):
                events.append((item["id"], item["event"], item.get("memory")))
        for tx in begun[line["n"]]["expect"]:  # deletions a result does not list (delete_all, reprocess)
            for memory_id in [*tx.get("delete", []), *tx.get("dead", [])]:
                expected.kill(memory_id)
        if isinstance(result, dict) and result.get("pending"):
            # Acknowledged before inference: the restart's flush_inference replaces the stored
            # messages by their facts, whether or not the victim got that far.
            for item in items:
                expected.kill(item["id"])
            for tx in begun[line["n"]]["expect"]:
                expected.apply({k: v for k, v in tx.items() if k in ("create", "set_text")})
    open_ops = [line for n, line in begun.items() if n not in finished]
    assert len(open_ops) <= 1, f"more than one operation in flight: {open_ops}"
    return Acks(expected, events, open_ops[0] if open_ops else None)


def _ledger_problems(want: Expected, live: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for memory_id, text in want.alive.items():
        if memory_id not in live:
            problems.append(f"acknowledged memory {memory_id} ({text!r}) is missing")
        elif live[memory_id]["memory"] != text:
            problems.append(f"memory {memory_id} says {live[memory_id]['memory']!r}, expected {text!r}")
    problems += [f"deleted memory {i} is back" for i in want.dead if i in live]
    extra = Counter((r["memory"], r["user_id"]) for i, r in live.items() if i not in want.alive)
    if extra != +want.creates:
        problems.append(f"unacknowledged memories {dict(extra)}, expected {dict(+want.creates)}")
    return problems


def match_ledger(acks: Acks, live: dict[str, dict[str, Any]]) -> tuple[Expected, int]:
    """The state the ledger matches (and how many in-flight transactions it holds), or fail."""
    txs = acks.in_flight["expect"] if acks.in_flight else []
    state, tried = acks.expected.copy(), []
    for committed in range(len(txs) + 1):
        if committed:
            state.apply(txs[committed - 1])
        problems = _ledger_problems(state, live)
        if not problems:
            return state, committed
        tried.append(f"with {committed} of {len(txs)} in-flight transactions: {problems}")
    raise AssertionError("the ledger matches no allowed state:\n" + "\n".join(tried))


def _relations(live: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    relates, mentions = set(), set()
    for memory_id, row in live.items():
        scope = Scope(row["user_id"], row["agent_id"], row["run_id"])
        for rel in row["relations"]:
            source, destination = entity_key(scope, rel["source"]), entity_key(scope, rel["destination"])
            relates.add((source, rel["relationship"], destination, memory_id))
            mentions |= {(memory_id, source), (memory_id, destination)}
    return {
        "relates": sorted(list(r) for r in relates),
        "memories": sorted({m for m, _ in mentions}),
        "mentions": sorted(list(m) for m in mentions),
        "entities": sorted({k for _, k in mentions}),
    }


def check_history(rows: list[dict[str, Any]], acks: Acks, dead: set[str]) -> None:
    for row in rows:
        events, memory_id = row["history"], row["id"]
        assert events and events[0]["event"] == "ADD", f"history of {memory_id} does not start with ADD: {events}"
        if row.get("deleted"):
            assert memory_id in dead, f"{memory_id} has history but is neither live nor an expected deletion"
            assert events[-1]["is_deleted"], f"deleted {memory_id} does not end with DELETE: {events}"
        else:
            assert not events[-1]["is_deleted"] and events[-1]["new_memory"] == row["memory"], (
                f"history of {memory_id} does not end with its text {row['memory']!r}: {events}"
            )
    by_id = {row["id"]: row["history"] for row in rows}
    for memory_id, kind, text in acks.events:
        found = [
            e for e in by_id.get(memory_id, []) if e["event"] == kind and (kind == "DELETE" or e["new_memory"] == text)
        ]
        assert found, f"acknowledged {kind} of {memory_id} ({text!r}) is not in its history"


def check(state: dict[str, Any], acks: Acks) -> int:
    """Assert every invariant; returns how many in-flight transactions had committed."""
    rows = state["rows"]
    live = {row["id"]: row for row in rows if not row.get("deleted")}
    want, committed = match_ledger(acks, live)
    assert state["pending"] == {"vectors": [], "graph": []}, f"index work still owed: {state['pending']}"
    assert set(state["vector_ids"]) == set(live), (
        f"LanceDB ids differ from the ledger: orphans {set(state['vector_ids']) - set(live)}, "
        f"missing {set(live) - set(state['vector_ids'])}"
    )
    assert state["vector_rows"] == len(live), f"{state['vector_rows']} LanceDB rows for {len(live)} memories"
    unfound = {i: row["memory"] for i, row in live.items() if i not in state["search"][i]}
    assert not unfound, f"not found by searching their own text: {unfound}"
    expected_graph = _relations(live)
    for part in ("relates", "memories", "mentions", "entities"):
        assert state["graph"][part] == expected_graph[part], (
            f"graph {part} differ from the ledger: got {state['graph'][part]}, expected {expected_graph[part]}"
        )
    retired = {r["id"] for r in rows if r.get("deleted") and r["history"][0].get("new_memory") in want.retired}
    check_history(rows, acks, want.dead | retired)
    return committed
