"""Run by bench/llm_calls.py (and bench/locomo.py) inside an interpreter that has mem0ai.

Adds the turns it reads on stdin (a JSON list of {"messages", "user_id", "metadata"}) to a mem0
Memory whose LLM and embedder point at the given OpenAI-compatible server, with infer=True.
Prints one JSON line with timings. mem0 is never a dependency of memorch.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ["MEM0_TELEMETRY"] = "False"


def main() -> None:
    base_url, dims = sys.argv[1], int(sys.argv[2])
    from mem0 import Memory

    work = tempfile.mkdtemp(prefix="mem0-bench-")
    config = {
        "llm": {
            "provider": "openai",
            "config": {"model": "gpt-4.1-mini", "openai_base_url": base_url, "api_key": "bench", "temperature": 0},
        },
        "embedder": {
            "provider": "openai",
            "config": {
                "model": "text-embedding-3-small",
                "openai_base_url": base_url,
                "api_key": "bench",
                "embedding_dims": dims,
            },
        },
        "vector_store": {
            "provider": "qdrant",
            "config": {"path": os.path.join(work, "qdrant"), "embedding_model_dims": dims, "on_disk": True},
        },
        "history_db_path": os.path.join(work, "history.db"),
    }
    memory = Memory.from_config(config)
    batches = json.loads(sys.stdin.read())
    timings = []
    for batch in batches:
        start = time.perf_counter()
        memory.add(batch["messages"], user_id=batch["user_id"], metadata=batch["metadata"], infer=True)
        timings.append(time.perf_counter() - start)
    print(json.dumps({"adds": len(batches), "seconds": timings}))


if __name__ == "__main__":
    main()
