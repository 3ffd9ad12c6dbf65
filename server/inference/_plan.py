"""``add(infer=True)``: one LLM call extracts facts and reconciles them with what is known.

Three steps, each on its own kind of worker (``Workers``), so that no write waits for a model:

1. ``prepare`` (reader): embed the new messages, retrieve candidate memories of the scope, build
   the prompt (candidates numbered 0..n-1, so the model cannot invent ids).
2. ``ask`` (model pool): the one structured call (a second only to repair an invalid reply).
3. ``apply`` (writer, under the store's lock): check that the candidates the model saw are
   unchanged, turn its decisions into changes, commit them in one ledger transaction. When a
   candidate changed meanwhile (another write touched it during the call), the add is planned
   again once; if it changed again, decisions about changed memories are applied conservatively
   (an UPDATE becomes an ADD of the new text, a DELETE is skipped): nothing is lost, and nothing
   is destroyed on a stale view.

Every decision in the result says why (``reason``) and which memory it touched; ``dry_run``
stops after step 2 and returns the plan without writing. ``_add.py`` runs these steps for an
``add``; messages waiting for inference (a model that failed, or background inference) are
handled in ``_pending.py``. Only model failures (``models._llm.MODEL_FAILURES``) degrade; a bug
or bad input propagates to the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from memorch.domain._messages import Message
from memorch.domain._records import (
    NOTHING_FOUND,
    deletion,
    made_from,
    new_record,
    replaced,
    successive,
    utc_now,
)
from memorch.engine._operations import find_repeat
from memorch.inference._candidates import candidate_entities, candidates_for, is_pending
from memorch.inference._guards import refuse_unrelated_replies
from memorch.inference._prompts import COMPACT_CANDIDATES, InferenceReply, inference_messages, reply_schema
from memorch.models._llm import LLMOutputError
from memorch.results import AddEvent, event
from memorch.storage.base import Change, MemoryRecord, Scope

if TYPE_CHECKING:
    import numpy as np

    from memorch.engine._engine import Engine
    from memorch.engine._store import Store

log = logging.getLogger("memorch.inference")
REPLANS = 1  # extra model calls when candidates changed during the first one
# Why a decision was taken, when the model gave no reason of its own.
REASONS = {
    "ADD": "a new fact from these messages",
    "UPDATE": "the new messages refine or correct this memory",
    "DELETE": "the new messages contradict this memory",
    "NONE": "this memory already says it",
}
REPEAT = "the same text is already stored"
SUMMARY = "a summary of the agent's run (procedural memory)"
NOTHING_TO_REMEMBER = (
    "the model found nothing worth remembering in these messages (small talk or questions); nothing was stored"
)


class ModelOverdue(Exception):
    """The model did not answer within the add's deadline (MEMORCH_LLM_ADD_TIMEOUT)."""


@dataclass
class Prepared:
    """What the model is shown: the candidate memories as they were then, and the prompt
    (written by ``ask``, which knows whether the model gets the compact one)."""

    messages: list[Message]
    scope: Scope
    metadata: dict[str, Any]
    candidates: list[MemoryRecord]
    entities: list[str]
    prompt: list[dict[str, str]] = field(default_factory=list)
    said: list[tuple[str, np.ndarray]] = field(default_factory=list)  # each message and its vector


@dataclass
class Plan:
    results: list[AddEvent] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    decisions: int = 0  # how many decisions the model returned
    ignored: int = 0  # decisions naming ids the model invented
    # Memories a decision of this reply already named (kept, changed, deleted, or an added fact's
    # repeat): the first decision about a memory counts, so the result says each one once and as
    # it is stored (SmolLM2 once answered NONE, then UPDATE, for one memory); a later UPDATE's
    # text is added beside it, a later DELETE or NONE is ignored, so nothing said is dropped.
    decided: set[str] = field(default_factory=set)
    removed_relations: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False  # reprocess: the pending message was handled elsewhere meanwhile

    def relations_report(self) -> dict[str, list[dict[str, Any]]]:
        def short(rel: dict[str, Any]) -> dict[str, Any]:
            return {k: rel[k] for k in ("source", "relationship", "destination")}

        added = [short(r) for c in self.changes if c.kind != "DELETE" for r in (c.relations or ())]
        return {"added_entities": added, "deleted_entities": [short(r) for r in self.removed_relations]}


