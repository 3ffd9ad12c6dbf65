"""Run by bench/longmemeval.py inside an interpreter that has mem0ai + sentence-transformers.

Reads ``{"data": path, "question_ids": [...]}`` on stdin; for each question, adds its turns one by
one (mem0 has no batch add) with ``infer=False`` to the same offline mem0 as bench/locomo.py (the
bundled MiniLM weights, qdrant on disk), ``user_id`` = the question id, then searches exactly as
bench/longmemeval.py does (``measure``). Prints one JSON line: the per-question rows.
"""

from __future__ import annotations

import json
import sys

from _mem0_locomo import offline_mem0  # beside this script: its directory is on sys.path; sets mem0 offline
from longmemeval import Turn, load, measure


class Mem0System:
    def __init__(self) -> None:
        self.memory = offline_mem0("mem0-longmemeval-")
        self.memory.add("warm-up", user_id="warm-up", infer=False)  # load the model outside the timings

    def load(self, scope: str, turns: list[Turn]) -> None:
        for turn in turns:
            self.memory.add(turn.text, user_id=scope, metadata=turn.metadata, infer=False)

    def search(self, scope: str, query: str, k: int, asked_at: str) -> list[str]:
        # mem0ai's search has no notion of when a question is asked: asked_at is not used.
        found = self.memory.search(query, filters={"user_id": scope}, top_k=k, threshold=0.0)
        return [(r.get("metadata") or {}).get("turn") for r in found["results"]]


def main() -> None:
    request = json.loads(sys.stdin.read())
    by_id = {q["question_id"]: q for q in load(request["data"])}
    system = Mem0System()
    rows = []
    for number, question_id in enumerate(request["question_ids"], 1):
        rows.append(measure(system, by_id[question_id]))
        print(f"mem0 [{number}/{len(request['question_ids'])}] {rows[-1]['import_s']:.1f} s", file=sys.stderr)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
