"""``add(infer=True)``: one LLM call extracts facts and reconciles them with what is known.

Flow: embed the new messages → retrieve candidate memories of the scope → one structured call
(facts + ADD/UPDATE/DELETE/NONE against candidates numbered 0..n-1) → embed the new texts in one
batch → one ledger transaction. When no model can answer, the messages are stored verbatim,
marked ``_memorch.pending_inference``, and ``reprocess`` runs inference on them later. Only
model failures (``llm.MODEL_FAILURES``) degrade; a bug or bad input propagates to the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from memorch.storage.base import Change, MemoryRecord, Scope

from .errors import ConfigurationError
from .llm import MODEL_FAILURES, LLMOutputError
from .messages import Message
from .prompts import InferenceReply, ProceduralReply, inference_messages, procedural_messages
from .records import deletion, new_record, replaced, utc_now
from .validation import RESERVED_METADATA_KEY

if TYPE_CHECKING:
    from .orchestrator import AsyncMemory

log = logging.getLogger("memorch.inference")
MAX_CANDIDATES = 30
NOTHING_TO_REMEMBER = (
    "the model found nothing worth remembering in these messages (small talk or questions); nothing was stored"
)


@dataclass
class Plan:
    results: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    decisions: int = 0  # how many decisions the model returned
    ignored: int = 0  # decisions naming ids the model invented
    removed_relations: list[dict[str, Any]] = field(default_factory=list)

    def relations_report(self) -> dict[str, list[dict[str, Any]]]:
        def short(rel: dict[str, Any]) -> dict[str, Any]:
            return {k: rel[k] for k in ("source", "relationship", "destination")}

        added = [short(r) for c in self.changes if c.kind != "DELETE" for r in (c.relations or ())]
        return {"added_entities": added, "deleted_entities": [short(r) for r in self.removed_relations]}


def _conversation(messages: list[Message], metadata: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    default_date = metadata.get("date") or metadata.get("timestamp")
    return [(m.role, m.content, m.timestamp or (str(default_date) if default_date else None)) for m in messages]


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d (%A)")


def _candidates(memory: AsyncMemory, vectors: Any, scope: Scope, exclude: set[str]) -> list[MemoryRecord]:
    """Top memories of the scope for any of the new messages, best first, deduplicated."""
    scores: dict[str, float] = {}
    for vector in vectors:
        for hit in memory.components.vectors.search(vector, scope, memory.config.candidate_limit):
            if hit.id not in exclude:
                scores[hit.id] = max(scores.get(hit.id, 0.0), hit.score)
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)[:MAX_CANDIDATES]
    return memory.components.ledger.get_many(ranked)


def _candidate_entities(memory: AsyncMemory, candidates: list[MemoryRecord], limit: int = 50) -> list[str]:
    """Entity names the candidate memories mention, so the model can reuse them."""
    if not memory.config.graph_enabled or not candidates:
        return []
    relations = memory.components.ledger.relations_for([c.id for c in candidates])
    names = dict.fromkeys(n for rels in relations.values() for r in rels for n in (r["source"], r["destination"]))
    return list(names)[:limit]


def _relations_by_fact(memory: AsyncMemory, reply: InferenceReply, scope: Scope) -> dict[int, tuple[dict, ...]]:
    """The reply's relations, resolved to the scope's entities, grouped by fact position."""
    if not memory.config.graph_enabled or not reply.relations:
        return {}
    from .graph_memory import EntityResolver

    resolver = EntityResolver(memory.components, scope, memory.config.entity_merge_threshold)
    grouped: dict[int, list[dict]] = {}
    for raw in reply.relations:
        if raw.fact is None or not 0 <= raw.fact < len(reply.memory):
            log.warning("ignored a relation that names no fact: %s", raw)
            continue
        relation = resolver.relation(raw)
        if relation is not None:
            grouped.setdefault(raw.fact, []).append(relation)
    return {k: tuple(v) for k, v in grouped.items()}


def _plan(
    memory: AsyncMemory, reply: InferenceReply, candidates: list[MemoryRecord], scope: Scope, metadata: dict[str, Any]
) -> Plan:
    """Turn the model's decisions into ledger changes; ids it invented are ignored."""
    plan = Plan(decisions=len(reply.memory))
    max_bytes = memory.config.max_text_bytes
    texts = [d for d in reply.memory if d.event in ("ADD", "UPDATE") and d.text and d.text.strip()]
    wanted = [d for d in texts if len(d.text.encode()) <= max_bytes]
    if len(wanted) < len(texts):
        log.warning("ignored %d decisions whose text is over %d bytes", len(texts) - len(wanted), max_bytes)
    vectors = memory.components.embedder.embed([d.text.strip() for d in wanted]) if wanted else []
    vector_of = {id(d): v for d, v in zip(wanted, vectors, strict=True)}
    relations = _relations_by_fact(memory, reply, scope)
    graph_on = memory.config.graph_enabled
    touched: set[str] = set()
    now = utc_now()
    for position, decision in enumerate(reply.memory):
        rels = relations.get(position, ()) if graph_on else None
        if decision.event == "ADD":
            if id(decision) in vector_of:
                _add(memory, plan, decision.text.strip(), vector_of[id(decision)], scope, metadata, now, rels)
            continue
        target = candidates[decision.id] if decision.id is not None and 0 <= decision.id < len(candidates) else None
        if target is None:
            log.warning("ignored a %s decision for id %r, which was not offered", decision.event, decision.id)
            plan.ignored += 1
            continue
        if target.id in touched:
            continue
        if decision.event == "NONE":
            plan.results.append({"id": target.id, "memory": target.memory, "event": "NONE"})
        elif decision.event == "DELETE":
            touched.add(target.id)
            plan.changes.append(deletion(target))
            plan.results.append({"id": target.id, "memory": target.memory, "event": "DELETE"})
        elif id(decision) in vector_of:
            touched.add(target.id)
            text = decision.text.strip()
            merged = {**target.metadata, **metadata}
            plan.changes.append(
                Change(
                    "UPDATE",
                    replaced(target, text, vector_of[id(decision)], merged),
                    old_memory=target.memory,
                    relations=rels,
                )
            )
            plan.results.append({"id": target.id, "memory": text, "event": "UPDATE", "previous_memory": target.memory})
    if graph_on and touched:
        previous = memory.components.ledger.relations_for(sorted(touched))
        plan.removed_relations = [r for rels in previous.values() for r in rels]
    if plan.decisions and not plan.results:
        # Every decision was unusable (ids that were not offered, over-long texts): reading
        # that as "nothing to remember" would drop what the user said.
        raise LLMOutputError(
            f"none of the model's {plan.decisions} decisions could be applied (ids that were not offered)",
            suggestion="the messages were kept verbatim for `memorch reprocess`; a model that follows "
            "JSON instructions (MEMORCH_LLM_MODEL) avoids this",
        )
    return plan