def conversation(messages: list[Message], metadata: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    default_date = metadata.get("date") or metadata.get("timestamp")
    return [(m.role, m.content, m.timestamp or (str(default_date) if default_date else None)) for m in messages]


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d (%A)")


def _relations_by_fact(store: Store, reply: InferenceReply, scope: Scope) -> dict[int, tuple[dict, ...]]:
    """The reply's relations, resolved to the scope's entities, grouped by fact position."""
    if not store.config.graph_enabled or not reply.relations:
        return {}
    from memorch.retrieval._graph import EntityResolver

    resolver = EntityResolver(store.parts, scope, store.config.entity_merge_threshold)
    grouped: dict[int, list[dict]] = {}
    for raw in reply.relations:
        if raw.fact is None or not 0 <= raw.fact < len(reply.memory):
            log.warning("ignored a relation that names no fact: %s", raw)
            continue
        relation = resolver.relation(raw)
        if relation is not None:
            grouped.setdefault(raw.fact, []).append(relation)
    return {k: tuple(v) for k, v in grouped.items()}


def _embed_texts(store: Store, reply: InferenceReply) -> dict[int, np.ndarray]:
    """Vectors of the decisions' new texts (position → vector), one batch, before the lock."""
    max_bytes = store.config.max_text_bytes
    texts = [(i, d.text.strip()) for i, d in enumerate(reply.memory) if d.event in ("ADD", "UPDATE") and d.text]
    wanted = [(i, t) for i, t in texts if t and len(t.encode()) <= max_bytes]
    if len(wanted) < len([t for _, t in texts if t]):
        log.warning("ignored decisions whose text is over %d bytes", max_bytes)
    vectors = store.parts.embedder.embed([t for _, t in wanted]) if wanted else []
    return {i: v for (i, _), v in zip(wanted, vectors, strict=True)}


def _plan(
    store: Store,
    reply: InferenceReply,
    prepared: Prepared,
    vector_of: dict[int, np.ndarray],
    changed: set[str],
) -> Plan:
    """Turn the model's decisions into ledger changes; ids it invented are ignored, and
    decisions about memories in ``changed`` (edited since the model saw them) are conservative."""
    plan = Plan(decisions=len(reply.memory))
    scope, metadata, candidates = prepared.scope, prepared.metadata, prepared.candidates
    relations = _relations_by_fact(store, reply, scope)
    graph_on = store.config.graph_enabled
    touched: set[str] = set()
    now = utc_now()
    for position, decision in enumerate(reply.memory):
        rels = relations.get(position, ()) if graph_on else None
        vector = vector_of.get(position)
        text = decision.text.strip() if decision.text else ""
        target = candidates[decision.id] if decision.id is not None and 0 <= decision.id < len(candidates) else None
        stale = decision.event == "UPDATE" and target is not None and target.id in changed
        again = decision.event == "UPDATE" and target is not None and target.id in plan.decided
        if decision.event == "ADD" or stale or again:
            if vector is not None:
                why = _beside(target.id, stale) if stale or again else None
                at = successive(now, position)
                _add(store, plan, text, vector, scope, metadata, at, rels, why or decision.reason or REASONS["ADD"])
            continue
        if target is None:
            log.warning("ignored a %s decision for id %r, which was not offered", decision.event, decision.id)
            plan.ignored += 1
            continue
        if target.id in plan.decided:
            log.info("ignored a second decision (%s) about memory %s in one reply", decision.event, target.id)
            continue
        if target.id in changed:
            log.info("kept %s of memory %s: it changed while the model was answering", decision.event, target.id)
            continue
        reason = decision.reason or REASONS[decision.event]
        if decision.event != "UPDATE" or vector is not None:
            plan.decided.add(target.id)
        if decision.event == "NONE":
            plan.results.append(event("NONE", target, reason=reason))
        elif decision.event == "DELETE":
            touched.add(target.id)
            plan.changes.append(replace(deletion(target), reason=reason))
            plan.results.append(event("DELETE", target, reason=reason))
        elif vector is not None:
            touched.add(target.id)
            merged = {**target.metadata, **metadata}
            updated = replaced(target, text, vector, merged)
            change = Change("UPDATE", updated, old_memory=target.memory, relations=rels, reason=reason, before=target)
            plan.changes.append(change)
            plan.results.append(event("UPDATE", updated, previous=target.memory, reason=reason))
    if graph_on and touched:
        previous = store.parts.ledger.relations_for(sorted(touched))
        plan.removed_relations = [r for rels in previous.values() for r in rels]
    refuse_unrelated_replies(store, prepared.said, prepared.candidates, plan.results, plan.changes)
    if plan.decisions and not plan.results and not changed:
        # Every decision was unusable (ids that were not offered, over-long texts): reading
        # that as "nothing to remember" would drop what the user said.
        raise LLMOutputError(
            f"none of the model's {plan.decisions} decisions could be applied (ids that were not offered)",
            suggestion="the messages were kept verbatim for `memorch reprocess`; a model that follows "
            "JSON instructions (MEMORCH_LLM_MODEL) avoids this",
        )
    return plan


def _beside(memory_id: str, stale: bool) -> str:
    """Why an UPDATE's text was added as a memory of its own instead."""
    if stale:
        return f"memory {memory_id} changed while the model was answering; added beside it"
    return f"this reply had already decided memory {memory_id}; added beside it"


def _add(
    store: Store,
    plan: Plan,
    text: str,
    vector: np.ndarray,
    scope: Scope,
    metadata: dict[str, Any],
    now: str,
    relations: tuple[dict, ...] | None,
    reason: str,
) -> None:
    duplicate = find_repeat(store, text, scope, plan.changes)
    # A message waiting for inference is not a fact (and may be the one this plan replaces): a
    # fact with its very words is still added, or the message would go with nothing left of it.
    # So is a memory this reply deletes or rewrites (its stored text is what the ledger matched).
    if duplicate is not None and not is_pending(duplicate) and not _undone(plan, duplicate):
        if duplicate.id not in plan.decided:
            plan.decided.add(duplicate.id)
            plan.results.append(event("NONE", duplicate, reason=REPEAT))
        return
    record = new_record(text, vector, scope, metadata, now)
    plan.decided.add(record.id)  # the same fact twice in one reply is said once
    plan.changes.append(Change("ADD", record, relations=relations, reason=reason))
    plan.results.append(event("ADD", record, reason=reason))


def _undone(plan: Plan, record: MemoryRecord) -> bool:
    """Whether ``record`` (as stored) is deleted or given another text by ``plan``."""
    return any(
        c.record.id == record.id and c.record is not record and c.kind in ("DELETE", "UPDATE") for c in plan.changes
    )


# -- the three steps ---------------------------------------------------------------------------


def prepare(
    store: Store, messages: list[Message], scope: Scope, metadata: dict[str, Any], exclude: set[str]
) -> Prepared:
    store.searchable()
    said = [m for m in messages if m.role != "system"]
    vectors = store.parts.embedder.embed([m.content for m in said])
    candidates = candidates_for(store, vectors, scope, exclude)
    entities = candidate_entities(store, candidates)
    texts = [(m.content, vector) for m, vector in zip(said, vectors, strict=True)]
    return Prepared(messages, scope, metadata, candidates, entities, said=texts)


def ask(store: Store, prepared: Prepared) -> InferenceReply:
    """The one structured call. The compact prompt (a small model, or a small context window)
    shows fewer candidates: ``prepared`` keeps only those, so an id can only name one shown."""
    llm, config = store.parts.llm, store.config
    compact = llm.compact_prompt()
    if compact:
        prepared.candidates = prepared.candidates[:COMPACT_CANDIDATES]
    prepared.prompt = inference_messages(
        conversation(prepared.messages, prepared.metadata),
        [c.memory for c in prepared.candidates],
        today(),
        graph=config.graph_enabled,
        custom_extraction=config.custom_fact_extraction_prompt,
        custom_update=config.custom_update_memory_prompt,
        entities=prepared.entities,
        compact=compact,
    )
    return llm.structured(
        prepared.prompt, InferenceReply, reply_schema(config.graph_enabled, len(prepared.candidates), compact)
    )


def apply(
    store: Store, prepared: Prepared, reply: InferenceReply, retire: Sequence[MemoryRecord], final: bool
) -> Plan | None:
    """Commit the reply's decisions, or None when a candidate changed and a new plan is wanted.
    ``retire``: pending messages this inference replaces, deleted in the same transaction."""
    vector_of = _embed_texts(store, reply)  # outside the lock
    # The memories it may change are locked too: a purge of one meanwhile (another replica's)
    # would otherwise be undone by this commit, the purged text back in the history.
    changeable = [*(c.id for c in prepared.candidates), *(r.id for r in retire)]
    with store.reconciling(prepared.scope, memories=changeable):
        retired = _unchanged(store, retire)  # as they are now, under the lock
        if retired is None:
            return Plan(skipped=True)  # changed, deleted or already processed meanwhile
        changed = _changed(store, prepared.candidates)
        if changed and not final:
            return None
        plan = _plan(store, reply, prepared, vector_of, changed)
        outcome = _outcome(plan)
        messages = [r.id for r in retired]
        made = [_made_from(change, messages) for change in plan.changes]
        store.commit([*made, *(replace(deletion(r), reason=outcome) for r in retired)])
    return plan


def _outcome(plan: Plan) -> str:
    """What a pending message became, for its history (``memory_history`` on a pending id): the
    ids, not the texts, so that purging a fact leaves no copy of it in the message's history."""
    if not plan.results:
        return NOTHING_FOUND
    done = ", ".join(f"{r['event']} {r['id']}" for r in plan.results)
    return f"replaced by what inference made of it: {done}"


def _made_from(change: Change, messages: Sequence[str]) -> Change:
    """A memory added or updated from pending messages remembers their ids (``made_from``)."""
    if not messages or change.kind not in ("ADD", "UPDATE"):
        return change
    return replace(change, record=replace(change.record, metadata=made_from(change.record.metadata, messages)))


def preview(store: Store, prepared: Prepared, reply: InferenceReply) -> Plan:
    """What ``apply`` would commit now (``dry_run``): the same plan, nothing written."""
    return _plan(store, reply, prepared, _embed_texts(store, reply), changed=set())


def _changed(store: Store, candidates: list[MemoryRecord]) -> set[str]:
    """Candidates that were updated or deleted since the model was shown them."""
    now = {r.id: r.updated_at for r in store.parts.ledger.get_many([c.id for c in candidates])}
    return {c.id for c in candidates if now.get(c.id) != c.updated_at}


def _unchanged(store: Store, pending: Sequence[MemoryRecord]) -> list[MemoryRecord] | None:
    """The pending messages as they are now, or None when any was edited, deleted or already
    replaced by its facts since inference read it (then the work is skipped, never doubled)."""
    now = {r.id: r for r in store.parts.ledger.get_many([p.id for p in pending])}
    current = []
    for seen in pending:
        record = now.get(seen.id)
        if record is None or not is_pending(record) or record.updated_at != seen.updated_at:
            return None
        current.append(record)
    return current


async def infer(
    engine: Engine,
    messages: list[Message],
    scope: Scope,
    metadata: dict[str, Any],
    retire: Sequence[MemoryRecord] = (),
    deadline: float | None = None,
) -> Plan:
    """Prepare, ask, apply; planned again when candidates changed during the model call.
    Raises a MODEL_FAILURES error when no model answers, and ``ModelOverdue`` when it has not
    answered by ``deadline`` (``loop.time()``)."""
    store, workers = engine.store, engine.workers
    exclude = {r.id for r in retire}
    for attempt in range(REPLANS + 1):
        prepared = await workers.read(prepare, store, messages, scope, metadata, exclude)
        reply = await _answer(workers.model(ask, store, prepared), deadline)
        plan = await engine.write(apply, store, prepared, reply, retire, attempt == REPLANS)
        if plan is not None:
            return plan
        log.info("candidate memories changed during the model call; planning again")
    raise AssertionError("unreachable: the last attempt always applies")


async def _answer(asking: Coroutine[Any, Any, InferenceReply], deadline: float | None) -> InferenceReply:
    """The model's reply; ``ModelOverdue`` past ``deadline``. Only this wait is cut short: the
    model's thread finishes on its own and its late reply is dropped; no write is interrupted."""
    if deadline is None:
        return await asking
    task = asyncio.ensure_future(asking)
    done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
    if not done:
        task.cancel()
        raise ModelOverdue
    return task.result()
