"""Input checks at the orchestrator's edge: each raises ValidationError and changes nothing."""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

from memorch.errors import ValidationError
from memorch.storage.base import Scope

MAX_SCOPE_ID_CHARS = 256
MAX_METADATA_BYTES = 64_000
MAX_LIMIT = 1000
RESERVED_METADATA_KEY = "_memorch"
# The years a moment (``created_at``, ``asked_at``) may name: a span counted from it ("999 years
# ago") stays inside what datetime can hold.
MIN_YEAR, MAX_YEAR = 1900, 9000


def memory_id(value: Any, name: str = "memory_id") -> str:
    """A canonical UUID string, or a ValidationError naming the operation that finds real ids."""
    where = "{memory_history}" if name == "event_id" else "{search_memories} or {list_memories}"
    code = "INVALID_EVENT_ID" if name == "event_id" else "INVALID_MEMORY_ID"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{name} must be a non-empty string", error_code=code, suggestion=f"use {where} to find the id"
        )
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ValidationError(
            f"{name} {value[:80]!r} is not {'an event' if name == 'event_id' else 'a memory'} id (ids are UUIDs)",
            error_code=code,
            details={name: value[:80]},
            suggestion=f"use {where} to find the id",
        ) from None


# What each text argument is for, so an error can say what to put there.
_TEXT_PURPOSE = {
    "text": "the fact to remember",
    "content": "the message text",
    "query": "what to look for",
    "entity": "the entity's name",
}


# Spaces, line and paragraph separators, controls, format characters, lone surrogates.
INVISIBLE = frozenset(("Zs", "Zl", "Zp", "Cc", "Cf", "Cs"))


def visible(value: str) -> bool:
    """Whether any character shows: not only spaces, controls and format characters (U+200B).
    A private-use sign shows; an unassigned code point only among the emoji and symbols
    (U+1F000-U+1FFFD: an emoji newer than Python's Unicode tables), never a noncharacter."""
    return any(_shows(c) for c in value)


def _shows(char: str) -> bool:
    category = unicodedata.category(char)
    if category != "Cn":
        return category not in INVISIBLE
    point = ord(char)
    return 0x1F000 <= point <= 0x1FFFD


def text(value: Any, max_bytes: int, field: str = "text") -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string", error_code="INVALID_TEXT", suggestion=f"pass {_purpose(field)} as a string"
        )
    stripped = value.strip()
    if not stripped or not visible(stripped):
        # Zero-width spaces alone embed near every query: a blank memory was the top hit of
        # unrelated searches (0.52 for "cat").
        raise ValidationError(
            f"{field} is empty" if not stripped else f"{field} has no visible characters (only invisible ones)",
            error_code="EMPTY_TEXT",
            details={"field": field},  # a surface names its own box for it (the web page)
            suggestion=f"pass {_purpose(field)} in '{field}'",
        )
    if "\x00" in stripped:
        raise ValidationError(
            f"{field} contains a NUL character",
            error_code="INVALID_TEXT",
            suggestion=f"remove the NUL characters (\\u0000) from '{field}'",
        )
    if _has_surrogate(stripped):
        raise ValidationError(
            f"{field} contains a lone UTF-16 surrogate, which is not text",
            error_code="INVALID_TEXT",
            suggestion=f"send '{field}' as valid Unicode (a surrogate pair for characters beyond U+FFFF)",
        )
    size = len(stripped.encode("utf-8"))
    if size > max_bytes:
        raise ValidationError(
            f"{field} is {size} bytes; the limit is {max_bytes} bytes (MEMORCH_MAX_TEXT_BYTES)",
            error_code="TEXT_TOO_LONG",
            details={"bytes": size, "limit": max_bytes},
            suggestion="split the text into smaller facts, or raise MEMORCH_MAX_TEXT_BYTES",
        )
    return stripped


def _purpose(field: str) -> str:
    return _TEXT_PURPOSE.get(field.rsplit(".", 1)[-1], "some text")


