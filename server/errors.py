"""Every failure memorch reports, as a typed exception.

The hierarchy::

    MemoryError                      base: message, error_code, details, suggestion
    ├── ValidationError              bad input (empty/huge text, bad id, bad filter, dim mismatch)
    ├── MemoryNotFoundError          an id that is not (or no longer) in the given scope
    ├── ConfigurationError           settings that cannot work (unknown embedder, missing model)
    ├── AuthenticationError          a provider refused our credentials (401/403)
    ├── PermissionDeniedError        a caller bound to a user (HTTP token) asked for another scope
    ├── NetworkError                 a provider could not be reached, timed out, or kept failing
    ├── StorageError                 SQLite / LanceDB / Kuzu failed to read or write
    │   └── VectorSearchError        the vector index failed to answer a query
    └── InternalError                a bug in memorch: an exception nobody classified

An exception that is not a ``MemoryError`` is never mapped to a guess (a ``TypeError`` is not a
provider outage): it propagates, and only the outermost surface (an MCP tool, a CLI command)
logs its traceback and reports it as ``InternalError`` (``INTERNAL_ERROR``).

A ``suggestion`` is written for whoever reads it next, usually an assistant: it names the tool
or argument to use ("call search_memories to find the id"). ``details`` holds machine-readable
context safe to show a client; internals (paths, engine messages) go to the log only.

``MemoryError`` shadows the builtin of the same name inside this package on purpose (the public
API is mem0-compatible); the builtin is never raised by memorch.
"""

from __future__ import annotations

from typing import Any


class MemoryError(Exception):
    """Base class. Raised only through a subclass."""

    default_code = "MEMORY_ERROR"

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
        self.suggestion = suggestion

    def to_dict(self) -> dict[str, Any]:
        """The client-safe view."""
        return {
            "error_code": self.error_code,
            "message": self.message,
            "details": self.details,
            "suggestion": self.suggestion,
        }

    def __str__(self) -> str:
        text = f"[{self.error_code}] {self.message}"
        return f"{text}. Suggestion: {self.suggestion}" if self.suggestion else text


class ValidationError(MemoryError):
    """Input that memorch refuses before changing anything."""

    default_code = "VALIDATION_ERROR"


class MemoryNotFoundError(MemoryError):
    """No memory with that id exists in the caller's scope."""

    default_code = "MEMORY_NOT_FOUND"


class ConfigurationError(MemoryError):
    """Settings that cannot work; fix the named environment variable or config key."""

    default_code = "CONFIGURATION_ERROR"


class AuthenticationError(MemoryError):
    """A model provider rejected the credentials (HTTP 401/403). Never retried."""

    default_code = "AUTHENTICATION_ERROR"


class PermissionDeniedError(MemoryError):
    """A caller bound to an identity (an HTTP token of the tokens file) named a scope outside it."""

    default_code = "PERMISSION_DENIED"


class NetworkError(MemoryError):
    """A provider was unreachable, timed out, rate-limited us, or failed after retries."""

    default_code = "NETWORK_ERROR"


class StorageError(MemoryError):
    """A store (SQLite ledger, LanceDB, Kuzu) failed."""

    default_code = "STORAGE_ERROR"


class VectorSearchError(StorageError):
    """The vector index failed to answer a search."""

    default_code = "VECTOR_SEARCH_ERROR"


class InternalError(MemoryError):
    """An unexpected exception (a bug). The surface logs the traceback; the client gets this."""

    default_code = "INTERNAL_ERROR"

    @classmethod
    def wrap(cls, exc: BaseException) -> InternalError:
        return cls(
            f"memorch hit an internal error ({type(exc).__name__})",
            suggestion="this is a bug in memorch: the server log has the traceback; retry once, then report it",
        )


__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "InternalError",
    "MemoryError",
    "MemoryNotFoundError",
    "NetworkError",
    "PermissionDeniedError",
    "StorageError",
    "ValidationError",
    "VectorSearchError",
]
