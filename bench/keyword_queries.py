"""Keyword queries vs full questions: does a one- or two-word search find what the question finds?

    python bench/keyword_queries.py [../shared/bench/locomo_dev.json] [--out rows.json]

An assistant often searches with one or two words ("job", "adoption agency") rather than a
question. Protocol: LOCOMO stored as ``bench/locomo_protocol.py`` stores it (one scope per
conversation, every turn verbatim); for every category 1-4 question, three searches in its
conversation's scope: the question, and four keyword forms, by fixed rules and no model. The
question's content words are its lowercase words minus English function words, ``STOP``, words
that date it, ``TIME``, numbers, and the conversation's two speaker names (every stored turn starts
with one, so a name is no topic). "Two nouns" / "one noun" (the issue's "key nouns"): its last
noun (``is_noun``, by lemminflect's lexicon) with the content word before it, and that noun
alone. "Two words" / "one word" (the earlier rule): its last two content words, and the last,
which is often a verb ("the poetry reading that X attended" -> "attended").
Each form is searched twice, for 30 hits: with ``threshold: 0`` and ``explain`` (recall@k of
the ranking), and with the default threshold (``MemoryConfig.search_threshold``: recall@k and
the empty answers of what a caller gets).
The goal (issue 25): keyword forms at the default threshold reach >= 0.9 x the question's recall.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from locomo_protocol import KS, load, questions, turns

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "bench" / "locomo_dev.json"
WORD = re.compile(r"[a-z0-9']+")
STOP = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "might",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "s",
        "t",
        "ever",
        "also",
        "many",
        "much",
        "get",
        "got",
        "go",
        "going",
        "went",
        "like",
        "likely",
        "kind",
        "sort",
        "thing",
        "things",
        "one",
        "ones",
        "way",
        "ways",
        "did",
        "done",
        "do",
        "does",
        "make",
        "made",
    ]
)
# Words that date a question rather than name its topic.
TIME = frozenset(
    [
        "ago",
        "years",
        "year",
        "months",
        "month",
        "weeks",
        "week",
        "days",
        "day",
        "time",
        "times",
        "long",
        "first",
        "last",
        "current",
        "currently",
        "recently",
        "planning",
        "plan",
        "plans",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)


def content_words(question: str, names: set[str]) -> list[str]:
    """The question's lowercase words minus function words, dating words, numbers and the
    speakers' names, each once, in order."""
    words = [w.strip("'").removesuffix("'s") for w in WORD.findall(question.lower())]
    content = [w for w in words if w and w not in STOP and w not in TIME and w not in names and not w.isdigit()]
    return list(dict.fromkeys(content))


def key_words(question: str, names: set[str], count: int) -> str:
    """The question's last ``count`` content words (in English questions the topic usually comes
    last: "When did X go to the LGBTQ support group?" -> "support group"), in order. The rule
    often ends on a verb ("poetry reading that X attended" -> "attended"): see ``key_nouns``."""
    content = content_words(question, names)
    return " ".join(content[-count:]) if content else question


def is_noun(word: str) -> bool:
    """A noun in lemminflect's English lexicon, or a word it does not know (names, acronyms,
    typos: "lgbtq", "screenplay")."""
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(word)
    return not lemmas or "NOUN" in lemmas


def lemmas(word: str) -> set[str]:
    """The word and every lemma lemminflect knows for it ("parties" -> party)."""
    from lemminflect import getAllLemmas

    return {word, *(lemma.lower() for forms in getAllLemmas(word).values() for lemma in forms)}


def holding(noun: str, texts: dict[str, str]) -> set[str]:
    """The turns whose words share a lemma with ``noun`` (the one-noun query's own word)."""
    wanted = lemmas(noun)
    return {key for key, text in texts.items() if any(lemmas(w) & wanted for w in set(WORD.findall(text.lower())))}


def key_nouns(question: str, names: set[str], count: int) -> str:
    """The issue's form, "their key nouns": the question's last noun and the ``count - 1``
    content words before it (its modifier: "poetry reading", "physical transformation"),
    extended after it when none comes before ("event organizing"). Without a noun, the last
    content words."""
    content = content_words(question, names)
    nouns = [i for i, w in enumerate(content) if is_noun(w)]
    if not nouns:
        return key_words(question, names, count)
    end = nouns[-1] + 1
    start = max(0, end - count)
    end = min(len(content), start + count)
    return " ".join(content[start:end])


FORMS = ("question", "two nouns", "one noun", "two words", "one word")


def hit(result: dict[str, Any]) -> dict[str, Any]:
    return {"dia_id": result["metadata"].get("dia_id"), "score": result["score"], "explain": result["explain"]}


