"""Where an import of long turns spends its time: each LongMemEval question's haystack imported
into its own scope (as ``bench/longmemeval.py`` does), the stages timed by wrapping the functions
that do them.

    uv run python bench/import_stages.py [../shared/bench/longmemeval_s_dev.json.gz] [--questions 6]

Stages, as shares of the imports' wall time: the embedding (``CachedEmbedder.embed``), the ledger
commit (``Store.commit``, which writes the index rows a batch owes), the index rows written
(``Store.sync_vectors``: on the writer's thread and on the index worker's, so it overlaps the rest),
the end-of-import pass (``LanceVectorIndex.maintain_now``: compaction and the full-text fold),
the duplicate check (``_fresh``) and the items' validation (``_checked``). Prints one JSON line
last.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from add_stages import timed  # beside this script: its directory is on sys.path
from locomo_protocol import load
from longmemeval import DEFAULT, MemorchSystem, select, turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--embedder", default="auto")
    args = parser.parse_args()

    import memorch.maintenance._bulk as bulk
    from memorch.engine._store import Store
    from memorch.models._embeddings import CachedEmbedder
    from memorch.storage.vectors import LanceVectorIndex

    totals: dict[str, list[float]] = defaultdict(list)
    stages = {
        "embedding": (CachedEmbedder, "embed"),
        "ledger commit": (Store, "commit"),
        "index rows": (Store, "sync_vectors"),
        "end-of-import pass": (LanceVectorIndex, "maintain_now"),
        "duplicate check": (bulk, "_fresh"),
        "validation": (bulk, "_checked"),
    }
    for name, (owner, attribute) in stages.items():
        setattr(owner, attribute, timed(totals, name, getattr(owner, attribute)))
    questions = select(load(args.data), args.questions, None)
    with tempfile.TemporaryDirectory() as work:
        system = MemorchSystem(Path(work), args.embedder)
        totals.clear()  # the warm-up's
        imported, wall = 0, 0.0
        for question in questions:
            haystack = list(turns(question))
            started = time.perf_counter()
            system.load(question["question_id"], haystack)
            wall += time.perf_counter() - started
            imported += len(haystack)
        system.close()
    print(f"{imported} turns in {wall:.1f} s: {imported / wall:.1f} turns/s")
    shares = {name: sum(totals[name]) / 1000 / wall for name in stages}
    for name, share in shares.items():
        print(f"  {name:<20} {sum(totals[name]) / 1000:7.2f} s  {share:6.1%}")
    rounded = {name: round(share, 4) for name, share in shares.items()}
    print(json.dumps({"turns": imported, "seconds": round(wall, 2), "shares": rounded}))


if __name__ == "__main__":
    main()
