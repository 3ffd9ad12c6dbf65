"""Prompts and reply schemas for the single inference call.

One call does what other memory servers spread over two to five: extract facts, reconcile
them with the candidate memories (ids shown as small integers so the model cannot invent
UUIDs), and, with the graph on, name the entities and relations each fact states.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memorch.models._structured import JSON_STRING_CHAR
from memorch.models._wire import LOCAL_MAX_ITEMS, LOCAL_ONLY

log = logging.getLogger("memorch.prompts")

EXTRACTION_RULES = """You maintain the long-term memory an AI assistant keeps about the people it talks with.

Read the conversation and pick out the durable facts worth knowing in a later conversation:
personal details, preferences and dislikes, relationships, plans and commitments, health,
work, possessions, opinions, and events with their dates. Leave out greetings, small talk,
questions without an answer, and anything that only matters right now. Write each fact as one
short self-contained sentence that names who it is about ("Alice is allergic to peanuts"; use
"User" when no name is known), in the language of the conversation. Replace relative dates
("yesterday", "last Friday", "next month") with absolute ones, using the date of the message
or today's date."""

RECONCILE_RULES = """Then decide, for each fact, what to do with the memories already stored
(EXISTING MEMORIES, each with a number):
- "ADD": the fact is new. Give "text".
- "UPDATE": the fact changes or adds detail to memory number "id". Give "id" and "text", the
  new full text of that memory (keep what is still true of the old one).
- "DELETE": the conversation says memory "id" is no longer true and it has no replacement.
  Give "id" and "reason".
- "NONE": memory "id" already says it. Give "id".
Use only the numbers listed under EXISTING MEMORIES. When nothing is worth remembering,
reply with an empty "memory" list."""

GRAPH_RULES = """Also list the relations each fact states between named things, in "relations":
{"fact": <position of the fact in your "memory" list, from 0>, "source": "...",
"source_type": "person|place|organization|thing|event|concept", "relationship": "lives_in",
"destination": "...", "destination_type": "..."}. Use the names as written (full names when
known), relationship names in lower snake_case, and "User" for the speaker when unnamed. When a
name refers to one of the KNOWN ENTITIES, write it exactly as listed there."""

REPLY_SHAPE = """Reply with only a JSON object, no prose:
{"memory": [{"event": "ADD", "text": "..."}, {"event": "UPDATE", "id": 0, "text": "..."},
{"event": "DELETE", "id": 1, "reason": "..."}, {"event": "NONE", "id": 2}]%s}"""

# The compact variant (MEMORCH_LLM_PROMPT, or a small context window): the same contract in
# about a third of the tokens, for small models that lose the thread of a long system prompt.
COMPACT_RULES = """Extract durable facts about the people in the conversation: personal details,
preferences, relationships, plans, health, work, possessions, dated events. One short sentence per
fact, naming who it is about ("User" if unnamed). Skip greetings, small talk and questions.
For each fact: "ADD" with "text" if new; "UPDATE" with "id" and the new "text" if it changes
EXISTING MEMORY "id"; "DELETE" with "id" if that memory is no longer true; "NONE" with "id" if
it is already stored. Use only the listed ids. Nothing to remember: an empty "memory" list."""

COMPACT_GRAPH_RULES = """List in "relations" what each fact says links two named things:
{"fact": <its position in "memory">, "source": "User", "source_type": "person",
"relationship": "lives_in", "destination": "Lisbon", "destination_type": "place"}."""

COMPACT_CANDIDATES = 10  # existing memories shown with the compact prompt

PROCEDURAL_RULES = """You keep the procedural memory of an AI agent. Summarize the agent's run
below so that the agent can continue or repeat the work later: the task, each step taken with
its key inputs and outcomes (keep exact values, names, paths and errors), the current state,
and what remains. Reply with only a JSON object: {"summary": "..."}"""


class Decision(BaseModel):
    """One decision. Each event names what it needs: a decision without it is invalid (and so
    gets the repair request), never silently dropped."""

    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    text: str | None = None
    id: int | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Decision:
        needs_text = self.event in ("ADD", "UPDATE")
        # A text without a letter or digit ("...", "-") says nothing: SmolLM2-135M under a grammar
        # answered ADD "..." and it was stored as a memory.
        if needs_text and not any(c.isalnum() for c in self.text or ""):
            raise ValueError(f'an {self.event} decision needs a "text" that says something (letters or digits)')
        if self.event != "ADD" and self.id is None:
            raise ValueError(f'a {self.event} decision needs the "id" of an EXISTING MEMORY')
        return self


class ExtractedRelation(BaseModel):
    fact: int | None = None
    source: str
    source_type: str | None = None
    relationship: str
    destination: str
    destination_type: str | None = None


class InferenceReply(BaseModel):
    """The inference reply. Strict: ``memory`` is required (an empty list is an answer, a
    missing one is not), and an unknown top-level key (``facts``, ``memories``...) makes the
    reply invalid instead of reading it as "nothing to remember". Two near-misses are
    unambiguous and accepted, with a warning: a bare decision object and a bare list of
    decisions. ``relations`` is asked for only with the graph on."""

    model_config = ConfigDict(extra="forbid")

    memory: list[Decision]
    relations: list[ExtractedRelation] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _near_misses(cls, data: Any) -> Any:
        if isinstance(data, list):
            log.warning('the model replied with a bare list of %d decisions; read as {"memory": [...]}', len(data))
            return {"memory": data}
        if isinstance(data, dict) and "memory" not in data and "event" in data:
            log.warning('the model replied with a bare decision object; read as {"memory": [it]}')
            return {"memory": [data]}
        return data


