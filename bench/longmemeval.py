"""LongMemEval_S retrieval by question type: memorch vs BM25 vs dense brute force vs mem0, one run.

    python bench/longmemeval.py [../shared/bench/longmemeval_s_dev.json.gz] [--questions N]
        [--types single-session-user,multi-session,...] [--systems memorch,dense,bm25]
        [--mem0-python PY] [--embedder auto] [--no-dates] [--naming-a-time] [--vector-cache FILE]

Protocol (``../shared/bench/README.md``): one scope per question; every turn of its haystack is
stored verbatim as ``"<role>: <content>"`` with metadata ``{"session", "date", "turn"}``, then the
question is searched in that scope (top 30). memorch imports each turn dated by its session
(``created_at``) and searches as of the question's date (``asked_at``), as an imported chat
history would be; ``--no-dates`` leaves both to the clock, and ``--naming-a-time`` keeps the
questions whose text names a span ("two weeks ago"), to measure what the dates do. Figures, by
question type and overall: turn recall@k (share of the ``has_answer`` turns in the top k), session
recall_any@k (some answer session has a turn in the top k: the figure peers publish) and
recall_all@k (every answer session does), k = 5, 10, 30; search p50/p95 of the question searches,
each made after a warm-up search of the same scope; the first search after the import (that
warm-up search, a query of its own so no embedding is cached) apart; import rate in turns/s (a
scope's whole import, embedding included). Turns with the same text in one haystack count as one
(memorch keeps one copy).

Systems, each fed the same texts, question by question (interleaved, so machine load hits them
alike): memorch (default offline config, ``import_memories``); ``dense``: the same embedder
(``memorch.models._embeddings.LocalEmbedder``), exact cosine over the scope in numpy; ``bm25``:
plain Okapi BM25 (k1 1.2, b 0.75, idf ``log(1 + (N - df + 0.5) / (df + 0.5))``, lowercase
``\\w+`` tokens, no stemming or stop words), written here in a dozen lines because no BM25
package is in the project's environment and the point is the textbook baseline, not a tuned
one; with ``--mem0-python`` (an interpreter with mem0ai 2.2.1, sentence-transformers and the CPU
torch wheel; never memorch's environment) mem0 adds the same turns one by one with
``infer=False`` (it has no batch add) through ``bench/_mem0_longmemeval.py``.

``--settle S`` waits S seconds after each import before its searches, so they run with the index
worker idle (by default they run right after the import, as an assistant searching what it just
stored would). ``--questions N`` takes N questions round-robin over the question types (the file is sorted by
type), so a small N still covers every type. Ctrl-C, or ``--time-limit S`` (no question starts
after S seconds), ends the run early with the figures of the questions every system finished.
The last line printed is one JSON object.

``--vector-cache FILE`` keeps every text's vector from the bundled model in a SQLite file and
reads it back on the next run (memorch's and the dense baseline's embedder both), so changes to
the ranking can be measured in minutes instead of re-embedding ~24,000 turns; the import rates
and first-search times of such a run are not the model's and are printed as such.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from locomo_protocol import load, percentile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "bench" / "longmemeval_s_dev.json.gz"
KS = (5, 10, 30)


@dataclass(frozen=True)
class Turn:
    key: str  # "<session index>:<turn index>", unique in its question
    session: str
    date: str
    text: str
    has_answer: bool

    @property
    def metadata(self) -> dict[str, str]:
        return {"session": self.session, "date": self.date, "turn": self.key}

    @property
    def said_at(self) -> str:
        return iso(self.date)


def iso(date: str) -> str:
    """A LongMemEval date, "2023/05/22 (Mon) 00:37", as ISO (no zone: UTC)."""
    return datetime.strptime(date[:10] + " " + date[-5:], "%Y/%m/%d %H:%M").isoformat()


def turns(question: dict[str, Any]) -> Iterator[Turn]:
    for s, (session, date, body) in enumerate(
        zip(question["haystack_session_ids"], question["haystack_dates"], question["haystack_sessions"], strict=True)
    ):
        for t, turn in enumerate(body):
            yield Turn(f"{s}:{t}", session, date, f"{turn['role']}: {turn['content']}", bool(turn.get("has_answer")))


def select(data: list[dict[str, Any]], count: int | None, types: list[str] | None) -> list[dict[str, Any]]:
    """``count`` questions of ``types`` (all when None), round-robin over the types."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for question in data:
        if not types or question["question_type"] in types:
            by_type.setdefault(question["question_type"], []).append(question)
    longest = max((len(v) for v in by_type.values()), default=0)
    mixed = [v[i] for i in range(longest) for v in by_type.values() if i < len(v)]
    return mixed[:count] if count else mixed


