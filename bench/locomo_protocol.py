"""The LOCOMO retrieval protocol shared by `bench/locomo.py`, `bench/relevance.py` and the other benchmarks.

Protocol: for each conversation, every turn is stored verbatim (``infer=False``) as
``"<speaker>: <text>"`` (plus ``" [shares <caption>]"`` when an image was shared), with metadata
``{"dia_id", "session", "date"}`` and ``user_id`` = the conversation's ``sample_id``. Then every
question of category 1-4 is searched in that user's memories; recall@k is the fraction of the
question's evidence turns among the top k, averaged over questions.
"""

from __future__ import annotations

import gzip
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KS = (5, 10, 30)
CATEGORIES = (1, 2, 3, 4)


@dataclass(frozen=True)
class Turn:
    sample_id: str
    session: int
    date: str
    speaker: str
    dia_id: str
    text: str
    caption: str | None

    @property
    def content(self) -> str:
        base = f"{self.speaker}: {self.text}"
        return f"{base} [shares {self.caption}]" if self.caption else base

    @property
    def metadata(self) -> dict[str, Any]:
        return {"dia_id": self.dia_id, "session": self.session, "date": self.date}


@dataclass(frozen=True)
class Question:
    sample_id: str
    text: str
    evidence: tuple[str, ...]
    category: int


def turns(sample: dict[str, Any]) -> Iterator[Turn]:
    conversation = sample["conversation"]
    numbers = sorted(int(k.split("_")[1]) for k in conversation if k.startswith("session_") and k.count("_") == 1)
    for number in numbers:
        date = conversation.get(f"session_{number}_date_time", "")
        for turn in conversation[f"session_{number}"]:
            yield Turn(
                sample["sample_id"],
                number,
                date,
                turn["speaker"],
                turn["dia_id"],
                turn["text"],
                turn.get("blip_caption"),
            )


def questions(sample: dict[str, Any]) -> Iterator[Question]:
    for qa in sample["qa"]:
        if qa.get("category") in CATEGORIES and qa.get("evidence"):
            yield Question(sample["sample_id"], qa["question"], tuple(qa["evidence"]), qa["category"])


def load(path: Path | str) -> list[dict[str, Any]]:
    """A benchmark's JSON data file, plain or gzipped (``.gz``)."""
    path = Path(path)
    return json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text())


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0-1) of ``values``, rounded to 0.01 (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


@dataclass
class Scores:
    hits: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KS})
    by_category: dict[int, dict[int, list[float]]] = field(default_factory=dict)
    add_ms: list[float] = field(default_factory=list)
    search_ms: list[float] = field(default_factory=list)
    memories: int = 0

    def record(self, question: Question, ranked_dia_ids: list[str]) -> None:
        wanted = set(question.evidence)
        category = self.by_category.setdefault(question.category, {k: [] for k in KS})
        for k in KS:
            recall = len(wanted & set(ranked_dia_ids[:k])) / len(wanted)
            self.hits[k].append(recall)
            category[k].append(recall)

    def summary(self) -> dict[str, Any]:
        pct = percentile
        mean = statistics.fmean
        return {
            "questions": len(self.hits[KS[0]]),
            **{f"recall@{k}": round(mean(self.hits[k]), 4) for k in KS},
            "by_category": {
                str(c): {f"recall@{k}": round(mean(v[k]), 4) for k in KS} for c, v in sorted(self.by_category.items())
            },
            "add_p50_ms": pct(self.add_ms, 0.5),
            "add_p95_ms": pct(self.add_ms, 0.95),
            "search_p50_ms": pct(self.search_ms, 0.5),
            "search_p95_ms": pct(self.search_ms, 0.95),
            "memories": self.memories,
        }


def run_memorch(
    data: list[dict[str, Any]], progress: Callable[[str], None] | None = None, **config: Any
) -> dict[str, Any]:
    """Our side of the benchmark, with the default offline configuration (plus ``config``)."""
    from memorch.api._memory import Memory
    from memorch.config import MemoryConfig

    scores = Scores()
    with tempfile.TemporaryDirectory() as work:
        memory = Memory(MemoryConfig(data_dir=Path(work), **config))
        try:
            memory.add("warm-up", user_id="warm-up", infer=False)  # load the model outside the timings
            for sample in data:
                if progress:
                    progress(f"adding {sample['sample_id']}")
                for turn in turns(sample):
                    start = time.perf_counter()
                    memory.add(turn.content, user_id=turn.sample_id, metadata=turn.metadata, infer=False)
                    scores.add_ms.append((time.perf_counter() - start) * 1000)
                for question in questions(sample):
                    start = time.perf_counter()
                    found = memory.search(question.text, user_id=question.sample_id, limit=max(KS))
                    scores.search_ms.append((time.perf_counter() - start) * 1000)
                    scores.record(question, [r["metadata"].get("dia_id") for r in found["results"]])
            scores.memories = memory.stats()["memories"] - 1
        finally:
            memory.close()
    return scores.summary()


def run_dense_baseline(data: list[dict[str, Any]]) -> dict[str, Any]:
    """The dense ceiling: brute-force cosine in numpy over the same embeddings."""
    import numpy as np

    from memorch.models._embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    scores = Scores()
    for sample in data:
        sample_turns = list(turns(sample))
        matrix = embedder.embed([t.content for t in sample_turns])
        scores.memories += len(sample_turns)
        for question in questions(sample):
            start = time.perf_counter()
            order = np.argsort(-(matrix @ embedder.embed([question.text])[0]))[: max(KS)]
            scores.search_ms.append((time.perf_counter() - start) * 1000)
            scores.record(question, [sample_turns[i].dia_id for i in order])
    return scores.summary()
