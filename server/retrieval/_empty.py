"""Why an answer is empty.

A search or list that finds nothing says which of the usual reasons it is (``empty``), so a model
does not take "nothing stored for this user" or "a filter no memory matches" for "the user never
said that". The weak-matches case has its own field, ``below_threshold`` (``_cut.py``); an answer
that ``max_tokens`` emptied says ``omitted``. One indexed ledger read (is any memory of the scope
readable now?), only when the answer is empty: deleted memories are not counted, as that reads the
history, which has no index by scope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memorch.storage.base import Scope
    from memorch.storage.ledger import Ledger


def scope_words(scope: Scope) -> str:
    """``user_id 'alice'`` (``, agent_id 'bot'``; `` in project 'x'``)."""
    words = ", ".join(f"{key} {value!r}" for key, value in scope.items())
    return f"{words} in project {scope.project!r}" if scope.project else words


def why_empty(ledger: Ledger, scope: Scope, filtered: bool, as_of: str | None = None) -> str:
    """The reason an answer over ``scope`` found nothing (with ``filtered``: metadata filters
    were given; ``as_of``: the answer was about that time)."""
    who = scope_words(scope)
    if as_of is not None:
        return f"no memory of {who} existed at {as_of}"
    if not ledger.list(scope, None, 1):
        return f"no memories are stored for {who}"
    if filtered:
        return f"{who} has memories, none whose metadata matches the filters"
    return f"{who} has memories, none matching the query"
