"""Long texts on the vector side: the first window, the mean of its pieces, or its best piece.

    python bench/long_texts.py [../shared/bench/longmemeval_s_dev.json.gz] [--questions N]
        [--cache FILE] [--stride TOKENS]

The bundled MiniLM reads 256 tokens; a LongMemEval turn is often longer (a third of the dev
haystacks' turns need a second piece). This measures three ways to give a long text its vector
side, on LongMemEval_S questions (protocol of ``bench/longmemeval.py``: every distinct turn of
a question's haystack, one scope per question):

- ``first``: the first 254 word pieces (what memorch stores: the tokenizer truncates);
- ``mean``: the normalized mean of the vectors of overlapping 254-piece windows (``--stride``
  apart, 192 by default), i.e. one vector per memory still;
- ``max``: each memory scored by its best window (one vector per window, the memory named).

For each: dense-only ranking (exact cosine) and the hybrid ranking memorch's fusion makes of it
with LanceDB's BM25 over the whole text (``memorch.retrieval._search.fuse`` with the default
weights; without context or the threshold, which do not depend on the variant), turn recall@5 /
@10 / @30 and session recall_any@5, by question type; plus what each costs to embed (windows
per turn); LanceDB's BM25 alone for reference. Windows' vectors are computed with memorch's own
encoder and kept in ``--cache`` (a pickle, by text) so a second run only ranks. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from longmemeval import DEFAULT, score, select, turns

WINDOW = 254  # word pieces between [CLS] and [SEP]: the model's 256
VARIANTS = ("first", "mean", "max")
FETCH = 90  # what a search of 30 fetches per signal
METRICS = ("turn@5", "turn@10", "turn@30", "any@5")


def distinct(haystack: Any) -> list[Any]:
    """A haystack's turns, each text once (its first turn), in order: memorch keeps one copy."""
    first: dict[str, Any] = {}
    for turn in haystack:
        first.setdefault(turn.text, turn)
    return list(first.values())


