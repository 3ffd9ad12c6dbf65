"""Two ONNX files of the bundled MiniLM through the product's ``encode`` (two runs at once, as an
import embeds): texts/s on LOCOMO and LongMemEval turns, one query's time, and how far apart
their vectors are. For a change to a model file, measured against the file it replaces:

    git show 9a460e1:server/models/_weights/model_int8.onnx > /tmp/before.onnx
    python bench/model_files.py /tmp/before.onnx [server/models/_weights/model_int8.onnx]
        [--n 500] [--rounds 7] [--profile]

Both files run in this process on the same texts with the same session settings
(``memorch.models._minilm.session``), alternating within each round (the file that goes first
alternating too) so a change in the machine's load hits both alike; each line is a round, the
summary each file's median rate and every round's ratio (second / first), sorted.
``--profile`` also prints each file's time by operator (onnxruntime's profiler, one thread, the
same runs).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

from int8_speed import cpu_flags, query_p50_ms, texts

from memorch.models._minilm import MiniLMEncoder

WEIGHTS = Path(__file__).resolve().parent.parent / "server" / "models" / "_weights"


def encoder(path: Path) -> MiniLMEncoder:
    from memorch.models import _minilm

    model = _minilm.MiniLMEncoder(quantized=True)
    model._session = _minilm.session(path)
    return model


def by_operator(path: Path, batch: list[str]) -> list[tuple[str, float]]:
    """Seconds per operator type for ``batch`` embedded run by run on one thread."""
    from memorch.models import _minilm

    model = _minilm.MiniLMEncoder(quantized=True)
    options = _minilm.session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "profile")
    model._session = _minilm.session(path, options)
    encodings = model.tokenizer.encode_batch(batch)
    for run in _minilm.runs([len(e.ids) for e in encodings], 32):
        model._encode_run([encodings[i] for i in run])
    events = json.loads(Path(model._session.end_profiling()).read_text())
    spent: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node":
            spent[event["args"].get("op_name", "?")] += event["dur"] / 1e6
    return spent.most_common()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path, nargs="?", default=WEIGHTS / "model_int8.onnx")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"CPU flags: {cpu_flags()}")
    models = {"first": encoder(args.first), "second": encoder(args.second)}
    for name, batch in texts(args.n).items():
        rates: dict[str, list[float]] = {"first": [], "second": []}
        vectors = {}
        for round_ in range(1, args.rounds + 1):
            order = list(models.items()) if round_ % 2 else list(models.items())[::-1]  # neither always first
            for kind, model in order:
                start = time.perf_counter()
                vectors[kind] = model.encode(batch)
                rates[kind].append(len(batch) / (time.perf_counter() - start))
            print(f"{name} round {round_}: first {rates['first'][-1]:.1f}/s  second {rates['second'][-1]:.1f}/s")
        ratios = sorted(b / a for a, b in zip(rates["first"], rates["second"], strict=True))
        cosines = (vectors["first"] * vectors["second"]).sum(1)
        print(
            f"{name} ({len(batch)}): median first {statistics.median(rates['first']):.1f}/s, second "
            f"{statistics.median(rates['second']):.1f}/s; ratios {' '.join(f'{r:.2f}' for r in ratios)}; "
            f"cosine between them mean {cosines.mean():.5f}, min {cosines.min():.5f}"
        )
    for kind, model in models.items():
        print(f"one query, {kind}: p50 {query_p50_ms(model, 100):.2f} ms")
    if args.profile:
        batch = texts(args.n)["LongMemEval turns"]
        for kind, path in (("first", args.first), ("second", args.second)):
            spent = by_operator(path, batch)
            total = sum(s for _, s in spent)
            print(f"{kind} by operator: " + ", ".join(f"{op} {s:.2f} s ({s / total:.0%})" for op, s in spent[:8]))


if __name__ == "__main__":
    main()