def _has_surrogate(value: str) -> bool:
    """A lone surrogate (a Python str can hold one; JSON transports refuse it) cannot be stored
    as UTF-8: found by tests/test_fuzz.py as an INTERNAL_ERROR (UnicodeEncodeError in SQLite)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def scope_id(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{name} must be a non-empty string",
            error_code="INVALID_SCOPE",
            suggestion=f"omit {name}, or pass a short name such as 'alice'",
        )
    if len(value) > MAX_SCOPE_ID_CHARS:
        raise ValidationError(
            f"{name} must be at most {MAX_SCOPE_ID_CHARS} characters",
            error_code="INVALID_SCOPE",
            details={"field": name, "length": len(value)},
            suggestion=f"omit {name}, or pass a short name such as 'alice'",
        )
    # Control and format characters (a zero-width space, a right-to-left override: "x\u202ey" shows
    # as "y" then "x") and spaces around it ("alice " is not "alice") make an id that looks like
    # another and finds nothing; a joiner or a flag's tags inside it are kept (``JOINERS``).
    # Surrogates too (fuzzer: an INTERNAL_ERROR from SQLite's UTF-8 encoding before this check).
    hidden = value != value.strip() or any(_hides(c) for c in value) or _has_surrogate(value)
    hidden = hidden or _is_format(value[0]) or (_is_format(value[-1]) and value[-1] != TAG_END)
    if hidden or not visible(value):
        raise ValidationError(
            f"{name} must be printable characters, with no space at either end",
            error_code="INVALID_SCOPE",
            details={"field": name, "value": ascii(value)[:80]},
            suggestion=f"omit {name}, or pass it as plain visible text such as 'alice' (no space at either end)",
        )
    return value


# Format characters an id may hold inside it: the zero-width non-joiner and joiner (Persian and
# Indic names, emoji sequences) and the tags of a subdivision flag (ending in CANCEL TAG).
JOINERS = frozenset(("\u200c", "\u200d"))
TAG_END = "\U000e007f"


def _is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def _hides(char: str) -> bool:
    """A control character, or a format character other than a joiner or a flag's tag."""
    if unicodedata.category(char) == "Cc":
        return True
    return _is_format(char) and char not in JOINERS and not "\U000e0020" <= char <= TAG_END


LAYERS = ("project", "global")


class ScopeIds(TypedDict, total=False):
    """Whose memories a call works on: any of the three ids (``Scope``: the scope rule)."""

    user_id: str | None
    agent_id: str | None
    run_id: str | None


class ScopeArgs(ScopeIds, total=False):
    """The ids and the project layer a call works in (docs/projects.md)."""

    project: str | None


SCOPE_IDS: frozenset[str] = ScopeIds.__optional_keys__
SCOPE_ARGS: frozenset[str] = ScopeArgs.__optional_keys__


def scope(
    args: Mapping[str, Any],
    *,
    required: bool,
    default_project: str | None = None,
    layer: Any = None,
    allowed: frozenset[str] = SCOPE_ARGS,
) -> Scope:
    """The scope named by a call's ``user_id``/``agent_id``/``run_id``/``project`` keywords;
    ``required`` refuses an empty one (scope-wide operations). ``project``: the project layer it
    sees besides the global one (``default_project`` when not given); ``layer``: where an add
    writes ("global", or "project", the default when there is a project). ``allowed``: the
    keywords the calling method takes (``SCOPE_IDS`` for one typed with ``ScopeIds``)."""
    unknown = sorted(set(args) - allowed)
    if unknown:  # what Python says of a misspelt keyword, as these keywords arrive as ``**``
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    given = args.get("project")
    if isinstance(given, str) and given.strip().lower() == "auto":
        # "auto" is detected once, where the process starts (the setting): a call's project
        # would otherwise be a project literally named "auto".
        raise ValidationError(
            "project 'auto' is for the setting, not a call: a call names its project",
            error_code="INVALID_SCOPE",
            suggestion="pass the project's name (e.g. github.com/acme/app), or set MEMORCH_PROJECT=auto "
            "(Memory(project='auto')) to detect it from the repository",
        )
    project = given or default_project
    checked = Scope(
        scope_id(args.get("user_id"), "user_id"),
        scope_id(args.get("agent_id"), "agent_id"),
        scope_id(args.get("run_id"), "run_id"),
        scope_id(project, "project"),
        global_writes=_global_layer(layer, project),
    )
    if required and checked.is_empty():
        raise ValidationError(
            "at least one of user_id, agent_id or run_id is required",
            error_code="SCOPE_REQUIRED",
            suggestion="pass user_id (servers and the CLI default it to MEMORCH_USER_ID)",
        )
    return checked


def _global_layer(layer: Any, project: Any) -> bool:
    """Whether an add goes to the global layer although the scope has a project."""
    if layer is None:
        return False
    if layer not in LAYERS:
        raise ValidationError(
            f"layer must be 'project' or 'global', not {str(layer)[:40]!r}",
            error_code="INVALID_LAYER",
            suggestion="omit layer (this project's layer when there is one), or pass 'global' for a fact "
            "that holds in every project",
        )
    if layer == "project" and project is None:
        raise ValidationError(
            "there is no project layer: no project is configured",
            error_code="PROJECT_REQUIRED",
            suggestion="omit layer (the memory goes to the global layer), or start the server with "
            "--project auto (or MEMORCH_PROJECT)",
        )
    return layer == "global"


