"""How the bundled MiniLM groups texts into runs of the model, against how it grouped them before.

    python bench/embedding_runs.py [--n 400] [--rounds 3]

Before: 32 texts per run, texts sorted by characters, each run padded to its longest text and
split over two threads (onnxruntime's intra-op threads, not spinning). Now
(``memorch.models._minilm``): texts sorted by word pieces, a run holding at most
``TOKEN_BUDGET`` pieces once padded (two 256-piece LongMemEval turns, a dozen LOCOMO lines), so
its activations stay in the CPU's caches, each run on one thread and two runs at once. Both run
the same model file on the same texts, alternating round by round; each line is one round,
texts/s and the ratio now / before. The
last line per text set says how far apart the two groupings' vectors are: the float model's
only by rounding; the int8 model quantizes its activations per run, so a text's vector depends
slightly on the texts it runs with (either way). Recall with the new grouping: bench/locomo.py
and bench/longmemeval.py (docs/embeddings.md).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from int8_speed import texts

BEFORE_TEXTS = 32


def two_thread_model(quantized: bool):
    """The model as memorch ran it until 2026-12-06: a session of two intra-op threads (the
    graph's operators as the product runs them now, so only the runs differ)."""
    from memorch.models._minilm import WEIGHTS_DIR, MiniLMEncoder, model_file, session, session_options

    options = session_options()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = MiniLMEncoder(quantized=quantized)
    model._session = session(WEIGHTS_DIR / model_file(quantized), options)
    return model


def before(model, batch: list[str]) -> np.ndarray:
    """How memorch embedded until 2026-12-06: 32 texts per run, sorted by characters, one run at
    a time (``model`` has the two-thread session)."""
    order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
    pieces = model.tokenizer.encode_batch(batch)
    out = np.empty((len(batch), model.dimension), dtype=np.float32)
    for start in range(0, len(order), BEFORE_TEXTS):
        run = order[start : start + BEFORE_TEXTS]
        out[run] = model._encode_run([pieces[i] for i in run])
    return out


def rate(encode, batch: list[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    vectors = encode(batch)
    return len(batch) / (time.perf_counter() - start), vectors


def main() -> None:
    from memorch.models._minilm import MiniLMEncoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    models = {
        "float": (two_thread_model(False), MiniLMEncoder()),
        "int8": (two_thread_model(True), MiniLMEncoder(quantized=True)),
    }
    for old_model, model in models.values():
        before(old_model, ["warm-up"] * 4)
        model.encode(["warm-up"] * 4)
    for name, batch in texts(args.n).items():
        for kind, (old_model, model) in models.items():
            for round_ in range(1, args.rounds + 1):
                old_rate, old = rate(lambda b, m=old_model: before(m, b), batch)
                new_rate, new = rate(model.encode, batch)
                print(
                    f"{name}, {kind}, round {round_}: before {old_rate:.1f}/s  now {new_rate:.1f}/s  "
                    f"x{new_rate / old_rate:.2f}",
                    flush=True,
                )
            cosines = (old * new).sum(1)
            print(f"{name}, {kind}: cosine now to before min {cosines.min():.6f}, mean {cosines.mean():.6f}")


if __name__ == "__main__":
    main()
