"""A query that names the user whose memories it searches.

Said the way the user says things (memorch's verbatim add: "I moved to Lisbon"), a memory does
not name its user, and "Alice" in a query over alice's memories matches only the few that happen
to say it: "Alice said hi on the phone" came first for "what does Alice do for work?", above "I
work as a data engineer at Acme", and "where does Alice live?" scored "I moved to Lisbon" 0.22,
under the threshold ("where do I live?": 0.57). There the name is read as the first person:
"Alice's" as "my", "Alice" as "I".

Only there. Where facts were written down with the name ("Alice is allergic to peanuts", as
memorch's LLM writes them, beside "Tom is allergic to cats"), the name is what tells the user's
facts from other people's, so it stays: the rewrite applies when fewer than ``NAMED_SHARE`` of
the scope's newest ``SAMPLE`` memories say it. And only a capitalized "Alice" is a name: an id
that is also a word ("may", "will") leaves "what may cause it?" alone; so do ids that are not
names at all (``u-123``, an email, one letter, "default"). tests/test_relevance.py,
docs/search.md "A query that names the user".
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memorch.storage.base import Scope
    from memorch.storage.ledger import Ledger

SAMPLE = 200  # the scope's newest memories looked at (one indexed read, only for such a query)
NAMED_SHARE = 0.25
APOSTROPHES = "['\u2019]"  # "Alice's", and its typographic form
GENERIC_IDS = frozenset(
    {"default", "user", "users", "me", "you", "self", "owner", "guest", "admin", "root", "test"}
    # capitalized wherever they are written, so a capital says nothing of a name
    | {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october"}
    | {"november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)
# A word that opens a sentence is capitalized whatever it is ("Will it rain?" for user "will",
# "Mark my calendar" for "mark"): there only the possessive ("Alice's job") counts as the name.
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\W*$")


@functools.lru_cache(maxsize=256)
def _name(user_id: str) -> re.Pattern[str] | None:
    """The user id as a word (and its possessive), in any case; None for an id that is no name."""
    if len(user_id) < 2 or not user_id.isalpha() or user_id.lower() in GENERIC_IDS:
        return None
    # Whole words: "Bob-Alice" and "Alicent" are other names; "James'" is a possessive too.
    return re.compile(rf"(?<![\w-]){re.escape(user_id)}(?P<own>{APOSTROPHES}s?)?(?![\w-])", re.IGNORECASE)


def _capitalized(match: re.Match[str]) -> bool:
    """Written as a name: capitalized, and not merely because it opens a sentence."""
    if not match.group(0)[0].isupper():
        return False
    return bool(match.group("own")) or not _SENTENCE_START.search(match.string[: match.start()])


def naming_the_user(query: str, scope: Scope) -> re.Pattern[str] | None:
    """The pattern of the scope's user's name when ``query`` says it capitalized (a few
    microseconds, on the caller's thread); None for every other query."""
    name = _name(scope.user_id) if scope.user_id else None
    return name if name is not None and any(_capitalized(m) for m in name.finditer(query)) else None


def as_first_person(query: str, name: re.Pattern[str], scope: Scope, ledger: Ledger) -> str:
    """``query`` with the user it names (``naming_the_user``) as "I" / "my", where the scope's
    memories do not name them (unchanged otherwise; one ledger read)."""
    recent = ledger.list(scope, None, SAMPLE)
    if sum(1 for r in recent if name.search(r.memory)) >= NAMED_SHARE * len(recent):
        return query
    return name.sub(lambda m: ("my" if m.group("own") else "I") if _capitalized(m) else m.group(0), query)
