"""Run by bench/import_rate.py inside an interpreter that has mem0ai + sentence-transformers.

Adds the items it reads on stdin (a JSON list of {"memory", "user_id", "metadata"}) one by one
with infer=False (mem0 has no batch add) to the same offline mem0 as bench/locomo.py, after one
warm-up add that loads the model. Prints one JSON line: items and seconds.
"""

from __future__ import annotations

import json
import sys
import time

from _mem0_locomo import offline_mem0


def main() -> None:
    items = json.loads(sys.stdin.read())
    memory = offline_mem0("mem0-import-")
    memory.add("warm-up", user_id="warm-up", infer=False)
    start = time.perf_counter()
    for item in items:
        memory.add(item["memory"], user_id=item["user_id"], metadata=item["metadata"], infer=False)
    print(json.dumps({"items": len(items), "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
