"""Write server/models/_weights/word_pieces.npy: a vector for each of the bundled MiniLM's 30,522
word pieces, which the search's related-words step reads (``memorch.models._token_vectors``).

Run after ``bench/make_int8_weights.py`` (the output is committed):

    uv run python bench/make_word_pieces.py

What it does: each piece is read alone by the int8 model (``[CLS] piece [SEP]``) and its output
at the piece is kept, as a unit vector; the vectors are centred on their mean and projected on
their first ``COMPONENTS`` principal axes, then stored as int8, each row scaled so its largest
component is 127 (cosines divide by the rows' norms, so only the direction counts). 384 float
dimensions would be 47 MB, 384 int8 ones 11.7 MB; 128 int8 ones are 3.9 MB and ordered the
fusion's first hits as the full vectors did (replays of both dev files, docs/search.md "Related
words"). Computed at run time instead, a store's first search waited ~6 s on two cores.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "server" / "models" / "_weights"
TARGET = WEIGHTS / "word_pieces.npy"
COMPONENTS = 128
BATCH = 2048
NOTICE_HEAD = "\nAlso derived by memorch (bench/make_word_pieces.py):"
NOTICE = (
    NOTICE_HEAD + " word_pieces.npy holds model_int8.onnx's output at each\n"
    "vocabulary piece read alone, centred, projected on its first {components} principal axes, as int8.\n"
    "Bundled word_pieces.npy sha256: {sha}\n"
)


def piece_vectors() -> np.ndarray:
    """Every vocabulary piece's output from the int8 model, as unit rows (float32)."""
    from memorch.models._minilm import shared_encoder

    encoder = shared_encoder(quantized=True)
    pieces = np.arange(encoder.tokenizer.get_vocab_size())
    states = np.concatenate([encoder.token_states(pieces[i : i + BATCH]) for i in range(0, len(pieces), BATCH)])
    return states / np.maximum(np.linalg.norm(states, axis=1, keepdims=True), 1e-12)


def projected(rows: np.ndarray, components: int) -> np.ndarray:
    """``rows`` centred and projected on their first ``components`` principal axes, as int8 rows
    whose largest component is 127."""
    centred = rows - rows.mean(0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    low = centred @ axes[:components].T
    return np.round(low / np.maximum(np.abs(low).max(1, keepdims=True), 1e-12) * 127).astype(np.int8)


def main() -> None:
    table = projected(piece_vectors(), COMPONENTS)
    buffer = io.BytesIO()
    np.save(buffer, table)
    TARGET.write_bytes(buffer.getvalue())
    notice = (WEIGHTS / "NOTICE").read_text().split(NOTICE_HEAD)[0]
    sha = hashlib.sha256(buffer.getvalue()).hexdigest()
    (WEIGHTS / "NOTICE").write_text(notice + NOTICE.format(components=COMPONENTS, sha=sha))
    print(f"wrote {TARGET} ({len(buffer.getvalue()) / 1e6:.1f} MB, {table.shape[0]} x {table.shape[1]} int8)")


if __name__ == "__main__":
    main()
