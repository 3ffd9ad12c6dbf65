"""The search's weights (``MEMORCH_SEARCH_WEIGHTS``): their defaults and what a wrong set says.

The fusion's signals (docs/search.md "Order and score") have weights; "context" is a share of the
way to a hit (``retrieval/_context.py``), "words" the share of related words in re-ordering the
first hits (``retrieval/_words.py``), "diversity" what a first hit's likeness to one above it costs
it (``retrieval/_diversity.py``): those three are shares, at most 1.
"""

from __future__ import annotations

DEFAULT_SEARCH_WEIGHTS = {
    "vector": 1.0,
    "text": 1.0,
    "graph": 0.5,
    "context": 0.3,
    "time": 1.0,
    "words": 0.2,
    "diversity": 0.15,
}
SHARES = ("context", "words", "diversity")


def checked(value: dict[str, float]) -> dict[str, float]:
    """``value`` if every key is a signal, no weight is negative and no share is over 1; else a
    ``ValueError`` naming what is wrong (a misspelt signal would otherwise be ignored, and its
    weight stay the default)."""
    unknown = sorted(set(value) - set(DEFAULT_SEARCH_WEIGHTS))
    if unknown:
        raise ValueError(f"has no signal {', '.join(unknown)} (the signals: {', '.join(DEFAULT_SEARCH_WEIGHTS)})")
    negative = sorted(name for name, weight in value.items() if weight < 0)
    if negative:
        raise ValueError(f"weights cannot be negative ({', '.join(negative)})")
    shares = sorted(name for name in SHARES if value.get(name, 0.0) > 1)
    if shares:
        raise ValueError(f"{', '.join(shares)} is a share, at most 1")
    return value