def names_a_time(question: dict[str, Any]) -> bool:
    """Whether the question's text names a span of time memorch resolves ("two weeks ago")."""
    from datetime import UTC

    from memorch.retrieval._when import window

    asked = datetime.fromisoformat(iso(question["question_date"])).replace(tzinfo=UTC)
    return window(question["question"], asked) is not None


def remember_vectors(path: Path) -> None:
    """Put a persistent memo of text -> vector in front of the bundled model (``--vector-cache``)."""
    import sqlite3

    import numpy as np

    from memorch.models._embeddings import LocalEmbedder, text_hash

    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS vectors (hash TEXT PRIMARY KEY, vector BLOB)")
    compute = LocalEmbedder.embed

    def embed(self: LocalEmbedder, texts: Any) -> Any:
        hashes = [text_hash(text) for text in texts]
        known = {
            h: np.frombuffer(v, dtype=np.float32)
            for h in set(hashes)
            for (v,) in db.execute("SELECT vector FROM vectors WHERE hash = ?", (h,))
        }
        missing = [text for text, h in zip(texts, hashes, strict=True) if h not in known]
        if missing:
            fresh = compute(self, missing)
            rows = [(text_hash(text), np.asarray(v, np.float32)) for text, v in zip(missing, fresh, strict=True)]
            known.update(rows)
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", [(h, v.tobytes()) for h, v in rows])
            db.commit()
        return np.stack([known[h] for h in hashes]) if hashes else compute(self, texts)

    LocalEmbedder.embed = embed  # type: ignore[method-assign]


def warm_up_query(question: dict[str, Any]) -> str:
    return f"What do we know from the conversations before {question['question_date']}?"


class System(Protocol):
    def load(self, scope: str, turns: list[Turn]) -> None: ...
    def search(self, scope: str, query: str, k: int, asked_at: str) -> list[str]: ...


def measure(system: System, question: dict[str, Any], settle: float = 0.0) -> dict[str, Any]:
    """Import one question's haystack into its own scope, then a first search, then the question;
    ``settle``: seconds to wait between the import and the searches (the index worker idle)."""
    scope, haystack = question["question_id"], list(turns(question))
    start = time.perf_counter()
    system.load(scope, haystack)
    import_s = time.perf_counter() - start
    time.sleep(settle)
    start = time.perf_counter()
    asked_at = iso(question["question_date"])
    system.search(scope, warm_up_query(question), max(KS), asked_at)
    first_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    ranked = system.search(scope, question["question"], max(KS), asked_at)
    search_ms = (time.perf_counter() - start) * 1000
    return {
        "question_id": scope,
        "turns": len(haystack),
        "import_s": import_s,
        "first_search_ms": first_ms,
        "search_ms": search_ms,
        "ranked": ranked,
    }


def score(question: dict[str, Any], ranked: list[str]) -> dict[str, float]:
    haystack = list(turns(question))
    first_of_text: dict[str, str] = {}
    canon = {t.key: first_of_text.setdefault(t.text, t.key) for t in haystack}
    session_of = {t.key: t.session for t in haystack}
    evidence = {canon[t.key] for t in haystack if t.has_answer}
    answers = set(question["answer_session_ids"])
    out: dict[str, float] = {}
    for k in KS:
        top = [canon.get(key, key) for key in ranked[:k]]
        sessions = {session_of[key] for key in top if key in session_of} & answers
        if evidence:
            out[f"turn@{k}"] = len(evidence & set(top)) / len(evidence)
        out[f"any@{k}"] = float(bool(sessions))
        out[f"all@{k}"] = float(sessions == answers)
    return out


