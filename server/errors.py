"""Every failure memorch reports, as a typed exception.

The hierarchy::

    MemoryError                      base: message, error_code, details, suggestion
    ├── ValidationError              bad input (empty/huge text, bad id, bad filter, dim mismatch)
    ├── MemoryNotFoundError          an id that is not (or no longer) in the given scope
    ├── ConfigurationError           settings that cannot work (unknown embedder, missing model)
    │   └── MissingCredentialsError  a model needs an API key no setting or variable gives
    ├── AuthenticationError          a provider refused our credentials (401/403)
    ├── PermissionDeniedError        a caller bound to a user (HTTP token) asked for another scope
    ├── NetworkError                 a provider could not be reached, timed out, or kept failing
    ├── StorageError                 SQLite / LanceDB / Kuzu failed to read or write
    │   └── VectorSearchError        the vector index failed to answer a query
    └── InternalError                a bug in memorch: an exception nobody classified

An exception that is not a ``MemoryError`` is never mapped to a guess (a ``TypeError`` is not a
provider outage): it propagates, and only the outermost surface (an MCP tool, a CLI command)
logs its traceback and reports it as ``InternalError`` (``INTERNAL_ERROR``).

A ``suggestion`` is written for whoever reads it next: it names the operation or argument to use
("use search() or get_all() to find the id"). An operation is written once, by its MCP tool's
name in braces (``"use {search_memories} to find the id"``), and each surface words it its own
way (``worded``): the library's methods by default, since an exception read in Python code is
read by a library user; the tools' names over MCP (``memorch.tools``), the commands on the
command line (``memorch.cli._errors``), the buttons on the web page (``memorch.serve._ui_api``).
``details`` holds machine-readable context safe to show a client; internals (paths, engine
messages) go to the log only.

``MemoryError`` shadows the builtin of the same name inside this package on purpose (the public
API is mem0-compatible); the builtin is never raised by memorch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

# The operations a suggestion may name (``{search_memories}``), in the library's words.
LIBRARY_WORDS: Mapping[str, str] = {
    "add_memory": "add()",
    "search_memories": "search()",
    "list_memories": "get_all()",
    "get_memory": "get()",
    "update_memory": "update()",
    "delete_memory": "delete()",
    "memory_history": "history()",
    "restore_memory": "restore()",
    "delete_all_memories": "delete_all()",
}
# Only these names in braces are operations: any other brace in a suggestion is its own text.
_OPERATION = re.compile(r"\{(" + "|".join(LIBRARY_WORDS) + r")\}")


class MemoryError(Exception):
    """Base class. Raised only through a subclass, which names its ``error_code`` as ``code=``."""

    default_code: ClassVar[str] = "MEMORY_ERROR"

    def __init_subclass__(cls, *, code: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.default_code = code

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        details: dict[str, Any] | None = None,
        suggestion: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code or self.default_code
        self.details = details or {}
        self.next_step = suggestion  # as written, operations in braces; set it to change the suggestion

    @property
    def suggestion(self) -> str | None:
        """The next step in the library's words."""
        return self.worded(LIBRARY_WORDS)

    def worded(self, words: Mapping[str, str]) -> str | None:
        """The next step with each operation it names in ``words`` (one per ``LIBRARY_WORDS`` key)."""
        if self.next_step is None:
            return None
        return _OPERATION.sub(lambda match: words[match.group(1)], self.next_step)

    def to_dict(self, words: Mapping[str, str] = LIBRARY_WORDS) -> dict[str, Any]:
        """The client-safe view."""
        return {
            "error_code": self.error_code,
            "message": self.message,
            "details": self.details,
            "suggestion": self.worded(words),
        }

    def text(self, words: Mapping[str, str] = LIBRARY_WORDS) -> str:
        """The one line a reader sees: ``[CODE] message. Suggestion: next step``."""
        text, suggestion = f"[{self.error_code}] {self.message}", self.worded(words)
        # A message ending its own sentence (a provider's "Connection error.") gets no second stop.
        return f"{text.removesuffix('.')}. Suggestion: {suggestion}" if suggestion else text

    def __str__(self) -> str:
        return self.text()


class ValidationError(MemoryError, code="VALIDATION_ERROR"):
    """Input that memorch refuses before changing anything."""


class MemoryNotFoundError(MemoryError, code="MEMORY_NOT_FOUND"):
    """No memory with that id exists in the caller's scope."""


class ConfigurationError(MemoryError, code="CONFIGURATION_ERROR"):
    """Settings that cannot work; fix the named environment variable or config key."""


class MissingCredentialsError(ConfigurationError, code="MISSING_CREDENTIALS"):
    """A model needs an API key and none is set: found before any request, never retried."""


class AuthenticationError(MemoryError, code="AUTHENTICATION_ERROR"):
    """A model provider rejected the credentials (HTTP 401/403). Never retried."""


class PermissionDeniedError(MemoryError, code="PERMISSION_DENIED"):
    """A caller bound to an identity (an HTTP token of the tokens file) named a scope outside it."""


class NetworkError(MemoryError, code="NETWORK_ERROR"):
    """A provider was unreachable, timed out, rate-limited us, or failed after retries."""


class StorageError(MemoryError, code="STORAGE_ERROR"):
    """A store (SQLite ledger, LanceDB, Kuzu) failed."""


class VectorSearchError(StorageError, code="VECTOR_SEARCH_ERROR"):
    """The vector index failed to answer a search."""


class InternalError(MemoryError, code="INTERNAL_ERROR"):
    """An unexpected exception (a bug). The surface logs the traceback; the client gets this."""

    @classmethod
    def wrap(cls, exc: BaseException) -> InternalError:
        return cls(
            f"memorch hit an internal error ({type(exc).__name__})",
            suggestion="this is a bug in memorch: the server log has the traceback; retry once, then report it",
        )


__all__ = [
    "LIBRARY_WORDS",
    "AuthenticationError",
    "ConfigurationError",
    "InternalError",
    "MemoryError",
    "MemoryNotFoundError",
    "MissingCredentialsError",
    "NetworkError",
    "PermissionDeniedError",
    "StorageError",
    "ValidationError",
    "VectorSearchError",
]
