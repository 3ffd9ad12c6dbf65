"""Engine failures as typed, client-safe errors.

LanceDB, Kuzu and SQLite describe a failure with internals: absolute data-directory paths,
Rust or C++ source locations, chains of "Wrapped error: ...". Those belong in the server log,
not in an answer to an assistant. Every engine call in ``memorch.storage`` runs inside
``engine_errors``, which logs the full exception with its traceback and raises a
``StorageError`` (or a subclass) whose message keeps only a short, path-free reason.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pyarrow as pa

from memorch.errors import StorageError, VectorSearchError

log = logging.getLogger("memorch.storage")
# A library's warnings (each carries a traceback for the server log) must not reach a CLI's
# stderr through Python's last-resort handler when the application configured no logging:
# `memorch stats` on a full disk printed engine tracebacks above its one-line error.
logging.getLogger("memorch").addHandler(logging.NullHandler())

# What each engine raises when it fails. LanceDB (Rust through pyo3) raises RuntimeError for
# most I/O and format errors, OSError / ValueError for some, and pyarrow's own ArrowException
# (not always a ValueError or OSError subclass) while converting results. Kuzu raises
# RuntimeError; both raise OSError when a directory or lock file cannot be created.
LANCE_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, ValueError, pa.ArrowException)
KUZU_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError)
SQLITE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

# The repair itself (read in `memorch doctor`'s own table, "run `memorch doctor` first" went round
# in a circle: a newcomer's trial).
REPAIR = "run `memorch reindex` to rebuild the search index and graph from the ledger"
# Engine messages are cut to this many characters: long enough for the reason, short enough
# that a chain of wrapped errors does not fill the answer.
MAX_REASON_CHARS = 160
# Any token with a path separator (absolute, relative or Windows) and any source location
# ("local.rs:273:40", "storage_manager.cpp:88") is an internal detail.
_PATH_TOKEN = re.compile(r"[^\s,;'\"()\[\]]*[/\\][^\s,;'\"()\[\]]*")
_SOURCE_TOKEN = re.compile(r"[^\s,;'\"()\[\]]+\.(?:rs|cpp|cc|c|h|hpp)(?::\d+)*")
_REPEATS = re.compile(r"(?:<internal>[\s,]*){2,}")


def reason(exc: BaseException) -> str:
    """A short description of ``exc`` with every path and source location removed."""
    text = " ".join(str(exc).split())
    text = _SOURCE_TOKEN.sub("<internal>", _PATH_TOKEN.sub("<internal>", text))
    text = _REPEATS.sub("<internal> ", text).strip(" ,")
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3].rstrip() + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def engine_errors(
    what: str,
    catch: tuple[type[BaseException], ...],
    *,
    error_code: str,
    suggestion: str = REPAIR,
    error: type[StorageError] = StorageError,
) -> Iterator[None]:
    """Turn an engine failure inside the block into ``error``: "``what`` failed (reason)"."""
    try:
        yield
    except catch as exc:
        log.warning("%s failed", what, exc_info=True)
        raise error(f"{what} failed ({reason(exc)})", error_code=error_code, suggestion=suggestion) from exc


# -- the LanceDB index's three kinds of failure ---------------------------------------------

LANCE_WRITE_HINT = "the ledger keeps the change and replays it on the next start; if this persists, " + REPAIR


def lance_search_errors(kind: str) -> AbstractContextManager[None]:
    return engine_errors(
        f"the LanceDB {kind} search",
        LANCE_ERRORS,
        error_code="VECTOR_SEARCH_ERROR",
        suggestion="retry; if it persists, " + REPAIR,
        error=VectorSearchError,
    )


def lance_write_errors(action: str) -> AbstractContextManager[None]:
    return engine_errors(
        f"the LanceDB {action}", LANCE_ERRORS, error_code="VECTOR_WRITE_FAILED", suggestion=LANCE_WRITE_HINT
    )


def lance_read_errors(action: str) -> AbstractContextManager[None]:
    return engine_errors(f"reading the LanceDB index ({action})", LANCE_ERRORS, error_code="VECTOR_READ_FAILED")
