"""The bundled MiniLM's word pieces, each with a vector: the search's related-words re-ordering
(``retrieval._words``) reads them.

A piece's vector is the int8 model's output at that piece read alone (``[CLS] piece [SEP]``),
centred and cut to its first 128 principal axes, as int8: ``_weights/word_pieces.npy`` (3.9 MB,
written by ``bench/make_word_pieces.py``). It ships in the wheel because computing it took a
store's first search ~6 s on two cores; the 128 axes re-order the fusion's first hits as the
384 dimensions did (11.7 MB) on both dev files.

A text's pieces are its first ``MAX_PIECES`` (the embedder's window; the opening of a long text is
where its topic is named, docs/embeddings.md "Long texts"), kept as a ``Bag`` for the next search
(``TEXTS_KEPT`` texts). The cuts are made here as the model's tokenizer makes them (BERT's rules:
lower case without accents, words at spaces and punctuation, ``_WORD``; each word cut greedily
into the longest pieces of the vocabulary, ``_pieces_of_word``, a word's pieces kept), because
the ``tokenizers`` library took 7-14 ms for the 30 long texts a search re-orders (it builds an
object with every piece's string and offsets per text) where this takes 3.5-5 ms, and ~0.1 ms
for texts seen before. ``tests/test_words.py`` compares the cuts with the tokenizer's.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from memorch.models._minilm import WEIGHTS_DIR

TABLE = "word_pieces.npy"
MAX_PIECES = 256
TEXTS_KEPT = 20_000  # the bags of this many texts stay in memory (~2 kB each at most)
WORDS_KEPT = 200_000
# A CJK ideograph alone, a run of letters and digits, any other visible character alone: where
# BERT's pre-tokenizer cuts (it keeps a symbol such as "€" or "°" with the characters beside it;
# here it stands alone).
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+|\S")
_DROPPED = frozenset({"Mn", "Cc", "Cf"})  # accents (once decomposed), control and format characters
LONGEST_WORD = 100  # a longer word is one unknown piece, as in the tokenizer's WordPiece


class Bag(NamedTuple):
    """A text's distinct pieces, how often each occurs, and how many pieces it has."""

    ids: np.ndarray
    counts: np.ndarray
    length: int


class WordPieces:
    """Texts as word pieces (``pieces``: in order; ``bags``: distinct, with counts, kept), and the
    cosines between pieces."""

    def __init__(self, rows: np.ndarray) -> None:
        """``rows``: the int8 vectors of the vocabulary's pieces."""
        from tokenizers import Tokenizer

        vocabulary: dict[str, int] = Tokenizer.from_file(str(WEIGHTS_DIR / "tokenizer.json")).get_vocab()
        unknown = vocabulary["[UNK]"]
        self._word = functools.lru_cache(maxsize=WORDS_KEPT)(lambda word: _pieces_of_word(word, vocabulary, unknown))
        self._rows = rows
        self._inverse_norms = 1.0 / np.maximum(np.linalg.norm(self._rows.astype(np.float32), axis=1), 1e-12)
        self._bags: OrderedDict[str, Bag] = OrderedDict()
        self._lock = threading.Lock()

    def pieces(self, text: str) -> np.ndarray:
        """The text's first ``MAX_PIECES`` word-piece ids, in order (no ``[CLS]``/``[SEP]``)."""
        found: list[int] = []
        for word in _WORD.findall(_normalized(text)):
            found.extend(self._word(word))
            if len(found) >= MAX_PIECES:
                break
        return np.array(found[:MAX_PIECES], dtype=np.int64)

    def bags(self, texts: list[str]) -> list[Bag]:
        """Each text's ``Bag``, kept for the next call."""
        with self._lock:
            known = {text: self._bags[text] for text in texts if text in self._bags}
            for text in known:
                self._bags.move_to_end(text)
        new = [text for text in dict.fromkeys(texts) if text not in known]
        if new:
            for text in new:
                ids, counts = np.unique(self.pieces(text), return_counts=True)
                known[text] = Bag(ids, counts.astype(np.float64), int(counts.sum()))
            with self._lock:
                for text in new:
                    self._bags[text] = known[text]
                while len(self._bags) > TEXTS_KEPT:
                    self._bags.popitem(last=False)
        return [known[text] for text in texts]

    def cosines(self, pieces: np.ndarray, others: np.ndarray) -> np.ndarray:
        """The cosine between each of ``pieces`` (rows) and each of ``others`` (columns)."""
        dots = self._rows[pieces].astype(np.float32) @ self._rows[others].astype(np.float32).T
        return dots * self._inverse_norms[pieces][:, None] * self._inverse_norms[others][None, :]


def _pieces_of_word(word: str, vocabulary: dict[str, int], unknown: int) -> tuple[int, ...]:
    """WordPiece: the longest piece of the vocabulary the word starts with, then the longest
    continuation ("##...") after it, and so on; a word with no such cut is one unknown piece."""
    whole = vocabulary.get(word)
    if whole is not None:
        return (whole,)
    if len(word) > LONGEST_WORD:
        return (unknown,)
    pieces: list[int] = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = vocabulary.get(word[start:end] if start == 0 else "##" + word[start:end])
            if piece is not None:
                pieces.append(piece)
                start = end
                break
        else:
            return (unknown,)
    return tuple(pieces)


def _normalized(text: str) -> str:
    """Lower case without accents or invisible characters, as the tokenizer's normalizer reads a
    text (a control or format character, such as a zero-width space, is dropped)."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(
        c for c in unicodedata.normalize("NFD", text) if c.isspace() or unicodedata.category(c) not in _DROPPED
    )


@functools.cache
def word_pieces() -> WordPieces:
    """The pieces of this process, with the bundled vectors."""
    return WordPieces(np.load(WEIGHTS_DIR / TABLE))