class ProceduralReply(BaseModel):
    summary: str


ENTITY_TYPES = ["person", "place", "organization", "thing", "event", "concept"]


# What a grammar-enforcing local server is also told of each field (``LOCAL_ONLY``): a fact's
# text starts with something other than a space or punctuation (SmolLM2-135M answered "..." and
# "-"), entity names hold no JSON punctuation (it wrote 'Tofu}, {"' into them), relationship
# names no spaces, and every string has a length, so that 12 facts and 8 relations fit the
# reply's token budget (a reply cut by the budget is not JSON: 118-373 s lost per add).
TEXT_CHARS = 240
TEXT_PATTERN = r'^[^ \t\n\r.,;:!?*#_"\\()\[\]{}<>/|~-]' + JSON_STRING_CHAR + f"{{0,{TEXT_CHARS - 1}}}$"
NAME_PATTERN = r'^[^{}\[\]":\\\n]{1,60}$'
RELATIONSHIP_PATTERN = r'^[^ \t\n\r{}\[\]":,.\\]{1,40}$'
LOCAL_MAX_RELATIONS = 8
COMPACT_MAX_ITEMS = 8


def _strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _local(field: dict[str, Any], **constraints: Any) -> dict[str, Any]:
    return {**field, LOCAL_ONLY: constraints}


def _decision_variant(event: str, offered: int, *fields: str) -> dict[str, Any]:
    kinds = {
        "text": _local({"type": "string"}, pattern=TEXT_PATTERN),
        "id": _local({"type": "integer"}, enum=list(range(offered))),
        "reason": _local({"type": "string"}, maxLength=120),
    }
    return _strict_object({"event": {"type": "string", "enum": [event]}, **{f: kinds[f] for f in fields}})


def _relation(facts: int) -> dict[str, Any]:
    kind = {"type": "string", "enum": ENTITY_TYPES}
    name = _local({"type": "string"}, pattern=NAME_PATTERN)
    return _strict_object(
        {
            "fact": _local({"type": "integer"}, enum=list(range(facts))),
            "source": name,
            "source_type": kind,
            "relationship": _local({"type": "string"}, pattern=RELATIONSHIP_PATTERN),
            "destination": name,
            "destination_type": kind,
        }
    )


def reply_schema(graph: bool, offered: int, compact: bool = False) -> dict[str, Any]:
    """The JSON schema sent with the inference request: one variant per event, each with exactly
    the fields its event needs (so a grammar-constrained small model cannot write an ADD without
    text), no additional properties, and a bound on list lengths for small models. ``offered``:
    how many EXISTING MEMORIES the prompt numbers; a local grammar allows only those ids, and no
    UPDATE, DELETE or NONE when there are none."""
    variants = [_decision_variant("ADD", offered, "text")]
    if offered:
        variants += [
            _decision_variant("UPDATE", offered, "id", "text"),
            _decision_variant("DELETE", offered, "id", "reason"),
            _decision_variant("NONE", offered, "id"),
        ]
    facts = COMPACT_MAX_ITEMS if compact else LOCAL_MAX_ITEMS
    properties: dict[str, Any] = {"memory": {"type": "array", "items": {"anyOf": variants}}}
    if graph:
        relations = {"type": "array", "items": _relation(facts)}
        properties["relations"] = _local(relations, maxItems=LOCAL_MAX_RELATIONS)
    if compact:  # a small model under a grammar can repeat an item until its tokens run out
        for array in properties.values():
            array["maxItems"] = COMPACT_MAX_ITEMS
    return _strict_object(properties)


def inference_messages(
    conversation: list[tuple[str, str, str | None]],
    candidates: list[str],
    today: str,
    graph: bool,
    custom_extraction: str | None = None,
    custom_update: str | None = None,
    entities: list[str] | None = None,
    compact: bool = False,
) -> list[dict[str, str]]:
    """``conversation`` holds (role, content, date or None); ``candidates`` are memory texts;
    ``entities`` the names the graph already uses near them; ``compact``: the short prompt."""
    if compact:
        parts = [custom_extraction or COMPACT_RULES]
        parts += [custom_update] if custom_update else []
        parts += [COMPACT_GRAPH_RULES] if graph else []
        candidates = candidates[:COMPACT_CANDIDATES]
    else:
        parts = [custom_extraction or EXTRACTION_RULES, custom_update or RECONCILE_RULES]
        parts += [GRAPH_RULES] if graph else []
    parts.append(REPLY_SHAPE % (', "relations": [...]' if graph else ""))
    existing = "\n".join(f"{i}: {text}" for i, text in enumerate(candidates)) or "(none)"
    lines = [f"[{date}] {role}: {content}" if date else f"{role}: {content}" for role, content, date in conversation]
    known = f"KNOWN ENTITIES: {', '.join(entities)}\n\n" if graph and entities else ""
    user = f"Today's date: {today}\n\nEXISTING MEMORIES:\n{existing}\n\n{known}CONVERSATION:\n" + "\n".join(lines)
    return [{"role": "system", "content": "\n\n".join(parts)}, {"role": "user", "content": user}]


def procedural_messages(conversation: list[tuple[str, str, str | None]], today: str) -> list[dict[str, str]]:
    run = json.dumps([{"role": r, "content": c} for r, c, _ in conversation], ensure_ascii=False)
    return [
        {"role": "system", "content": PROCEDURAL_RULES},
        {"role": "user", "content": f"Today's date: {today}\n\nAGENT RUN:\n{run}"},
    ]
