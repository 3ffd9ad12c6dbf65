"""What a model's reply holds: its JSON, without the reasoning a model may write first and the
code fences or prose it may wrap the answer in (``LLMClient`` parses every reply through here)."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

M = TypeVar("M", bound=BaseModel)

# Reasoning a model wrote before its answer ("thinking"): closed blocks, and the end of a block a
# chat template opened in the prompt.
REASONING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
REASONING_END = re.compile(r"^.*</(?:think|thinking|reasoning)>", re.DOTALL | re.IGNORECASE)


def extract_json(text: str) -> Any:
    """The JSON value in a reply that may wrap it in code fences or prose: the whole reply
    when it parses, else the first object, or the first list of objects, found in the text."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(stripped) if ch in "{["):
        try:
            value, _ = decoder.raw_decode(stripped[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return value  # a bare list of objects; "[1]" or "[note]" in prose is skipped
    raise ValueError("no JSON object found in the reply")


def strip_reasoning(text: str) -> str:
    """The reply without the reasoning a model may write before its answer."""
    return REASONING_END.sub("", REASONING.sub("", text))


def parse_reply(text: str | None, schema: type[M]) -> M:
    answer = strip_reasoning(text or "").strip()
    if not answer:
        raise ValueError("the reply was empty")
    return schema.model_validate(extract_json(answer))


def reply_json(text: str | None) -> Any:
    """The JSON value of a reply (reasoning stripped); ``ValueError`` when it has none."""
    return extract_json(strip_reasoning(text or ""))


def fields_wrong(exc: PydanticValidationError, shown: int = 3) -> str:
    """``missing 'memory'; unexpected 'facts'``: the first few fields a reply got wrong."""
    words = {"missing": "missing", "extra_forbidden": "unexpected"}
    said = [f"{words.get(e['type'], 'wrong')} {'.'.join(map(str, e['loc'])) or 'value'!r}" for e in exc.errors()]
    return "; ".join(said[:shown]) + ("; …" if len(said) > shown else "")
