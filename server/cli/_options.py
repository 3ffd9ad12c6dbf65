"""Options shared by the ``memorch`` commands, and how their help is shown.

``HelpGroup`` is the CLI's command group: ``ReportingGroup`` (one error line per failure, in
``_errors``' words) plus flag rows without a type and help text that wraps where the terminal
ends. Typer's rich help prints a type column for every option, so flags read as if they took a
value (``--json <bool>``, even ``--help <bool>``); a flag takes none, so its row shows no type,
as click's plain help already does. It also keeps a docstring's line breaks, so a sentence
broke where the source line did (``reflow``).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from memorch.cli._errors import report, report_failure, stderr
from memorch.config import MemoryConfig
from memorch.domain._counts import memories, plural  # noqa: F401 - the CLI modules import them from here
from memorch.domain._validation import ScopeIds
from memorch.errors import ValidationError

try:  # typer ≥ 0.22 vendors click; older releases use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

if TYPE_CHECKING:
    from memorch.api._memory import Memory
    from memorch.results import UserCount

err = stderr()  # messages and progress on stderr; stdout carries results
out = Console()  # results

UserOpt = Annotated[str | None, typer.Option("--user-id", help="Scope: whose memories (default: MEMORCH_USER_ID)")]
AgentOpt = Annotated[str | None, typer.Option("--agent-id", help="Narrow the scope to one agent's memories")]
RunOpt = Annotated[str | None, typer.Option("--run-id", help="Narrow the scope to one run or session")]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        metavar="auto|NAME",
        help="Work for a project: adds go to its layer, reads see it and the global layer; "
        "auto names it from the working directory's git repository (MEMORCH_PROJECT)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")]
MemoryIdArg = Annotated[
    str, typer.Argument(metavar="MEMORY_ID", help="A memory's id, from `memorch search` or `memorch list`")
]
LimitOpt = Annotated[int, typer.Option(help="At most this many memories")]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        help="Drop results below this relevance, 0-1 (default: no answer unless the best reaches "
        "MEMORCH_SEARCH_THRESHOLD, 0.3; then the rest down to half of it)"
    ),
]
FullIdsOpt = Annotated[
    bool, typer.Option("--full-ids", help="Show ids whole (a narrow terminal shows their first 8 characters)")
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="Forget it then: an ISO date or time, or a duration like 7d (default: MEMORCH_DEFAULT_EXPIRY)",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking")]


_SCOPE_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=option)
    for name, option in (("user_id", UserOpt), ("agent_id", AgentOpt), ("run_id", RunOpt))
]


def scope_options(command: Callable[..., None]) -> Callable[..., None]:
    """COMMAND with ``--user-id``, ``--agent-id`` and ``--run-id`` after its arguments, handed to
    it as one ``scope`` (a ``ScopeIds``). Typer has no option groups; this is click's
    shared-options decorator in typer's terms: typer reads the signature given here."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "scope"]
    arguments = [p for p in own if p.default is inspect.Parameter.empty]
    options = [p for p in own if p.default is not inspect.Parameter.empty]

    @functools.wraps(command)
    def with_scope(
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None, **rest: Any
    ) -> None:
        command(scope=ScopeIds(user_id=user_id, agent_id=agent_id, run_id=run_id), **rest)

    parameters = [*arguments, *_SCOPE_OPTIONS, *options]
    with_scope.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_scope.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_scope


def _flags_without_type(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # the rich help prints a type column from metavar; a flag has no value
    return params


def _subcommand(ctx: Any) -> str | None:
    """The command named on the command line, before it was invoked (click keeps it aside)."""
    named = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []
    return named[0] if named else None


class ReportingGroup(TyperGroup):
    """The CLI's command group: every failure of every command is reported here, as one line."""

    def invoke(self, ctx: Any) -> Any:
        named = _subcommand(ctx)  # read first: click consumes it
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, EOFError, BrokenPipeError):
            raise  # typer's own handling: exit codes, Ctrl+D, `memorch --help | head`
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            if where == ctx.command_path and named in self.commands:  # an option's value missing: the group's ctx
                where = f"{where} {named}"
            report("USAGE_ERROR", exc.format_message(), f"see `{where} --help`")
            raise typer.Exit(exc.exit_code) from exc
        except ClickException as exc:
            report("USAGE_ERROR", exc.format_message(), None)
            raise typer.Exit(exc.exit_code) from exc
        except Exception as exc:  # noqa: BLE001, RUF100 - the CLI's outermost catch-all: a bug is reported as INTERNAL_ERROR
            command = f"{ctx.command_path} {ctx.invoked_subcommand or ''}".strip()
            raise typer.Exit(report_failure(exc, command)) from exc


