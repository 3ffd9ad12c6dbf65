"""Redaction: recall per credential shape, false positives on ordinary text, cost per add.

    uv run --with detect-secrets==1.5.0 python bench/redaction.py [--baseline 2079b3a] [--no-baseline] [--repeat 7]

Corpora: tests/data/redaction_corpus.py (the same as tests/test_redaction.py): ~90 credential
shapes with seeded random bodies, each said in 6 sentences and in a metadata value; ordinary text
is every LOCOMO and LongMemEval dev turn (../shared/bench) plus ~2,000 code/config/hash snippets.

1. Recall per shape: a sentence or value counts as redacted when neither the secret nor a
   16-character piece of it is left. (The message list given to ``add`` is redacted message by
   message with the same ``redact``: Engine.redact; tests/test_redaction.py runs it.)
2. False positives: the share of ordinary texts that come out changed, over all of them.
3. Cost: µs per ``redact`` call on a short add (~100 characters, as LOCOMO's turns) and a long
   one (~5 kB, as LongMemEval's assistant answers), the best of ``--repeat`` rounds, the
   detectors interleaved round by round so load on the machine hits both alike.

The baseline is the detector before issue 27 (detect-secrets' plugins), read from git
(``git show <rev>:server/redaction.py``) into a temporary module; it is printed beside the
current one, with the ratio. memorch no longer depends on detect-secrets, hence ``--with``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.data.redaction_corpus import (  # noqa: E402
    SENTENCES,
    conversation_turns,
    credentials,
    in_metadata,
    in_sentence,
    leaks,
    ordinary,
)


def load_baseline(rev: str) -> ModuleType | None:
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:server/redaction.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"baseline {rev}: unavailable ({error})")
        return None
    path = Path(tempfile.mkdtemp()) / "baseline_redaction.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_redaction", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def redact_value(redact: Callable[[str], Any], value: Any) -> Any:
    """Every string of a metadata object through ``redact`` (for the baseline, which has no
    ``redact_metadata``; add itself redacts no metadata, before or after issue 27)."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, dict):
        return {k: redact_value(redact, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(redact, v) for v in value]
    return value


def recall(detectors: dict[str, ModuleType]) -> None:
    cases = credentials()
    names = list(detectors)
    print(f"\n1. Recall per shape ({len(cases)} shapes; sentences: redacted of {len(SENTENCES)}; metadata: 1/0)")
    header = f"{'shape':34}" + "".join(f"{n + ' sent.':>16}{n + ' meta':>14}" for n in names)
    print(header)
    totals = {n: [0, 0] for n in names}
    for case in cases:
        row = f"{case.shape:34}"
        for name, module in detectors.items():
            said = sum(not leaks(module.redact(in_sentence(case, i)).text, case.secret) for i in range(len(SENTENCES)))
            if hasattr(module, "redact_metadata"):
                value = module.redact_metadata(in_metadata(case))[0]
            else:
                value = redact_value(module.redact, in_metadata(case))
            meta = int(not leaks(json.dumps(value), case.secret))
            totals[name][0] += said
            totals[name][1] += meta
            row += f"{said:>13}/{len(SENTENCES)}{meta:>14}"
        print(row)
    for name in names:
        said, meta = totals[name]
        everywhere = sum(
            all(not leaks(detectors[name].redact(in_sentence(c, i)).text, c.secret) for i in range(len(SENTENCES)))
            for c in cases
        )
        print(
            f"{name}: sentences {said}/{len(cases) * len(SENTENCES)} = {said / (len(cases) * len(SENTENCES)):.1%}, "
            f"metadata values {meta}/{len(cases)} = {meta / len(cases):.1%}, "
            f"shapes redacted in every sentence {everywhere}/{len(cases)}"
        )


def false_positives(detectors: dict[str, ModuleType]) -> None:
    corpora = {**conversation_turns(), "snippets": ordinary()}
    total = sum(len(t) for t in corpora.values())
    chars = sum(len(x) for t in corpora.values() for x in t)
    print(f"\n2. Ordinary text changed ({total} texts, {chars / 1e6:.1f} M characters)")
    for name, module in detectors.items():
        changed_all = 0
        parts = []
        start = time.perf_counter()
        examples: list[str] = []
        for corpus, texts in corpora.items():
            changed = 0
            for text in texts:
                result = module.redact(text)
                if result.text != text:
                    changed += 1
                    if len(examples) < 5:  # shown redacted: what went stays out of the output
                        at = result.text.find("[REDACTED:")
                        examples.append(f"{corpus}: {result.text[max(0, at - 50) : at + 30]!r}")
            changed_all += changed
            parts.append(f"{corpus} {changed}/{len(texts)}")
        took = time.perf_counter() - start
        print(f"{name}: {changed_all}/{total} = {changed_all / total:.3%} changed ({', '.join(parts)}; {took:.1f} s)")
        for example in examples:
            print(f"    {example}")


def cost(detectors: dict[str, ModuleType], repeat: int) -> None:
    turns = conversation_turns()
    short = [t for t in turns["locomo"] if 80 <= len(t) <= 120][:200]
    long = [t for t in turns["longmemeval"] if 4500 <= len(t) <= 5500][:40]
    with_key = [in_sentence(case, i)[:120] for i, case in enumerate(credentials())][:60]
    loads = {
        f"short add (~{statistics.mean(map(len, short)):.0f} chars, {len(short)} texts)": short,
        f"short add with a credential (~{statistics.mean(map(len, with_key)):.0f} chars)": with_key,
        f"long add (~{statistics.mean(map(len, long)) / 1000:.1f} kB, {len(long)} texts)": long,
    }
    print(f"\n3. Cost per redact call, µs (best of {repeat} rounds)")
    names = list(detectors)
    print(f"{'':50}" + "".join(f"{n:>12}" for n in names) + ("   ratio" if len(names) == 2 else ""))
    for label, texts in loads.items():
        best = dict.fromkeys(names, float("inf"))
        for _ in range(repeat):
            for name, module in detectors.items():
                start = time.perf_counter()
                for text in texts:
                    module.redact(text)
                best[name] = min(best[name], (time.perf_counter() - start) / len(texts) * 1e6)
        row = f"{label:50}" + "".join(f"{best[n]:>12.1f}" for n in names)
        if len(names) == 2:
            row += f"   {best[names[1]] / best[names[0]]:.1f}x faster" if best[names[0]] else ""
        print(row)


def first_call(load: Callable[[], ModuleType | None]) -> tuple[ModuleType | None, float]:
    """The module, and the time to import it and make its first call (what the first add pays)."""
    start = time.perf_counter()
    module = load()
    if module is not None:
        module.redact("warm up: ghp_ and sk- and password")
    return module, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--baseline", default="2079b3a", help="git revision of the detector before (server/redaction.py)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    current, took = first_call(lambda: importlib.import_module("memorch.domain._redaction"))
    assert current is not None
    detectors: dict[str, ModuleType] = {"now": current}
    print(f"import and first call: now {took * 1e3:.0f} ms", end="")
    if not args.no_baseline:
        baseline, took = first_call(lambda: load_baseline(args.baseline))
        if baseline is not None:
            detectors[args.baseline] = baseline
            print(f", {args.baseline} {took * 1e3:.0f} ms", end="")
    print()
    recall(detectors)
    false_positives(detectors)
    cost(detectors, args.repeat)


if __name__ == "__main__":
    main()
