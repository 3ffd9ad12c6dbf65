"""Keyword queries on LongMemEval: does a one- or two-word search find what the question finds?

    python bench/keyword_queries_lme.py [../shared/bench/longmemeval_s_dev.json.gz]
        [--questions N] [--store DIR]

``bench/keyword_queries.py``'s forms and rules on LongMemEval_S instead of LOCOMO (issue 25:
"the dev files' questions"): each question's haystack stored as ``bench/longmemeval.py`` stores
it (one scope per question, every turn verbatim, dated), then the question and its four keyword
forms searched at the question's date, with threshold 0 (the ranking) and the default threshold
(what a caller gets). The roles that begin every turn ("user", "assistant") are left out of the
content words, as LOCOMO's speaker names are. Prints turn recall@10 and session recall_any@5
per form and their ratio to the question's; the last line is one JSON object. ``--store``: a
data directory to import into once and search again later (it is reused when it holds the
questions already).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import keyword_queries as forms_of
import longmemeval as lme
from locomo_protocol import load

ROLES = {"user", "assistant"}


def forms(question: str) -> dict[str, str]:
    return {
        "question": question,
        "two nouns": forms_of.key_nouns(question, ROLES, 2),
        "one noun": forms_of.key_nouns(question, ROLES, 1),
        "two words": forms_of.key_words(question, ROLES, 2),
        "one word": forms_of.key_words(question, ROLES, 1),
    }


def collect(questions: list[dict[str, Any]], store: Path) -> dict[str, list[tuple[dict, dict]]]:
    """Per form, each question's scores (``longmemeval.score``) of the ranking and of what a
    caller gets at the default threshold."""
    system = lme.MemorchSystem(store, "auto")
    scored: dict[str, list[tuple[dict, dict]]] = {form: [] for form in forms_of.FORMS}
    try:
        for number, question in enumerate(questions):
            scope = question["question_id"]
            if not system.memory.get_all(user_id=scope, limit=1)["results"]:
                print(f"importing {number + 1}/{len(questions)}", file=sys.stderr, flush=True)
                system.load(scope, list(lme.turns(question)))
            asked = lme.iso(question["question_date"])
            for form, query in forms(question["question"]).items():
                ranked = system.memory.search(query, user_id=scope, limit=30, threshold=0, asked_at=asked)
                kept = system.memory.search(query, user_id=scope, limit=30, asked_at=asked)
                scored[form].append(
                    (
                        lme.score(question, [r["metadata"].get("turn") for r in ranked["results"]]),
                        lme.score(question, [r["metadata"].get("turn") for r in kept["results"]]),
                    )
                )
    finally:
        system.close()
    return scored


def summary(scored: dict[str, list[tuple[dict, dict]]]) -> dict[str, Any]:
    def mean(rows: list[tuple[dict, dict]], which: int, key: str) -> float:
        return round(statistics.fmean(row[which][key] for row in rows if key in row[which]), 4)

    out = {
        form: {
            "ranking": {"turn@10": mean(rows, 0, "turn@10"), "any@5": mean(rows, 0, "any@5")},
            "at_threshold": {"turn@10": mean(rows, 1, "turn@10"), "any@5": mean(rows, 1, "any@5")},
        }
        for form, rows in scored.items()
    }
    base = out["question"]["at_threshold"]
    for form in forms_of.FORMS[1:]:
        got = out[form]["at_threshold"]
        out[form]["ratio_to_question"] = {key: round(got[key] / base[key], 3) for key in base}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=lme.DEFAULT)
    parser.add_argument("--questions", type=int, help="this many questions, round-robin over the types")
    parser.add_argument("--store", type=Path, help="a data directory to keep the imported haystacks in")
    args = parser.parse_args()
    questions = lme.select(load(args.data), args.questions, None)
    with tempfile.TemporaryDirectory() as work:
        result = summary(collect(questions, args.store or Path(work)))
    for form, figures in result.items():
        kept, ratio = figures["at_threshold"], figures.get("ratio_to_question", {})
        print(
            f"{form:>10}: turn recall@10 {figures['ranking']['turn@10']:.3f} ranked, {kept['turn@10']:.3f} by default"
            f" ({ratio.get('turn@10', 1):.2f}x); session any@5 {kept['any@5']:.3f} ({ratio.get('any@5', 1):.2f}x)"
        )
    print(json.dumps({"questions": len(questions), **result}))


if __name__ == "__main__":
    main()