def metadata(value: Any, allow_reserved: bool = False) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(
            f"metadata must be a JSON object, not {type(value).__name__}",
            error_code="INVALID_METADATA",
            suggestion='pass metadata like {"category": "health"}',
        )
    if not allow_reserved and RESERVED_METADATA_KEY in value:
        raise ValidationError(
            f"the metadata key {RESERVED_METADATA_KEY!r} is reserved for memorch",
            error_code="INVALID_METADATA",
            suggestion=f"rename the key {RESERVED_METADATA_KEY!r}",
        )
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"metadata must contain only JSON values: {exc}",
            error_code="INVALID_METADATA",
            suggestion="use strings, finite numbers, booleans, null, lists and objects only",
        ) from exc
    except RecursionError:
        # Nesting past Python's recursion limit (fuzzer: metadata 1,000 levels deep was an INTERNAL_ERROR).
        raise ValidationError(
            "metadata nests too deeply",
            error_code="INVALID_METADATA",
            suggestion='pass a flat object like {"category": "health"}',
        ) from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValidationError(
            f"metadata is {len(encoded)} bytes; the limit is {MAX_METADATA_BYTES}",
            error_code="INVALID_METADATA",
            suggestion="keep metadata to a few short fields; put long text in the memory itself",
        )
    copy = json.loads(encoded)  # a private copy: later changes by the caller cannot leak in
    # json.dumps escapes a lone surrogate, so it would be stored and then break every later read
    # of the scope (fuzzer: list_memories failed with INTERNAL_ERROR after such an add).
    if _has_surrogate(json.dumps(copy, ensure_ascii=False)):
        raise ValidationError(
            "metadata contains a lone UTF-16 surrogate, which is not text",
            error_code="INVALID_METADATA",
            suggestion="send metadata keys and values as valid Unicode",
        )
    return copy


def bounded_int(value: Any, name: str, low: int, high: int, code: str = "INVALID_ARGUMENT") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{name} must be an integer from {low} to {high}",
            error_code=code,
            suggestion=f"pass {name} as a whole number from {low} to {high}, or omit it",
        )
    return value


def flag(value: Any, name: str) -> bool:
    """A true/false switch: only a real boolean (``"false"`` is truthy, so a string is refused
    where the switch destroys, e.g. ``purge``)."""
    if not isinstance(value, bool):
        raise ValidationError(
            f"{name} must be true or false",
            error_code="INVALID_ARGUMENT",
            details={"field": name},
            suggestion=f"pass {name}=True or {name}=False",
        )
    return value


def limit(value: Any, name: str = "limit") -> int:
    return bounded_int(value, name, 1, MAX_LIMIT, "INVALID_LIMIT")


def page_cursor(created_at: str, memory_id: str) -> str:
    """The opaque cursor of the page after the memory (created_at, id) of a newest-first list."""
    return base64.urlsafe_b64encode(json.dumps([created_at, memory_id]).encode()).decode().rstrip("=")


def cursor(value: Any) -> tuple[str, str] | None:
    """A ``next_cursor`` a list returned, read back; anything else is ``INVALID_CURSOR``."""
    if value is None:
        return None
    try:
        text = str(value)
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        created_at, memory_id = decoded
        if isinstance(created_at, str) and isinstance(memory_id, str) and len(created_at) + len(memory_id) < 200:
            return created_at, memory_id
    except (ValueError, TypeError):
        pass
    raise ValidationError(
        "cursor is not one a list returned",
        error_code="INVALID_CURSOR",
        suggestion="pass the next_cursor of the previous page unchanged, or omit cursor for the first page",
    )


def threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValidationError(
            "threshold must be a number from 0 to 1",
            error_code="INVALID_THRESHOLD",
            suggestion="pass a number from 0 to 1, or omit threshold for the server's default",
        )
    return float(value)


def moment(value: Any, name: str, *, past: bool = False) -> datetime | None:
    """An ISO datetime (naive: UTC; its offset kept) or date (its start, UTC) as an aware
    datetime; None when not given. ``past``: not later than now (when a memory was said)."""
    if value is None:
        return None
    code = f"INVALID_{name.upper()}"
    hint = f'pass {name} as an ISO time like "2026-03-01T14:30:00Z" or a date like "2026-03-01"'
    try:
        if not isinstance(value, str):
            raise TypeError
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (TypeError, ValueError):
        message = f"{name} {str(value)[:40]!r} is not an ISO date or time"
        raise ValidationError(message, error_code=code, suggestion=hint) from None
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:  # nor can the spans around it overflow
        message = f"{name} {value[:40]!r} is not between the years {MIN_YEAR} and {MAX_YEAR}"
        raise ValidationError(message, error_code=code, suggestion=hint)
    if past and parsed > datetime.now(UTC):
        raise ValidationError(f"{name} {value[:40]!r} is in the future", error_code=code, suggestion=hint)
    return parsed