_EXAMPLE = re.compile(r"\s*\bExample:\s*")


def reflow(text: str) -> str:
    """A command's help as typer's rich help shows it well at any width: each paragraph one line
    (the terminal wraps it; typer would keep the docstring's line breaks, breaking sentences
    mid-way at 80 columns), and each ``Example: ...`` a paragraph of its own, so the command
    list shows only the summary before it."""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text).partition("\f")[0]):
        prose, *examples = _EXAMPLE.split(" ".join(block.split()))
        paragraphs += [prose] if prose else []
        paragraphs += [f"Example: {example}" for example in examples if example]
    return "\n\n".join(paragraphs)


class HelpGroup(ReportingGroup):
    """The command group: failures reported as one line; flags shown without a value type; help
    text reflowed (``reflow``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _flags_without_type(command.get_params(ctx))
            if command.help:
                command.help = reflow(command.help)
        return command


def scope_words(scope: dict[str, Any]) -> str:
    """``user_id 'alice'`` or ``user_id 'alice', agent_id 'bot'``: the scope a command looked in."""
    return ", ".join(f"{key} {value!r}" for key, value in scope.items() if value is not None)


def default_user(memory: Any, scope: ScopeIds) -> ScopeIds:
    """The scope a command reads or writes: without ``--user-id``, ``MEMORCH_USER_ID``'s user."""
    return {**scope, "user_id": scope.get("user_id") or memory.config.user_id}


def print_none(scope: dict[str, Any], then: str = "", holders: list[UserCount] | None = None) -> None:
    """``no memories for user_id 'alice'`` (and what did not happen, ``then``); ``holders``: the
    users that hold memories instead (``other_holders``), and how to read theirs."""
    out.print(f"no memories for {scope_words(scope)}{then}", soft_wrap=True, highlight=False)
    if holders:
        named = ", ".join(f"user_id {u['user_id']!r} ({memories(u['memories'])})" for u in holders)
        out.print(
            f"this data directory holds memories of {named}: pass --user-id, or set MEMORCH_USER_ID "
            "as your assistant's configuration does",
            soft_wrap=True,
            highlight=False,
        )


def other_holders(memory: Memory, scope: dict[str, Any], shown: int = 3) -> list[UserCount]:
    """When a scope of a user alone holds no memory: the users that do (most first), since a
    client configured with ``MEMORCH_USER_ID=me`` wrote what the shell's default user does not
    see (a newcomer's trial, 2026-12-07). Empty otherwise."""
    if {key for key, value in scope.items() if value is not None} - {"user_id", "project"}:
        return []
    holders = memory.users()
    if any(u["user_id"] == scope.get("user_id") for u in holders):
        return []
    return holders[:shown]


def interactive() -> bool:
    """Whether someone can answer a question on this terminal (tests patch it)."""
    return sys.stdin.isatty()


def confirm(question: str, refused: str) -> None:
    """Ask ``question`` on stderr; anything but yes prints ``refused`` and exits 1."""
    if not typer.confirm(question, default=False, err=True):
        err.print(refused)
        raise typer.Exit(1)


@contextmanager
def open_memory() -> Iterator[Memory]:
    """A Memory for one command, on a data directory that exists (failures: ``_errors``)."""
    from memorch.api._memory import Memory
    from memorch.engine._components import usable_data_dir

    config = MemoryConfig()
    usable_data_dir(config)  # a read-only one with a ledger is fine for reads

    with Memory(config) as memory:
        yield memory


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """A command's result: JSON on stdout with ``--json``, else ``render``'s words."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        render(data)


def stdin_text() -> str:
    """``memorch add -``: the text piped in, as UTF-8."""
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"the text on stdin is not UTF-8 (byte {exc.start})",
            error_code="INVALID_TEXT",
            suggestion="convert it first, e.g. `iconv -f latin1 -t utf-8 file | memorch add -`",
        ) from None
