"""memorch: long-term memory for AI assistants, served over MCP, usable as a library.

    from memorch import Memory
    m = Memory()
    m.add("I am allergic to peanuts", user_id="alice")
    m.search("what foods should I avoid?", user_id="alice")

The public surface, listed once (everything else is internal: a leading underscore in a module's
name, and it may change in any release):

- ``memorch``: ``AsyncMemory``, ``Memory``, ``MemoryConfig`` and the errors below (``__all__``).
- ``memorch.errors``: every failure as a typed ``MemoryError`` (the tree is in its docstring).
- ``memorch.results``: the ``TypedDict`` of every operation's result.
- ``memorch.config``: ``MemoryConfig``, its ``MEMORCH_*`` settings.
- ``memorch.tools``: ``register_all(server, state)``, the MCP tools on any ``MCPServer``.
- ``memorch.serve``: ``build_server(config)`` and ``serve``, the MCP server itself.

docs/internals.md maps the sub-packages; each sub-package's docstring names its modules.
Attributes are imported on first access so that ``import memorch`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

_EXPORTS = {
    "AsyncMemory": ".api._async_memory",
    "Memory": ".api._memory",
    "MemoryConfig": ".config",
}
_ERRORS = (
    "MemoryError",
    "ValidationError",
    "MemoryNotFoundError",
    "ConfigurationError",
    "AuthenticationError",
    "NetworkError",
    "StorageError",
    "VectorSearchError",
    "InternalError",
)

if TYPE_CHECKING:
    from memorch.api._async_memory import AsyncMemory
    from memorch.api._memory import Memory
    from memorch.config import MemoryConfig
    from memorch.errors import (
        AuthenticationError,
        ConfigurationError,
        InternalError,
        MemoryError,
        MemoryNotFoundError,
        NetworkError,
        StorageError,
        ValidationError,
        VectorSearchError,
    )

__all__ = [
    "AsyncMemory",
    "AuthenticationError",
    "ConfigurationError",
    "InternalError",
    "Memory",
    "MemoryConfig",
    "MemoryError",
    "MemoryNotFoundError",
    "NetworkError",
    "StorageError",
    "ValidationError",
    "VectorSearchError",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    if name in _ERRORS:
        return getattr(import_module(".errors", __name__), name)
    raise AttributeError(f"module 'memorch' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily imported names too, for a REPL's completion (PEP 562)."""
    return sorted({*globals(), *__all__})
