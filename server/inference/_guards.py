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


def refuse_unrelated_replies(
    store: Store,
    said: list[tuple[str, np.ndarray]],
    candidates: list[MemoryRecord],
    results: list[AddEvent],
    changes: list[Change],
) -> None:
    """A reply that writes nothing new and only names memories unrelated to every message is a
    model that misread the list, not a judgement: SmolLM2-135M answered "My sister Clara lives in
    Toronto" with NONE for "I'm allergic to peanuts", or with an UPDATE rewriting that memory to
    itself, and the sister was never stored. Such a reply keeps the messages verbatim for
    reprocess instead. New = an ADD or UPDATE text that is no copy of a memory the model was
    shown; unrelated = under the search threshold, on the search's own scale, for every message.
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
    embedder, threshold = store.parts.embedder, store.config.search_threshold
    for text, vector in said:
        scale = vector_scale(embedder, text, vector)
        if any(float(scale.relevance(float(v @ vector))) >= threshold for v in decided):
            return
    raise LLMOutputError(
        "the model wrote nothing new and named only memories unrelated to these messages",
        suggestion="the messages were kept verbatim for `memorch reprocess`; a larger model "
        "(MEMORCH_LLM_MODEL) reconciles better",
    )
