"""Turning what callers pass to ``add`` into checked messages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from . import validation
from .errors import ValidationError

ROLES = {"user", "assistant", "system", "tool"}
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    name: str | None = None
    timestamp: str | None = None  # when it was said, if the caller knows (helps resolve "yesterday")


def normalized_hash(text: str) -> str:
    """The memory ``hash``: case and white space do not make a new memory."""
    return hashlib.md5(_SPACE.sub(" ", text.strip().casefold()).encode("utf-8")).hexdigest()


def parse_messages(messages: Any, max_bytes: int) -> list[Message]:
    """Accept a string, one ``{"role", "content"}`` dict, or a list of them."""
    if isinstance(messages, str):
        return [Message("user", validation.text(messages, max_bytes, "messages"))]
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        raise ValidationError(
            "messages must be a string, a {role, content} object, or a non-empty list of them",
            error_code="INVALID_MESSAGES",
            suggestion='pass text="..." or messages=[{"role": "user", "content": "..."}]',
        )
    return [_message(item, i, max_bytes) for i, item in enumerate(messages)]


def _message(item: Any, index: int, max_bytes: int) -> Message:
    if not isinstance(item, dict):
        raise ValidationError(
            f"messages[{index}] must be an object with role and content", error_code="INVALID_MESSAGES"
        )
    role = item.get("role", "user")
    if role not in ROLES:
        raise ValidationError(f"messages[{index}].role must be one of {sorted(ROLES)}", error_code="INVALID_MESSAGES")
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise ValidationError(f"messages[{index}].name must be a string", error_code="INVALID_MESSAGES")
    content = validation.text(item.get("content"), max_bytes, f"messages[{index}].content")
    timestamp = item.get("timestamp", item.get("created_at"))
    return Message(role, content, name, str(timestamp) if timestamp is not None else None)
