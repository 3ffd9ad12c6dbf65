"""How the ``memorch`` command line reports a failure: one line on stderr, in the CLI's words.

Every command runs inside ``cli_options.ReportingGroup.invoke`` (``memorch serve`` without options
inside ``launch.main``), and both report here, so this is the one place that decides what a user
sees when something fails:

- a memorch error (``MemoryError``) → ``error [CODE] message. Suggestion: ...``, exit 1;
- bad arguments (click's usage errors) → ``error [USAGE_ERROR] ...``, exit 2;
- anything else is a bug → ``error [INTERNAL_ERROR] ...``, exit 1; its traceback goes to the log
  (shown on stderr only when ``MEMORCH_LOG_LEVEL`` is set, e.g. ``ERROR`` or ``DEBUG``).

A suggestion names the operations in the CLI's commands (``COMMAND_WORDS``, the words of
``MemoryError.worded``) and the arguments the core names ("pass user_id") as the CLI's options
(``cli_words``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from memorch.config import LOG_LEVELS
from memorch.errors import InternalError, MemoryError

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("memorch.cli")


@functools.cache
def stderr() -> Console:
    """The console for messages and errors (stdout is for results). rich is imported on first
    use: ``memorch serve``, started by MCP clients, prints nothing there."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# An operation (its MCP tool's name) → the CLI command that does it.
COMMAND_WORDS = {
    "add_memory": "`memorch add`",
    "search_memories": "`memorch search`",
    "list_memories": "`memorch list`",
    "get_memory": "`memorch get`",
    "update_memory": "`memorch update`",
    "delete_memory": "`memorch delete`",
    "memory_history": "`memorch history`",
    "restore_memory": "`memorch restore`",
    "delete_all_memories": "`memorch delete-all`",
}
# Tool argument → the CLI option or argument. Names without "_" are English words too
# ("the text"), so those are replaced only when written as a name: 'text', text=, `text`.
ARGUMENT_OPTIONS = {
    "memory_id": "MEMORY_ID",
    "event_id": "--event",
    "user_id": "--user-id",
    "agent_id": "--agent-id",
    "run_id": "--run-id",
    "text": "TEXT",
    "query": "QUERY",
    "entity": "ENTITY",
    "metadata": "--metadata",
    "filters": "--filters",
    "threshold": "--threshold",
    "limit": "--limit",
    "infer": "--infer",
    "explain": "--explain",
}


_UNDERSCORED = "|".join(name for name in ARGUMENT_OPTIONS if "_" in name)
_WORDS = "|".join(name for name in ARGUMENT_OPTIONS if "_" not in name)
_ARGUMENTS = re.compile(
    rf"(?<![\"'])\b(?P<u>{_UNDERSCORED})\b(?![\"'])"  # not a JSON key: '{"user_id": ...}' stays
    rf"|['`](?P<q>{_WORDS})['`]"
    rf"|\b(?P<a>{_WORDS})(?P<assign>=)"
)


def cli_words(text: str) -> str:
    """A suggestion's arguments as the command line's options."""

    def argument(match: re.Match[str]) -> str:
        name = match.group("u") or match.group("q") or match.group("a")
        option = ARGUMENT_OPTIONS[name]
        return f"{option} " if match.group("assign") else option

    return _ARGUMENTS.sub(argument, text)


def error_line(code: str, message: str, suggestion: str | None) -> str:
    line = f"[{code}] {message.strip().rstrip('.')}"
    if suggestion:  # a message ending in a question ("Did you mean 'serve'?") takes no stop after it
        line += f"{'' if line.endswith(('?', '!')) else '.'} Suggestion: {suggestion.strip()}"
    return re.sub(r"\s*[\r\n]+\s*", " ", line)  # one line, whatever the message held


def report(code: str, message: str, suggestion: str | None) -> None:
    from rich.text import Text

    stderr().print(Text.assemble(("error", "bold red"), " ", error_line(code, message, suggestion)), soft_wrap=True)


# A table's shortened id ("b0f8ef85…"): the start of a UUID, which no command takes.
_SHORT_ID = re.compile(r"[0-9a-f]{4,35}-?…?$")


def report_fields(error: dict[str, Any]) -> None:
    """An error reported in a result (``MemoryError.to_dict()``: reprocess's last, stats' problems)."""
    suggestion = error.get("suggestion")
    report(error["error_code"], error["message"], cli_words(suggestion) if suggestion else None)


def report_error(exc: MemoryError) -> None:
    # An imported file's item is about the file's own fields ("user_id"), not the CLI's options.
    about_a_file = any(key in exc.details for key in ("item", "line", "where"))
    suggestion = exc.worded(COMMAND_WORDS)
    if suggestion and not about_a_file:
        suggestion = cli_words(suggestion)
    given = exc.details.get("memory_id") if exc.error_code == "INVALID_MEMORY_ID" else None
    if isinstance(given, str) and _SHORT_ID.match(given.strip().lower()):
        suggestion = f"tables shorten ids: add --full-ids to `memorch list` or `memorch search`; {suggestion}"
    report(exc.error_code, exc.message, suggestion)
    _report_the_rest(exc.details.get("problems", []), exc.details.get("problem_count", 0))


def _report_the_rest(problems: list[dict[str, Any]], count: int) -> None:
    """The problems of one refusal its message does not name (``maintenance._files.refuse_all``
    names the first few), one indented line each: a file's bad lines are all fixed in one pass."""
    from memorch.maintenance._files import SAID_IN_MESSAGE

    for problem in problems[SAID_IN_MESSAGE:]:
        stderr().print(f"  [{problem['error_code']}] {problem['message']}", soft_wrap=True, markup=False)
    if unlisted := count - len(problems):
        stderr().print(f"  and {unlisted} more not listed", soft_wrap=True, markup=False)


def _log_bug(exc: BaseException, command: str) -> bool:
    """Log a bug's traceback; True when the log is shown on stderr."""
    root = logging.getLogger()
    if not root.handlers:  # `memorch serve` configures the server log; other commands log only on request
        level = os.environ.get("MEMORCH_LOG_LEVEL", "").strip().upper()
        if level in LOG_LEVELS:
            logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        else:
            root.addHandler(logging.NullHandler())
    log.error("internal error in `%s`", command, exc_info=exc)
    return log.isEnabledFor(logging.ERROR) and not all(isinstance(h, logging.NullHandler) for h in root.handlers)


def report_failure(exc: Exception, command: str) -> int:
    """Report a memorch error, or a bug as ``INTERNAL_ERROR``, as one line; the exit code."""
    if isinstance(exc, MemoryError):
        report_error(exc)
        return 1
    shown = _log_bug(exc, command)
    bug = InternalError.wrap(exc)
    where = "the traceback is in the log above" if shown else "run it again with MEMORCH_LOG_LEVEL=DEBUG"
    report(bug.error_code, bug.message, f"this is a bug in memorch: {where}, then report it")
    return 1
