"""A query that names the user whose memories it searches.

Memories are mostly the user's own words ("I moved to Lisbon") or facts about them, and an
assistant often asks in the third person, with the user's id as a name: "where does alice
live?" in alice's memories. There the name tells no memory apart (every one is alice's), yet it
matches the few that happen to say it: "Alice prefers window seats" ranked first for "what does
alice do for work?", above "I work as a data engineer at Acme", and "where does alice live?"
left "I moved to Lisbon" under the threshold (0.22; "where do I live?" 0.57).

So the scope's own ``user_id``, said as a word of the query, is read as the first person:
"alice's" as "my", "alice" as "I" (tests/test_relevance.py). Ids that are not names are left
alone: anything but letters (``u-123``, an email), a single letter, and the words an id is often
set to that a query also uses ("default", "user", "me", ...).
"""

from __future__ import annotations

import functools
import re

from memorch.storage.base import Scope

GENERIC_IDS = frozenset(
    {"default", "user", "users", "me", "my", "you", "your", "i", "we", "us", "self", "owner", "guest", "admin",
     "root", "test", "local", "anonymous", "anon", "main", "home", "work", "all", "none", "nobody", "someone"}
)  # fmt: skip


APOSTROPHES = "['\u2019]"  # "alice's", and its typographic form


@functools.lru_cache(maxsize=256)
def _name_pattern(user_id: str) -> re.Pattern[str] | None:
    if len(user_id) < 2 or not user_id.isalpha() or user_id.lower() in GENERIC_IDS:
        return None
    return re.compile(rf"\b{re.escape(user_id)}(?P<own>{APOSTROPHES}s\b|{APOSTROPHES}(?!\w))?(?!\w)", re.IGNORECASE)


def as_first_person(query: str, scope: Scope) -> str:
    """``query`` with the scope's user named as "I" / "my" (unchanged when it does not name them)."""
    pattern = _name_pattern(scope.user_id) if scope.user_id else None
    if pattern is None:
        return query
    return pattern.sub(lambda m: "my" if m.group("own") else "I", query)