def _add(
    memory: AsyncMemory,
    plan: Plan,
    text: str,
    vector: Any,
    scope: Scope,
    metadata: dict[str, Any],
    now: str,
    relations: tuple[dict, ...] | None,
) -> None:
    duplicate = memory.find_repeat(text, scope, plan.changes)
    if duplicate is not None:
        plan.results.append({"id": duplicate.id, "memory": duplicate.memory, "event": "NONE"})
        return
    record = new_record(text, vector, scope, metadata, now)
    plan.changes.append(Change("ADD", record, relations=relations))
    plan.results.append({"id": record.id, "memory": text, "event": "ADD"})


async def _infer(
    memory: AsyncMemory, messages: list[Message], scope: Scope, metadata: dict[str, Any], exclude: set[str]
) -> Plan:
    """The one model call and its plan; raises a MODEL_FAILURES error when no model answers."""
    said = [m for m in messages if m.role != "system"]
    vectors = await memory._run(memory.components.embedder.embed, [m.content for m in said])
    candidates = await memory._run(_candidates, memory, vectors, scope, exclude)
    prompt = inference_messages(
        _conversation(messages, metadata),
        [c.memory for c in candidates],
        _today(),
        graph=memory.config.graph_enabled,
        custom_extraction=memory.config.custom_fact_extraction_prompt,
        custom_update=memory.config.custom_update_memory_prompt,
        entities=await memory._run(_candidate_entities, memory, candidates),
    )
    reply = await memory._run(memory.components.llm.structured, prompt, InferenceReply)
    return await memory._run(_plan, memory, reply, candidates, scope, metadata)


