"""Graph memory on top of the ledger and the Kuzu index: entity resolution and graph lookups.

Entity resolution happens before the ledger write, so the ledger stores canonical names and
``memorch reindex`` rebuilds exactly the same graph without calling any model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from memorch.engine._components import Components
from memorch.storage.base import Scope, normalize_entity

MAX_NAME_CHARS = 200
_NOT_WORD = re.compile(r"[^\w]+")
_DIGITS = re.compile(r"\d+")


def _relationship(name: str) -> str:
    return _NOT_WORD.sub("_", name.strip().casefold()).strip("_")[:100]


class EntityResolver:
    """Maps names to the scope's existing entities.

    First the model resolves: it sees the entities of the candidate memories and is told to
    reuse their names. Then this class: the same normalized name is the same entity; otherwise
    an embedding similarity at or above ``threshold`` between names of compatible types merges
    them. Similarity alone is a weak signal ("New York" vs "York" scores 0.94, "NYC" vs "New
    York City" 0.92 with MiniLM), hence the high default (0.95) and the type check.
    """

    def __init__(self, components: Components, scope: Scope, threshold: float) -> None:
        self._components = components
        self._threshold = threshold
        known = components.ledger.entity_names(scope)
        self._known = list(known)
        self._types = {normalize_entity(n): t for n, t in known.items()}
        self._by_norm = {normalize_entity(n): n for n in self._known}
        self._known_vectors: np.ndarray | None = None

    def resolve(self, name: str, kind: str | None = None) -> str:
        name = name.strip()[:MAX_NAME_CHARS]
        norm = normalize_entity(name)
        if norm in self._by_norm:
            return self._by_norm[norm]
        match = self._closest(name, kind)
        canonical = match or name
        self._by_norm[norm] = canonical
        if match is None:
            self._known.append(name)
            self._types[norm] = kind
            self._known_vectors = None
        return canonical

    def _closest(self, name: str, kind: str | None) -> str | None:
        if not self._known or self._threshold >= 1.0:
            return None
        embedder = self._components.embedder
        if self._known_vectors is None:
            self._known_vectors = embedder.embed(self._known)
        similarity = self._known_vectors @ embedder.embed([name])[0]
        numbers = _DIGITS.findall(name)
        for best in np.argsort(-similarity):
            if similarity[best] < self._threshold:
                return None
            candidate = self._known[best]
            other = self._types.get(normalize_entity(candidate))
            # "Room 101" is not "Room 102", however close the vectors are.
            if (not kind or not other or kind == other) and _DIGITS.findall(candidate) == numbers:
                return candidate
        return None

    def relation(self, raw: Any) -> dict[str, Any] | None:
        """A clean, resolved relation dict, or None when a part is missing."""
        source, destination = str(raw.source or "").strip(), str(raw.destination or "").strip()
        relationship = _relationship(str(raw.relationship or ""))
        if not (source and destination and relationship):
            return None
        return {
            "source": self.resolve(source, raw.source_type),
            "source_type": raw.source_type,
            "relationship": relationship,
            "destination": self.resolve(destination, raw.destination_type),
            "destination_type": raw.destination_type,
        }


# A query's first words only: each n-gram is two bound values in the relation lookup, and a
# 100 kB query would otherwise pass SQLite's limit on bound values (and name no more entities).
MAX_QUERY_WORDS = 200


def query_ngrams(text: str, longest: int = 5) -> list[str]:
    """Every run of 1..``longest`` words of ``text``, normalized: the names it could mention."""
    words = _NOT_WORD.sub(" ", normalize_entity(text)).split()[:MAX_QUERY_WORDS]
    return [" ".join(words[i : i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)]


def search_relations(
    components: Components, scope: Scope, query: str, hit_ids: Sequence[str], limit: int = 30
) -> list[dict[str, Any]]:
    """Relations of entities named in the query and of the top hits, for search results.

    One-hop lookups come from the ledger's indexed relation table (the same data the graph is
    built from), so a search never waits for the graph's cross-process lock.
    """
    rows = components.ledger.relations_touching(scope, query_ngrams(query), list(hit_ids), limit)
    seen, out = set(), []
    for row in rows:
        key = (row["source"], row["relationship"], row["destination"])
        if key not in seen:
            seen.add(key)
            out.append({"source": key[0], "relationship": key[1], "destination": key[2]})
    return out
