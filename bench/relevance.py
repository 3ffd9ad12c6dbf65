"""Does ``score`` mean relevance? Own-scope vs other-scope searches on LOCOMO, in one run.

    python bench/relevance.py [../shared/bench/locomo_dev.json] [--embedder static] [--fit 2]

Every conversation's turns are stored as ``bench/locomo_protocol.py`` stores them (verbatim, one user
per conversation). Every category 1-4 question is then searched three times:

- own: in its own conversation's scope (relevant turns exist);
- other: in the next conversation's scope (none do);
- hard: in the next conversation's scope with the speaker names swapped for that
  conversation's names (so names, the strongest keyword, match).

Reported for the top hit's ``score``: AUROC separating own from other (plain) and own from hard;
at the default threshold (``MemoryConfig.search_threshold``) the share of own searches whose top
hit scores it and of other/hard searches whose top hit does not (the first hit of the ranking at
threshold 0; what a caller gets is reported below it). Baselines from ``explain`` in the
same run: the old min-max fused value (``fusion.fused``, what ``score`` was before), the top hit's
raw cosine and raw BM25. Generalization: a threshold is fitted on the first ``--fit``
conversations (the 5th percentile of their own-scope top scores) and reported on the rest.
Recall@k of the own-scope searches is printed with no threshold (ranking), as the default search
returns them (an answer when a hit reaches the threshold, its hits down to half of it,
``memorch.retrieval._cut``) and with the default threshold given as a floor for every hit; for
other- and hard-scope searches, how often each of those two comes back empty and how many hits
it returns per search (limit 30; an empty answer counts 0).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "bench" / "locomo_dev.json"
KS = (5, 10, 30)
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def auroc(positives: list[float], negatives: list[float]) -> float:
    """P(a random positive outscores a random negative), ties counting half."""
    import numpy as np

    pos, neg = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def swap_names(text: str, ours: tuple[str, str], theirs: tuple[str, str]) -> str:
    # Through placeholders, so that swapping A->B and B->A cannot undo itself.
    for i, name in enumerate(ours):
        text = text.replace(name, f"\0{i}")
    for i, name in enumerate(theirs):
        text = text.replace(f"\0{i}", name)
    return text


def top_features(found: dict[str, Any]) -> dict[str, float]:
    """The top hit's score and the baselines read from its ``explain``."""
    if not found["results"]:
        return {"score": 0.0, "fused": 0.0, "cosine": -1.0, "bm25": 0.0}
    detail = found["results"][0]["explain"]
    return {
        "score": found["results"][0]["score"],
        "fused": detail["fusion"]["fused"],
        "cosine": detail.get("vector", {}).get("similarity", -1.0),
        "bm25": detail.get("text", {}).get("bm25", 0.0),
    }


def collect(data: list[dict[str, Any]], embedder: str, default: float) -> tuple[list[dict[str, Any]], list[float]]:
    from locomo_protocol import questions, turns

    from memorch.api._memory import Memory
    from memorch.config import MemoryConfig

    order = [s["sample_id"] for s in data]
    names = {s["sample_id"]: (s["conversation"]["speaker_a"], s["conversation"]["speaker_b"]) for s in data}
    rows: list[dict[str, Any]] = []
    search_ms: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        # Each search twice: with threshold 0 (every search returns its top hit, thresholds are
        # applied to it afterwards) and as a caller gets it by default (``returned``).
        memory = Memory(MemoryConfig(data_dir=Path(work), embedder=embedder))
        try:
            for sample in data:
                print(f"adding {sample['sample_id']}", file=sys.stderr)
                for turn in turns(sample):
                    memory.add(turn.content, user_id=turn.sample_id, metadata=turn.metadata, infer=False)
            for sample in data:
                own = sample["sample_id"]
                other = order[(order.index(own) + 1) % len(order)]
                print(f"searching {own} (negatives in {other})", file=sys.stderr)
                for question in questions(sample):
                    hard = swap_names(question.text, names[own], names[other])
                    row: dict[str, Any] = {"conversation": own, "evidence": question.evidence}
                    searches = (("own", question.text, own), ("other", question.text, other), ("hard", hard, other))
                    for kind, text, scope in searches:
                        start = time.perf_counter()
                        found = memory.search(text, user_id=scope, limit=max(KS), threshold=0.0, explain=True)
                        search_ms.append((time.perf_counter() - start) * 1000)
                        row[kind] = top_features(found)
                        for key, threshold in (("returned", None), ("each_at_default", default)):
                            got = memory.search(text, user_id=scope, limit=max(KS), threshold=threshold)["results"]
                            row[kind][key] = [r["metadata"].get("dia_id") for r in got]
                        if kind == "own":
                            row["ranked"] = [(r["metadata"].get("dia_id"), r["score"]) for r in found["results"]]
                    rows.append(row)
        finally:
            memory.close()
    return rows, search_ms


def recall(rows: list[dict[str, Any]], found: Callable[[dict[str, Any]], list[str]]) -> dict[str, float]:
    """Recall@k of the own-scope searches, ``found(row)`` giving a search's dia_ids in order."""
    out = {}
    for k in KS:
        values = []
        for row in rows:
            kept = set(found(row)[:k])
            values.append(len(kept & set(row["evidence"])) / len(row["evidence"]))
        out[f"recall@{k}"] = round(statistics.fmean(values), 4)
    return out