async def _procedural(memory: AsyncMemory, messages: list[Message], scope: Scope, metadata: dict[str, Any]) -> Plan:
    prompt = procedural_messages(_conversation(messages, metadata), _today())
    reply = await memory._run(memory.components.llm.structured, prompt, ProceduralReply)
    summary = reply.summary.strip()
    if not summary:
        raise LLMOutputError("the model returned an empty summary")
    vector = (await memory._run(memory.components.embedder.embed, [summary]))[0]
    record = new_record(summary, vector, scope, {**metadata, "memory_type": "procedural_memory"}, utc_now())
    return Plan(results=[{"id": record.id, "memory": summary, "event": "ADD"}], changes=[Change("ADD", record)])


async def infer_and_apply(
    memory: AsyncMemory, messages: list[Message], scope: Scope, metadata: dict[str, Any], *, procedural: bool
) -> dict[str, Any]:
    """``add`` with inference; degrades to verbatim storage when no model can answer."""
    async with memory._write_lock:
        await memory._ready()
        try:
            if procedural:
                plan = await _procedural(memory, messages, scope, metadata)
            else:
                plan = await _infer(memory, messages, scope, metadata, exclude=set())
        except MODEL_FAILURES as exc:
            return await _degrade(memory, messages, scope, metadata, exc)
        await memory._commit(plan.changes)
    result: dict[str, Any] = {"results": plan.results}
    if memory.config.graph_enabled and not procedural:
        result["relations"] = plan.relations_report()
    if not plan.results:  # an empty decision list: allowed (small talk), but said so
        result["reason"] = NOTHING_TO_REMEMBER
    return result


async def _degrade(
    memory: AsyncMemory, messages: list[Message], scope: Scope, metadata: dict[str, Any], exc: Exception
) -> dict[str, Any]:
    log.warning("no model could answer; storing verbatim for `memorch reprocess`: %s", exc)
    stored = [m for m in messages if m.role != "system"]
    marked = {
        **metadata,
        RESERVED_METADATA_KEY: {"pending_inference": True, "error_code": getattr(exc, "error_code", "UNKNOWN")},
    }
    result = await memory.store_verbatim_locked(stored, scope, marked)
    return {**result, "degraded": True, "reason": str(exc)}


async def reprocess_pending(memory: AsyncMemory, limit: int) -> dict[str, Any]:
    """Infer over verbatim-stored pending messages. Each is replaced in the same transaction
    that stores its facts, so a second run (or a crash and rerun) never processes it twice."""
    if not memory.config.llm_enabled:
        raise ConfigurationError(
            "reprocessing needs an LLM",
            error_code="NO_LLM",
            suggestion="set MEMORCH_LLM_MODEL (and MEMORCH_LLM_API_BASE if needed)",
        )
    pending = await memory._run(memory.components.ledger.pending_inference, limit)
    processed, failed, results = 0, 0, []
    for record in pending:
        async with memory._write_lock:
            current = await memory._run(memory.components.ledger.get, record.id)
            if current is None or not current.metadata.get(RESERVED_METADATA_KEY, {}).get("pending_inference"):
                continue  # another process got to it first
            await memory._ready()
            metadata = {k: v for k, v in current.metadata.items() if k != RESERVED_METADATA_KEY}
            try:
                plan = await _infer(
                    memory, [Message("user", current.memory)], current.scope, metadata, exclude={current.id}
                )
            except MODEL_FAILURES as exc:
                log.warning("reprocess of %s failed, left pending: %s", current.id, exc)
                failed += 1
                continue
            await memory._commit([*plan.changes, deletion(current)])
            processed += 1
            results.extend(plan.results)
    remaining = (await memory._run(memory.components.ledger.counts))["pending_inference"]
    return {"processed": processed, "failed": failed, "remaining": remaining, "results": results}
