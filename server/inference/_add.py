"""The add paths that involve a model: infer and apply (``_plan``), a procedural summary, a dry
run, and what happens when no model answers (``degrade``: the messages are kept as said, for
``reprocess``) or when inference runs in the background (``defer``: stored now as one pending
batch, inferred by ``_pending.BackgroundInference``)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from memorch.domain._messages import Message
from memorch.domain._records import new_record, utc_now
from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.errors import MemoryError
from memorch.inference._plan import (
    NOTHING_TO_REMEMBER,
    SUMMARY,
    ModelOverdue,
    Plan,
    ask,
    conversation,
    infer,
    prepare,
    preview,
    today,
)
from memorch.inference._prompts import ProceduralReply, procedural_messages
from memorch.models._llm import MODEL_FAILURES, LLMOutputError
from memorch.results import AddResult, event
from memorch.storage.base import Change, Scope

if TYPE_CHECKING:
    from memorch.engine._engine import Engine
    from memorch.engine._store import Store

log = logging.getLogger("memorch.pending")
PENDING_REASON = "stored as said; the model's facts replace it shortly (background inference)"
# Background inference off (a pending message is then one whose model was too slow): nothing in
# this process will come back to it.
WAITING_REASON = "stored as said; `memorch reprocess` replaces it with the model's facts (background inference is off)"


def _marked(metadata: dict[str, Any], **marks: Any) -> dict[str, Any]:
    """``metadata`` with ``marks`` added to its reserved ``_memorch`` object."""
    return {**metadata, RESERVED_METADATA_KEY: {**metadata.get(RESERVED_METADATA_KEY, {}), **marks}}


async def degrade(
    engine: Engine, messages: list[Message], scope: Scope, metadata: dict[str, Any], exc: MemoryError
) -> AddResult:
    """No model could answer: keep the messages as said, for ``reprocess``."""
    log.warning("no model could answer; storing verbatim for `memorch reprocess`: %s", exc)
    code = exc.error_code
    marked = _marked(metadata, pending_inference=True, error_code=code)
    result = await engine.add_verbatim(messages, scope, marked, _said(messages))
    for item in result["results"]:  # each event says why too: "(no inference)" read as no LLM set
        if item["event"] == "ADD":
            item["reason"] = f"stored as said: the model gave no usable answer ({code}); reprocess extracts its facts"
    return {**result, "degraded": True, "reason": str(exc), "model_error": exc.to_dict()}


async def defer(
    engine: Engine, messages: list[Message], scope: Scope, metadata: dict[str, Any], failing: str | None = None
) -> AddResult:
    """Background inference: store the messages as one pending batch and acknowledge. ``failing``:
    the model's last failure in the background, said rather than "shortly" (a newcomer's trial:
    adds kept promising facts while nothing listened at the API base)."""
    marked = _marked(metadata, pending_inference=True, batch=str(uuid.uuid4()))
    result = await engine.add_verbatim(messages, scope, marked, _said(messages))
    background = engine.config.background_enabled
    reason = PENDING_REASON if background else WAITING_REASON
    if background and failing is not None:
        reason = f"stored as said; the model's facts replace it once the model answers (its last failure: {failing})"
    for item in result["results"]:
        if item["event"] == "ADD":
            item["reason"] = reason
    later = "facts are extracted in the background" if background else "`memorch reprocess` extracts the facts"
    return {
        **result,
        "pending": True,
        "reason": f"acknowledged: the messages are stored and searchable; {later} (an id's history shows the outcome)",
    }


def _deadline(engine: Engine) -> float | None:
    timeout = engine.config.llm_add_timeout
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


async def overdue(engine: Engine, messages: list[Message], scope: Scope, metadata: dict[str, Any]) -> AddResult:
    """The model did not answer within MEMORCH_LLM_ADD_TIMEOUT: store the messages as one
    pending batch, as background inference does, instead of keeping the caller waiting."""
    timeout = engine.config.llm_add_timeout
    log.warning("the model did not answer within %s s; the messages wait for inference", timeout)
    result = await defer(engine, messages, scope, metadata)
    return {
        **result,
        "reason": f"the model did not answer within {timeout:g} s (MEMORCH_LLM_ADD_TIMEOUT): the messages are "
        "stored as said and searchable, marked pending; "
        + ("background inference" if engine.config.background_enabled else "`memorch reprocess`")
        + " extracts the facts",
    }


def _said(messages: list[Message]) -> list[dict[str, Any]]:
    """Per stored message: who said it and when, so later inference sees the conversation."""
    said = [m for m in messages if m.role != "system"]
    return [
        {"role": m.role, "part": i, **({"said_at": m.timestamp} if m.timestamp else {})} for i, m in enumerate(said)
    ]


async def _dry_run(engine: Engine, messages: list[Message], scope: Scope, metadata: dict[str, Any]) -> Plan:
    store, workers = engine.store, engine.workers
    prepared = await workers.read(prepare, store, messages, scope, metadata, set())
    reply = await workers.model(ask, store, prepared)
    return await workers.read(preview, store, prepared, reply)


def _summarize(store: Store, messages: list[Message], metadata: dict[str, Any]) -> ProceduralReply:
    prompt = procedural_messages(conversation(messages, metadata), today())
    return store.parts.llm.structured(prompt, ProceduralReply)


def _store_summary(store: Store, summary: str, scope: Scope, metadata: dict[str, Any], dry_run: bool) -> Plan:
    vector = store.parts.embedder.embed([summary])[0]
    record = new_record(summary, vector, scope, {**metadata, "memory_type": "procedural_memory"}, utc_now())
    if not dry_run:
        with store.writing():
            store.commit([Change("ADD", record)])
    return Plan(results=[event("ADD", record, reason=SUMMARY)], changes=[Change("ADD", record)])


async def _procedural(
    engine: Engine, messages: list[Message], scope: Scope, metadata: dict[str, Any], dry_run: bool
) -> Plan:
    reply = await engine.workers.model(_summarize, engine.store, messages, metadata)
    summary = reply.summary.strip()
    if not summary:
        raise LLMOutputError("the model returned an empty summary")
    run = engine.workers.read if dry_run else engine.write
    return await run(_store_summary, engine.store, summary, scope, metadata, dry_run)


async def infer_and_apply(
    engine: Engine,
    messages: list[Message],
    scope: Scope,
    metadata: dict[str, Any],
    *,
    procedural: bool,
    dry_run: bool = False,
) -> AddResult:
    """``add`` with inference; degrades to verbatim storage when no model can answer (a dry
    run reports the failure instead, as it must not store anything)."""
    try:
        if procedural:
            plan = await _procedural(engine, messages, scope, metadata, dry_run)
        elif dry_run:
            plan = await _dry_run(engine, messages, scope, metadata)
        else:
            plan = await infer(engine, messages, scope, metadata, deadline=_deadline(engine))
    except MODEL_FAILURES as exc:
        if dry_run:
            raise
        return await degrade(engine, messages, scope, metadata, exc)
    except ModelOverdue:
        return await overdue(engine, messages, scope, metadata)
    result: AddResult = {"results": plan.results}
    if engine.config.graph_enabled and not procedural:
        result["relations"] = plan.relations_report()  # type: ignore[typeddict-item]
    if not plan.results:  # an empty decision list: allowed (small talk), but said so
        result["reason"] = NOTHING_TO_REMEMBER
    return result
