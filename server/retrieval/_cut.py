"""Which of a search's ranked hits it returns: the threshold.

A ``threshold`` the caller gives is a floor for every hit: a hit scoring under it is left out
(and counted in ``below_threshold``). With none, the default (``search_threshold``, 0.3) answers
two questions apart:

- does the store hold anything relevant? The search returns nothing unless one of its hits
  scores at least the default: a search in the wrong scope, or for something never said, comes back
  empty (``bench/relevance.py``: the top hit's score is what separates those, AUROC 0.986).
- which hits come with that answer? Those scoring at least ``TAIL_SHARE`` of the default (0.15).
  Below a relevant first hit, the next memories of the same story are often weak on their own: a
  fact said in passing in a long turn about something else ("How many days ago did I meet
  Emma?": a turn about a marketing conference that names her once) has little of the query's
  meaning or words. A floor of 0.3 on each hit cost LongMemEval's answer turns most: on the 72
  dev questions recall@10 / @30 0.898 / 0.981 for the ranking and 0.884 / 0.940 once 0.3 cut
  each hit; a floor of 0.15 after a first hit of 0.3 keeps 0.898 / 0.981 (0.25: 0.898 / 0.954;
  0.1 and 0.05 as 0.15), and on LOCOMO dev questions 0.739 -> 0.745 at 10 (the ranking's figure),
  one- and two-noun keyword queries 0.434 -> 0.450 and 0.587 -> 0.614 (docs/search.md "The
  default threshold's tail"). Replays of the searches' ``explain`` (threshold 0), chosen as half
  before they ran.
"""

from __future__ import annotations

from typing import NamedTuple

from memorch.results import BelowThreshold

TAIL_SHARE = 0.5


class Cut(NamedTuple):
    """A search's threshold: ``answer``, what its best hit must score for it to return anything;
    ``each``, what every hit it returns scores at least."""

    answer: float
    each: float

    @classmethod
    def of(cls, threshold: float | None, default: float) -> Cut:
        """The caller's ``threshold`` for every hit, or the default's answer and tail."""
        if threshold is not None:
            return cls(threshold, threshold)
        return cls(default, default * TAIL_SHARE)

    def split(self, scores: list[float]) -> tuple[list[int], list[float], float]:
        """A ranked list's hits (``scores``, in order): the places of those returned, the scores of
        those left out, and the threshold that left them out (``answer`` when none is returned)."""
        kept = [i for i, score in enumerate(scores) if score >= self.each]
        if any(scores[i] >= self.answer for i in kept):
            return kept, [s for s in scores if s < self.each], self.each
        return [], list(scores), self.answer


NO_CUT = Cut(0.0, 0.0)


def below_threshold(below: list[float], threshold: float) -> BelowThreshold | None:
    """What a search's answer says of the hits its threshold left out (none: nothing to say)."""
    if not below:
        return None
    return BelowThreshold(count=len(below), best_score=round(max(below), 6), threshold=threshold)