def returned(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """What a search (``key``: ``returned`` by default, ``each_at_default`` with the default
    threshold given) returns where nothing is relevant: the share of
    other- and hard-scope searches with an empty answer, and their mean number of hits (limit 30)."""
    out = {}
    for kind in ("other", "hard"):
        counts = [len(r[kind][key]) for r in rows]
        out[f"{kind}_empty"] = round(statistics.fmean(c == 0 for c in counts), 4)
        out[f"{kind}_hits"] = round(statistics.fmean(counts), 2)
    return out


def at_threshold(rows: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    def share(kind: str, keep: bool) -> float:
        return round(statistics.fmean((r[kind]["score"] >= threshold) == keep for r in rows), 4)

    return {"own_kept": share("own", True), "other_empty": share("other", False), "hard_empty": share("hard", False)}


def separation(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        feature: {
            negative: round(auroc([r["own"][feature] for r in rows], [r[negative][feature] for r in rows]), 4)
            for negative in ("other", "hard")
        }
        for feature in ("score", "fused", "cosine", "bm25")
    }


def fitted_threshold(rows: list[dict[str, Any]]) -> float:
    """The 5th percentile of own-scope top scores: keeps the top hit in 95% of own searches."""
    ordered = sorted(r["own"]["score"] for r in rows)
    return ordered[int(0.05 * len(ordered))]


def main() -> None:
    from memorch.config import MemoryConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--embedder", default="local", help="MEMORCH_EMBEDDER (local, static, a LiteLLM model)")
    parser.add_argument("--fit", type=int, default=2, help="conversations the generalization threshold is fitted on")
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    default = MemoryConfig.model_fields["search_threshold"].default
    rows, search_ms = collect(data, args.embedder, default)

    fit_ids = {s["sample_id"] for s in data[: args.fit]}
    fit_rows = [r for r in rows if r["conversation"] in fit_ids]
    held_rows = [r for r in rows if r["conversation"] not in fit_ids]
    fitted = fitted_threshold(fit_rows)
    result = {
        "embedder": args.embedder,
        "questions": len(rows),
        "auroc": separation(rows),
        "default_threshold": default,
        "at_default": at_threshold(rows, default),
        "threshold_table": {str(t): at_threshold(rows, t) for t in THRESHOLDS},
        "own_top_score_p5": round(fitted_threshold(rows), 4),
        "generalization": {
            "fitted_on": sorted(fit_ids),
            "threshold": round(fitted, 4),
            "held_out": at_threshold(held_rows, fitted),
            "held_out_auroc": separation(held_rows)["score"],
        },
        "recall_no_threshold": recall(rows, lambda row: [dia for dia, _ in row["ranked"]]),
        "recall_at_default": recall(rows, lambda row: row["own"]["returned"]),
        "recall_each_at_default": recall(rows, lambda row: row["own"]["each_at_default"]),
        "returned_by_default": returned(rows, "returned"),
        "returned_each_at_default": returned(rows, "each_at_default"),
        "search_p50_ms": round(statistics.median(search_ms), 2),
    }
    auc = result["auroc"]
    print(f"questions {len(rows)}, embedder {args.embedder}, search p50 {result['search_p50_ms']} ms")
    print("AUROC own vs other / own vs hard (top hit):")
    for feature, label in (("score", "score (new)"), ("fused", "min-max fused (old score)")):
        print(f"  {label:28s} {auc[feature]['other']:.3f} / {auc[feature]['hard']:.3f}")
    for feature, label in (("cosine", "raw cosine"), ("bm25", "raw BM25")):
        print(f"  {label:28s} {auc[feature]['other']:.3f} / {auc[feature]['hard']:.3f}")
    ratio = auc["score"]["other"] / auc["fused"]["other"]
    print(f"  ratio new/old (plain)        {ratio:.2f}")
    for t, row in [(default, result["at_default"])] + [(float(k), v) for k, v in result["threshold_table"].items()]:
        mark = " (default)" if t == default else ""
        print(
            f"threshold {t:.2f}{mark}: own top kept {row['own_kept']:.3f}, other empty {row['other_empty']:.3f},"
            f" hard empty {row['hard_empty']:.3f}"
        )
    gen = result["generalization"]
    print(
        f"threshold fitted on {', '.join(gen['fitted_on'])}: {gen['threshold']:.3f}; on the others: own kept "
        f"{gen['held_out']['own_kept']:.3f}, other empty {gen['held_out']['other_empty']:.3f}, hard empty "
        f"{gen['held_out']['hard_empty']:.3f}, AUROC {gen['held_out_auroc']['other']:.3f} / "
        f"{gen['held_out_auroc']['hard']:.3f}"
    )
    each = f"threshold {default:.2f} on every hit"
    searches = (("no threshold", "recall_no_threshold"), ("default", "recall_at_default"))
    for label, key in (*searches, (each, "recall_each_at_default")):
        r = result[key]
        print(f"recall ({label}): @5 {r['recall@5']:.3f}  @10 {r['recall@10']:.3f}  @30 {r['recall@30']:.3f}")
    for label, key in (("default", "returned_by_default"), (each, "returned_each_at_default")):
        got = result[key]
        print(
            f"where nothing is relevant ({label}): other empty {got['other_empty']:.3f}, {got['other_hits']:.2f} hits;"
            f" hard empty {got['hard_empty']:.3f}, {got['hard_hits']:.2f} hits"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
