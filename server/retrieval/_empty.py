"""Why an answer is empty.

A search or list that finds nothing says which of the usual reasons it is (``empty``), so a model
does not take "nothing stored for this user" or "a filter no memory matches" for "the user never
said that". The weak-matches case has its own field, ``below_threshold`` (``_cut.py``). One
ledger count, read only when the answer is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memorch.domain._counts import memories

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
    counts = ledger.scope_counts(scope)
    stored, deleted = counts["memories"], counts["deleted"]
    who = scope_words(scope)
    if as_of is not None:
        return f"no memory of {who} existed at {as_of} ({memories(stored)} now)"
    if stored == 0:
        gone = f"; {memories(deleted)} deleted (restore_memory brings one back)" if deleted else ""
        return f"no memories are stored for {who}{gone}"
    if filtered:
        return f"{memories(stored)} of {who}, none whose metadata matches the filters"
    return f"{memories(stored)} of {who}, none matching the query"
