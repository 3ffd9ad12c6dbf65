"""What a reply in shape may still not say: the content guard applied after the plan is made.
(The other guard, a text that says something, is the reply contract's: ``_prompts.Decision``.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memorch.models._llm import LLMOutputError

if TYPE_CHECKING:
    import numpy as np

    from memorch.engine._store import Store
    from memorch.results import AddEvent
    from memorch.storage.base import Change, MemoryRecord

# Two texts this close in the embedding are the same memory said again (MiniLM: "I'm allergic to
# peanuts" and "I am allergic to peanuts" are 0.98 apart from 1).
COPY_SIMILARITY = 0.95
# A reply that writes nothing new says "already known": believed when a memory it names says what
# a message says, at least this relevant on the search's scale. The search threshold (0.3) was the
# bar before, and a small model's no-op reply ("I am living in Paris", relevance 0.37 to "My sister
# Clara lives in Toronto and works as an architect"; 0.58 to "I moved to Berlin") deleted the
# message (a trial with SmolLM2). Measured with the int8 MiniLM: a message that an existing memory
# does say is 0.69-1.0 ("Remember, peanuts make me ill" / "User is allergic to peanuts" 0.73, "My
# dog Rex is 3 years old" / "User has a dog named Rex" 0.69); one that adds to it is under 0.6 ("I
# work at Google as an engineer" / "User works at Google" 0.59): kept as said, nothing is lost.
SAYS_IT = 0.6


def refuse_unrelated_replies(
    store: Store,
    said: list[tuple[str, np.ndarray]],
    candidates: list[MemoryRecord],
    results: list[AddEvent],
    changes: list[Change],
) -> None:
    """A reply that writes nothing new and names no memory that says what a message says is a
    model that misread the list, not a judgement: SmolLM2-135M answered "My sister Clara lives in
    Toronto" with NONE for "I'm allergic to peanuts", or with an UPDATE rewriting that memory to
    itself, and the sister was never stored. Such a reply keeps the messages verbatim for
    reprocess instead. New = an ADD or UPDATE text that is no copy of a memory the model was
    shown; says it = at least ``SAYS_IT`` on the search's own scale, for some message.
    ``said``: each message and its vector; ``candidates``: the memories the model was shown;
    ``results`` and ``changes``: the plan made of its reply."""
    if not said or not results:
        return
    from memorch.retrieval._calibration import vector_scale

    shown = {c.id: c.embedding for c in candidates}
    written = {c.record.id: c.record.embedding for c in changes if c.kind != "DELETE"}
    vectors = written | shown  # an UPDATE's memory is judged as it was shown
    decided = [vectors.get(r["id"]) for r in results]
    if any(v is None for v in decided):
        return  # a NONE from the duplicate check, or a memory without its vector: not judged here
    known = [v for v in shown.values() if v is not None]
    if any(not any(float(v @ k) >= COPY_SIMILARITY for k in known) for v in written.values()):
        return  # it wrote something new: a judgement of its own, whatever the scale says
    # A DELETE is a judgement of its own ("I have left" ends "Bob lives in Oslo"): believed when
    # the memory it ends is related to a message at all (the search threshold); a reply that
    # changes nothing, only when a memory it names says what a message says.
    deletes = any(c.kind == "DELETE" for c in changes)
    bar = store.config.search_threshold if deletes else SAYS_IT
    embedder = store.parts.embedder
    for text, vector in said:
        scale = vector_scale(embedder, text, vector)
        if any(float(scale.relevance(float(v @ vector))) >= bar for v in decided):
            return
    raise LLMOutputError(
        "the model wrote nothing new and named only memories that do not say what these messages say "
        "(unrelated, or only alike)",
        suggestion="the messages were kept verbatim for `memorch reprocess`; a larger model "
        "(MEMORCH_LLM_MODEL) reconciles better",
    )
