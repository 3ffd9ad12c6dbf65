"""How many true neighbours the ANN index finds, on real embeddings.

    python bench/ann_recall.py [--size 100000] [--queries 200] [--embedder static]

bench/scale.py times the store with random vectors, which have no neighbourhood structure, so
an ANN index's recall on them says nothing. Here the synthetic sentences of bench/scale.py are
embedded for real (the static tier by default: 100k sentences in seconds; ``--embedder local``
for MiniLM, ~5 min at 100k), stored in one scope, and the index's top 10 for each query is
compared with exact brute force over the same table (a hit counts when it is at least as
similar as the exact 10th, since repeated sentences tie). Prints recall@10 and both latencies; the
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import NAMES, OBJECTS, PLACES, VERBS, sentences


def main() -> None:
    from memorch.domain._records import new_record, utc_now
    from memorch.models._embeddings import make_embedder
    from memorch.storage.base import Scope
    from memorch.storage.vectors import LanceVectorIndex

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedder", default="static")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        embedder = make_embedder(args.embedder, None, None, 32, data_dir=Path(work))
        texts = sentences(args.size)
        scope, now = Scope(user_id="one"), utc_now()
        index = LanceVectorIndex(Path(work) / "lance", 384)
        vectors: dict[str, np.ndarray] = {}
        for start in range(0, len(texts), 5000):
            chunk = texts[start : start + 5000]
            records = [new_record(t, v, scope, {}, now) for t, v in zip(chunk, embedder.embed(chunk), strict=True)]
            vectors.update((r.id, r.embedding) for r in records)
            index.upsert(records)
        index.maintain_now()  # builds the ANN index past 50k rows
        rng = np.random.default_rng(3)
        queries = [
            f"who {VERBS[rng.integers(len(VERBS))]} {OBJECTS[rng.integers(len(OBJECTS))]} "
            f"in {PLACES[rng.integers(len(PLACES))]}? maybe {NAMES[rng.integers(len(NAMES))]}"
            for _ in range(args.queries)
        ]
        found, ann_ms, exact_ms = [], [], []
        for vector in embedder.embed(queries):
            start = time.perf_counter()
            ann = index.search(vector, scope, 10)
            ann_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            query = index._table.search(vector).distance_type("cosine").select(["id", "_distance"]).limit(10)
            exact = query.bypass_vector_index().to_arrow().column("_distance").to_pylist()
            exact_ms.append((time.perf_counter() - start) * 1000)
            # Judged by exact similarity, not id: the sentences repeat, so the 10th place often
            # ties (and the index's own distances are approximate, from quantized vectors).
            tenth = 1.0 - max(exact)
            found.append(sum(float(vectors[h.id] @ vector) >= tenth - 1e-5 for h in ann) / 10)
        result = {
            "size": args.size,
            "embedder": embedder.model_id,
            "vector_index": index._vector_index_segments() > 0,
            "recall@10_vs_exact": round(float(np.mean(found)), 3),
            "ann_p50_ms": round(statistics.median(ann_ms), 2),
            "exact_p50_ms": round(statistics.median(exact_ms), 2),
        }
        index.close()
    print(
        f"{args.size:,} memories ({result['embedder']}): ANN recall@10 {result['recall@10_vs_exact']} "
        f"({result['ann_p50_ms']} ms p50) against exact search ({result['exact_p50_ms']} ms p50)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