def summarize(questions: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {q["question_id"]: q for q in questions}
    groups: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        question = by_id[row["question_id"]]
        scored = score(question, row["ranked"])
        groups.setdefault(question["question_type"], []).append(scored)
        groups.setdefault("all", []).append(scored)

    def means(scored: list[dict[str, float]]) -> dict[str, Any]:
        keys = dict.fromkeys(key for s in scored for key in s)
        return {"n": len(scored), **{k: round(statistics.fmean(s[k] for s in scored if k in s), 4) for k in keys}}

    def ms(key: str) -> list[float]:
        return [row[key] for row in rows]

    return {
        "by_type": {name: means(groups[name]) for name in sorted(groups, key=lambda n: (n == "all", n))},
        "search_p50_ms": percentile(ms("search_ms"), 0.5),
        "search_p95_ms": percentile(ms("search_ms"), 0.95),
        "first_search_p50_ms": percentile(ms("first_search_ms"), 0.5),
        "first_search_p95_ms": percentile(ms("first_search_ms"), 0.95),
        "import_turns_per_s": round(sum(ms("turns")) / max(sum(ms("import_s")), 1e-9), 1),
        "turns": sum(ms("turns")),
    }


class MemorchSystem:
    def __init__(self, work: Path, embedder: str, dates: bool = True) -> None:
        """``dates``: each turn dated by its session (``created_at``) and each question asked at its
        date (``asked_at``), as an imported chat history would be; False: both left to the clock."""
        from memorch.api._memory import Memory
        from memorch.config import MemoryConfig

        self.dates = dates
        self.memory = Memory(MemoryConfig(data_dir=work, embedder=embedder))
        self.memory.add("warm-up", user_id="warm-up", infer=False)  # load the model outside the timings
        self.memory.search("warm-up", user_id="warm-up")

    def load(self, scope: str, turns: list[Turn]) -> None:
        items = [{"memory": t.text, "user_id": scope, "metadata": t.metadata} for t in turns]
        if self.dates:
            items = [{**item, "created_at": t.said_at} for item, t in zip(items, turns, strict=True)]
        self.memory.import_memories(items)

    def search(self, scope: str, query: str, k: int, asked_at: str) -> list[str]:
        found = self.memory.search(query, user_id=scope, limit=k, asked_at=asked_at if self.dates else None)
        return [r["metadata"].get("turn") for r in found["results"]]

    def close(self) -> None:
        self.memory.close()


class DenseSystem:
    def __init__(self) -> None:
        from memorch.models._embeddings import LocalEmbedder

        self.embedder = LocalEmbedder()
        self.embedder.embed(["warm-up"])
        self.scopes: dict[str, tuple[Any, list[str]]] = {}

    def load(self, scope: str, turns: list[Turn]) -> None:
        self.scopes[scope] = (self.embedder.embed([t.text for t in turns]), [t.key for t in turns])

    def search(self, scope: str, query: str, k: int, asked_at: str) -> list[str]:
        import numpy as np

        matrix, keys = self.scopes[scope]
        order = np.argsort(-(matrix @ self.embedder.embed([query])[0]))[:k]
        return [keys[i] for i in order]


TOKEN = re.compile(r"\w+")


class BM25System:
    K1, B = 1.2, 0.75

    def __init__(self) -> None:
        self.scopes: dict[str, tuple[list[Counter[str]], Counter[str], float, list[str]]] = {}

    def load(self, scope: str, turns: list[Turn]) -> None:
        docs = [Counter(TOKEN.findall(t.text.lower())) for t in turns]
        df = Counter(term for doc in docs for term in doc)
        self.scopes[scope] = (docs, df, statistics.fmean(sum(d.values()) for d in docs), [t.key for t in turns])

    def search(self, scope: str, query: str, k: int, asked_at: str) -> list[str]:
        docs, df, avgdl, keys = self.scopes[scope]
        terms = TOKEN.findall(query.lower())
        idf = {t: math.log(1 + (len(docs) - df[t] + 0.5) / (df[t] + 0.5)) for t in terms}
        scores = []
        for doc in docs:
            norm = self.K1 * (1 - self.B + self.B * sum(doc.values()) / avgdl)
            scores.append(sum(idf[t] * doc[t] * (self.K1 + 1) / (doc[t] + norm) for t in terms if t in doc))
        return [keys[i] for i in sorted(range(len(docs)), key=lambda i: -scores[i])[:k]]


def run_mem0(python: str, data: Path, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    request = {"data": str(data), "question_ids": [q["question_id"] for q in questions]}
    proc = subprocess.run(
        [python, str(ROOT / "bench" / "_mem0_longmemeval.py")],
        input=json.dumps(request),
        stdout=subprocess.PIPE,  # its progress lines go to stderr, as ours do
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


COLUMNS = (("turn@5", "turn r@5"), ("turn@10", "turn r@10"), ("turn@30", "turn r@30"))
COLUMNS += (("any@5", "sess any@5"), ("all@10", "sess all@10"))


def print_table(result: dict[str, dict[str, Any]]) -> None:
    if not result:
        print("no question finished")
        return
    systems = list(result)
    types = list(next(iter(result.values()))["by_type"])
    print(f"{'question type':<26} {'n':>3} {'system':<8}" + "".join(f" {title:>11}" for _, title in COLUMNS))
    for name in types:
        for system in systems:
            row = result[system]["by_type"][name]
            cells = "".join(f" {row[key]:>11.3f}" if key in row else f" {'-':>11}" for key, _ in COLUMNS)
            print(f"{name:<26} {row['n']:>3} {system:<8}{cells}")
    print(f"\n{'system':<8} {'search p50':>11} {'p95':>8} {'1st after import p50':>21} {'p95':>8} {'import':>12}")
    for system, row in result.items():
        print(
            f"{system:<8} {row['search_p50_ms']:>8.1f} ms {row['search_p95_ms']:>5.1f} ms "
            f"{row['first_search_p50_ms']:>18.1f} ms {row['first_search_p95_ms']:>5.1f} ms "
            f"{row['import_turns_per_s']:>7.1f} t/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--questions", type=int, help="how many questions (round-robin over the types); all by default")
    parser.add_argument("--types", help="comma-separated question types; all by default")
    parser.add_argument("--systems", default="memorch,dense,bm25", help="in-process systems to run")
    parser.add_argument("--mem0-python", help="an interpreter with mem0ai (adds the mem0 baseline)")
    parser.add_argument(
        "--embedder",
        default="auto",
        help="MEMORCH_EMBEDDER for memorch (auto: the default, a new store's int8 model; local, static)",
    )
    parser.add_argument("--no-dates", action="store_true", help="memorch without the turns' and questions' dates")
    parser.add_argument(
        "--naming-a-time", action="store_true", help="only the questions whose text names a span ('last week')"
    )
    parser.add_argument("--time-limit", type=float, help="seconds after which no new question starts")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds to wait after each import before searching (index idle)"
    )
    parser.add_argument("--vector-cache", type=Path, help="a SQLite file memoizing the model's vectors (see above)")
    args = parser.parse_args()
    if args.vector_cache:
        remember_vectors(args.vector_cache)
    began = time.monotonic()
    questions = select(load(args.data), args.questions, args.types.split(",") if args.types else None)
    if args.naming_a_time:
        questions = [q for q in questions if names_a_time(q)]
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    rows: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as work:
        makers: dict[str, Callable[[], System]] = {
            "memorch": lambda: MemorchSystem(Path(work), args.embedder, dates=not args.no_dates),
            "dense": DenseSystem,
            "bm25": BM25System,
        }
        systems = {name: makers[name]() for name in args.systems.split(",")}
        try:
            for number, question in enumerate(questions, 1):
                if args.time_limit and time.monotonic() - began > args.time_limit:
                    raise KeyboardInterrupt
                for name, system in systems.items():
                    row = measure(system, question, args.settle)
                    rows.setdefault(name, []).append(row)
                    log(
                        f"[{number}/{len(questions)}] {question['question_type']} {name}: {row['turns']} turns "
                        f"imported in {row['import_s']:.1f} s, search {row['search_ms']:.1f} ms"
                    )
        except KeyboardInterrupt:  # Ctrl-C or --time-limit: report the questions every system finished
            done = min(len(r) for r in rows.values()) if len(rows) == len(systems) else 0
            questions, rows = questions[:done], {name: r[:done] for name, r in rows.items()}
            log(f"interrupted: the figures are for the first {done} questions")
        finally:
            for system in systems.values():
                getattr(system, "close", lambda: None)()
    if args.mem0_python:
        log("mem0: running in its own interpreter")
        rows["mem0"] = run_mem0(args.mem0_python, args.data, questions)
    result = {name: summarize(questions, system_rows) for name, system_rows in rows.items()}
    print_table(result)
    if args.vector_cache:
        print("(--vector-cache: vectors read from a file, so import rates and first searches are not the model's)")
    print(json.dumps({"questions": len(questions), **result}))


if __name__ == "__main__":
    main()