def windows(texts: list[str], stride: int) -> tuple[list[list[int]], list[int]]:
    """Every text's overlapping windows of word pieces, with [CLS] and [SEP], and their owners."""
    from tokenizers import Tokenizer

    from memorch.models._minilm import shared_encoder

    tokenizer = Tokenizer.from_str(shared_encoder().tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    pieces, owners = [], []
    for owner, text in enumerate(texts):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        # Windows start every ``stride`` pieces until one reaches the end.
        for start in range(
            0, max(len(ids) - WINDOW, 0) + 1 if len(ids) <= WINDOW else len(ids) - WINDOW + stride, stride
        ):
            pieces.append([cls, *ids[start : start + WINDOW], sep])
            owners.append(owner)
    return pieces, owners


def embed_windows(pieces: list[list[int]]) -> np.ndarray:
    """Mean-pooled, normalized vectors of token windows, by memorch's encoder, shortest first."""
    from memorch.models._minilm import shared_encoder

    encoder = shared_encoder()
    out = np.zeros((len(pieces), encoder.dimension), np.float32)
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    for start in range(0, len(order), 32):
        batch = order[start : start + 32]
        width = max(len(pieces[i]) for i in batch)
        ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros((len(batch), width), np.float32)
        for row, i in enumerate(batch):
            ids[row, : len(pieces[i])], mask[row, : len(pieces[i])] = pieces[i], 1.0
        states = encoder._hidden_states(ids, np.zeros_like(ids), mask)
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def vectors_of(texts: list[str], stride: int, cache: Path | None) -> dict[str, np.ndarray]:
    """Each text's window vectors (first window first), computing only those not in ``cache``."""
    known: dict[str, np.ndarray] = pickle.loads(cache.read_bytes()) if cache and cache.exists() else {}
    missing = [t for t in texts if t not in known]
    if missing:
        started = time.perf_counter()
        pieces, owners = windows(missing, stride)
        vectors = embed_windows(pieces)
        for owner, text in enumerate(missing):
            known[text] = vectors[[i for i, o in enumerate(owners) if o == owner]]
        print(f"embedded {len(pieces)} windows of {len(missing)} texts in {time.perf_counter() - started:.0f} s")
        if cache:
            cache.write_bytes(pickle.dumps(known))
    return {t: known[t] for t in texts}


def similarity(windows_of: np.ndarray, query: np.ndarray, variant: str) -> float:
    if variant == "first":
        return float(windows_of[0] @ query)
    if variant == "max":
        return float((windows_of @ query).max())
    mean = windows_of.mean(0)
    return float(mean @ query / np.linalg.norm(mean))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--questions", type=int, help="how many (round-robin over the types); all by default")
    parser.add_argument("--cache", type=Path, help="a file keeping the windows' vectors between runs")
    parser.add_argument("--stride", type=int, default=192, help="word pieces between window starts")
    args = parser.parse_args()

    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS
    from lancedb.query import MatchQuery

    from memorch.models._minilm import shared_encoder
    from memorch.retrieval._search import fuse
    from memorch.storage.base import VectorHit

    with gzip.open(args.data) if args.data.suffix == ".gz" else args.data.open("rb") as f:
        questions = select(json.load(f), args.questions, None)
    haystacks = {
        q["question_id"]: list({t.text: t for t in reversed(list(turns(q)))}.values())[::-1] for q in questions
    }
    texts = sorted({t.text for hay in haystacks.values() for t in hay})
    vectors = vectors_of(texts, args.stride, args.cache)
    print(
        f"{len(questions)} questions, {len(texts)} distinct turns, "
        f"{sum(len(v) for v in vectors.values()) / len(texts):.2f} windows per turn"
    )
    # One table for every scope, as memorch keeps it (BM25's statistics are the table's).
    table = lancedb.connect(tempfile.mkdtemp()).create_table(
        "m",
        pa.table(
            {
                "id": [f"{qid}|{t.key}" for qid, hay in haystacks.items() for t in hay],
                "scope": [qid for qid, hay in haystacks.items() for _ in hay],
                "memory": [t.text for hay in haystacks.values() for t in hay],
            }
        ),
    )
    table.create_index("memory", config=FTS(), replace=True)
    queries = shared_encoder().encode([q["question"] for q in questions])
    groups: dict[str, list[dict[str, float]]] = {}
    for question, query in zip(questions, queries, strict=True):
        qid, hay = question["question_id"], haystacks[question["question_id"]]
        found = (
            table.search(MatchQuery(question["question"], "memory"), query_type="fts")
            .where(f"scope = '{qid}'", prefilter=True)
            .select(["id", "_score"])
            .limit(FETCH)
            .to_arrow()
        )
        text = [
            VectorHit(i.split("|", 1)[1], s)
            for i, s in zip(found["id"].to_pylist(), found["_score"].to_pylist(), strict=True)
        ]
        for kind in ("text (BM25)",):  # LanceDB's BM25 alone, over the whole text
            groups.setdefault(f"{kind}|{question['question_type']}", []).append(score(question, [h.id for h in text]))
            groups.setdefault(f"{kind}|all", []).append(score(question, [h.id for h in text]))
        for variant in VARIANTS:
            sims = sorted(((similarity(vectors[t.text], query, variant), t.key) for t in hay), reverse=True)
            dense = [VectorHit(key, s) for s, key in sims[:FETCH]]
            hybrid = fuse({"vector": dense, "text": text}, {"vector": 1.0, "text": 1.0})
            for name, ranked in (
                (f"dense {variant}", [h.id for h in dense]),
                (f"hybrid {variant}", [r.id for r in hybrid]),
            ):
                scored = score(question, ranked)
                groups.setdefault(f"{name}|{question['question_type']}", []).append(scored)
                groups.setdefault(f"{name}|all", []).append(scored)
    result: dict[str, Any] = {"questions": len(questions), "stride": args.stride}
    print(f"{'system':<16} {'type':<26} {'n':>3} {'turn@5':>7} {'turn@10':>8} {'turn@30':>8} {'any@5':>6}")
    for key in sorted(groups, key=lambda k: (k.split("|")[1] == "all", k.split("|")[1], k)):
        system, kind = key.split("|")
        rows = groups[key]
        means = {
            m: round(statistics.fmean(r[m] for r in rows if m in r), 3)
            for m in ("turn@5", "turn@10", "turn@30", "any@5")
        }
        result.setdefault(system, {})[kind] = means
        print(f"{system:<16} {kind:<26} {len(rows):>3} " + " ".join(f"{means[m]:>7}" for m in means))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
