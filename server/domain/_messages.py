"""Turning what callers pass to ``add`` into checked messages."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import memorch.domain._validation as validation
from memorch.errors import ValidationError

ROLES = {"user", "assistant", "system", "tool"}
_SPACE = re.compile(r"\s+")
# Sentence punctuation that does not sit between two letters or digits: "peanuts." and
# "Hi, Sam!" lose theirs, while "10:00", "3.5" and "don't" keep it. Signs and symbols (-5, +1,
# $5, 50%) always stay: they change what is said.
_SENTENCE_MARKS = "[.,!?;:\"'“”‘’«»()\\[\\]{}…]+"  # noqa: RUF001 - curly quotes are meant
_LOOSE_PUNCTUATION = re.compile(rf"(?<![^\W_]){_SENTENCE_MARKS}|{_SENTENCE_MARKS}(?![^\W_])")


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    name: str | None = None
    timestamp: str | None = None  # when it was said, if the caller knows (helps resolve "yesterday")


def normalized_text(text: str) -> str:
    """What makes two texts a repeat of each other: case, width, white space and punctuation
    outside words do not count."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _LOOSE_PUNCTUATION.sub(" ", folded)).strip()


def normalized_hash(text: str) -> str:
    """The memory ``hash``: a repeat (see ``normalized_text``) has the same hash."""
    return hashlib.md5(normalized_text(text).encode("utf-8")).hexdigest()


def parse_messages(messages: Any, max_bytes: int) -> list[Message]:
    """Accept a string, one ``{"role", "content"}`` dict, or a list of them."""
    if isinstance(messages, str):  # what the add_memory tool's `text` becomes
        return [Message("user", validation.text(messages, max_bytes, "text"))]
    if isinstance(messages, dict):
        messages = [messages]
    if isinstance(messages, list) and not messages:
        raise ValidationError(
            "messages is empty: nothing to remember",
            error_code="INVALID_MESSAGES",
            suggestion='pass at least one message ({"role": "user", "content": "..."}), or the text to remember',
        )
    if not isinstance(messages, list):
        raise ValidationError(
            "messages must be a string, a {role, content} object, or a list of them",
            error_code="INVALID_MESSAGES",
            # Not text="...": the library's add takes the text as its first argument (a TypeError).
            suggestion='pass the text to remember, or messages as [{"role": "user", "content": "..."}]',
        )
    return [_message(item, i, max_bytes) for i, item in enumerate(messages)]


def _message(item: Any, index: int, max_bytes: int) -> Message:
    if not isinstance(item, dict):
        raise ValidationError(
            f"messages[{index}] must be an object with role and content",
            error_code="INVALID_MESSAGES",
            suggestion='pass messages=[{"role": "user", "content": "..."}]',
        )
    role = item.get("role", "user")
    if role not in ROLES:
        raise ValidationError(
            f"messages[{index}].role must be one of {sorted(ROLES)}",
            error_code="INVALID_MESSAGES",
            suggestion=f"set messages[{index}].role to one of {', '.join(sorted(ROLES))}, or omit it (user)",
        )
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise ValidationError(
            f"messages[{index}].name must be a string",
            error_code="INVALID_MESSAGES",
            suggestion=f"pass messages[{index}].name as a string, or omit it",
        )
    content = validation.text(_joined_parts(item.get("content"), index), max_bytes, f"messages[{index}].content")
    timestamp = item.get("timestamp", item.get("created_at"))
    return Message(role, content, name, str(timestamp) if timestamp is not None else None)


def _joined_parts(content: Any, index: int) -> Any:
    """OpenAI-style content parts (``[{"type": "text", "text": "..."}]``, as chat clients and SDKs
    send them) as one text, the parts a line each; anything else is left to the text check. A
    part that is not text (an image) is refused: dropping it would store less than was said."""
    if not isinstance(content, list):
        return content
    texts = []
    for number, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise ValidationError(
                f"messages[{index}].content[{number}] is not a text part ({kind!r}): only text is remembered",
                error_code="INVALID_MESSAGES",
                suggestion='pass the content as a string, or its text parts only: [{"type": "text", "text": "..."}]',
            )
    return "\n".join(texts)