def collect(data: list[dict[str, Any]], embedder: str) -> list[dict[str, Any]]:
    from memorch.api._memory import Memory
    from memorch.config import MemoryConfig

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        memory = Memory(MemoryConfig(data_dir=Path(work), embedder=embedder))
        try:
            for sample in data:
                print(f"importing {sample['sample_id']}", file=sys.stderr, flush=True)
                stored = list(turns(sample))
                items = [{"memory": t.content, "user_id": t.sample_id, "metadata": t.metadata} for t in stored]
                memory.import_memories(items)
                names = {t.speaker.lower() for t in stored}
                texts = {t.dia_id: t.content for t in stored}
                for number, question in enumerate(questions(sample)):
                    forms = {
                        "question": question.text,
                        "two nouns": key_nouns(question.text, names, 2),
                        "one noun": key_nouns(question.text, names, 1),
                        "two words": key_words(question.text, names, 2),
                        "one word": key_words(question.text, names, 1),
                    }
                    for form, query in forms.items():
                        ranked = memory.search(
                            query, user_id=question.sample_id, limit=max(KS), threshold=0, explain=True
                        )
                        kept = memory.search(query, user_id=question.sample_id, limit=max(KS))
                        rows.append(
                            {
                                "form": form,
                                "query": query,
                                "category": question.category,
                                "evidence": list(question.evidence),
                                "hits": [hit(r) for r in ranked["results"]],
                                "kept": [r["metadata"].get("dia_id") for r in kept["results"]],
                                "question_id": f"{question.sample_id}/{number}",
                            }
                        )
                        if form == "one noun":
                            rows[-1]["holders"] = sorted(holding(query, texts))
        finally:
            memory.close()
    return rows


def recall(rows: list[dict[str, Any]], found: Any) -> dict[str, float]:
    """Recall@k and the share of empty answers, ``found(row)`` giving a search's dia_ids."""
    out: dict[str, float] = {}
    for k in KS:
        values = [len(set(row["evidence"]) & set(found(row)[:k])) / len(row["evidence"]) for row in rows]
        out[f"recall@{k}"] = round(statistics.fmean(values), 4)
    out["empty"] = round(statistics.fmean(not found(r) for r in rows), 4)
    return out


def ranked(row: dict[str, Any]) -> list[str]:
    return [h["dia_id"] for h in row["hits"]]


def kept(row: dict[str, Any]) -> list[str]:
    return row["kept"]


def main() -> None:
    from memorch.config import MemoryConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument(
        "--embedder", default="auto", help="MEMORCH_EMBEDDER for memorch (default: the product's, auto)"
    )
    parser.add_argument("--out", type=Path, help="also write every search's hits here (JSON)")
    args = parser.parse_args()
    rows = collect(load(args.data), args.embedder)
    if args.out:
        args.out.write_text(json.dumps(rows))
    threshold = MemoryConfig().search_threshold
    result: dict[str, Any] = {"threshold": threshold}
    for form in FORMS:
        subset = [r for r in rows if r["form"] == form]
        result[form] = {"ranking": recall(subset, ranked), "at_threshold": recall(subset, kept)}
    base = result["question"]["at_threshold"]["recall@10"]
    for form in FORMS[1:]:
        result[form]["ratio_recall@10_to_question"] = round(result[form]["at_threshold"]["recall@10"] / base, 3)
    for form in FORMS:
        r = result[form]
        print(
            f"{form:>10}: recall@10 {r['ranking']['recall@10']:.3f} ranked, {r['at_threshold']['recall@10']:.3f} "
            f"by default (threshold {threshold}; empty {r['at_threshold']['empty']:.1%})"
        )
    result["one noun by its word"] = print_breakdown(rows)
    print(json.dumps(result))


def print_breakdown(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Why a one-noun query finds less than its question: split the questions by whether their
    evidence holds the noun and by how many turns of the conversation do. Where more than 10 turns
    hold it, the word alone cannot say which of them the question meant: the "question-blind"
    bound is the recall@10 of picking 10 of the turns holding it, mean(min(1, 10 / holders))."""
    question = {r["question_id"]: r for r in rows if r["form"] == "question"}
    nouns = [r for r in rows if r["form"] == "one noun"]
    groups = {
        "evidence holds the noun, <= 10 turns do": lambda r: held(r) and len(r["holders"]) <= 10,
        "evidence holds the noun, > 10 turns do": lambda r: held(r) and len(r["holders"]) > 10,
        "evidence does not hold the noun": lambda r: not held(r),
    }
    out: dict[str, Any] = {}
    for name, belongs in groups.items():
        subset = [r for r in nouns if belongs(r)]
        if not subset:
            continue
        out[name] = {
            "questions": len(subset),
            "question": recall([question[r["question_id"]] for r in subset], kept)["recall@10"],
            "one noun": recall(subset, kept)["recall@10"],
        }
        o = out[name]
        bound = ""
        if held(subset[0]):  # picking among the turns that hold the word reaches the evidence
            o["question-blind bound"] = round(statistics.fmean(min(1, 10 / len(r["holders"])) for r in subset), 4)
            bound = f"; question-blind bound {o['question-blind bound']:.3f}"
        print(
            f"  one noun, {name} ({o['questions']} questions): recall@10 {o['one noun']:.3f} "
            f"(its questions {o['question']:.3f}{bound})"
        )
    return out


def held(row: dict[str, Any]) -> bool:
    return all(e in row["holders"] for e in row["evidence"])


if __name__ == "__main__":
    main()
