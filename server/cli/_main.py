"""The ``memorch`` command line (typer + rich): the app and the memory commands.

Examples::

    memorch serve                                   # MCP over stdio (what Claude Desktop runs)
    memorch serve --transport streamable-http --port 8765
    memorch add "I am allergic to peanuts" --user-id alice
    memorch search "what should I avoid eating?" --user-id alice --json
    memorch list --user-id alice --filters '{"category": "health"}'
    memorch history 3f1c...
    memorch delete-all --user-id alice --yes
    memorch stats --json

A failure is one line on stderr (``error [CODE] message. Suggestion: ...``) and a non-zero exit
code; ``_errors.py`` renders it. The admin commands (stats, reindex, reprocess, doctor) are in
``_commands_admin.py``; how results are printed in ``_render.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from memorch.cli._options import (
    AgentOpt,
    FullIdsOpt,
    HelpGroup,
    JsonOpt,
    LimitOpt,
    MemoryIdArg,
    RunOpt,
    ThresholdOpt,
    UserOpt,
    YesOpt,
    emit,
    err,
    memories,
    open_memory,
    out,
    plural,
    scope_options,
    scope_words,
)
from memorch.cli._render import below_threshold_line, history_table, memory_table, print_added, print_change
from memorch.cli._serve import serve
from memorch.cli._setup import setup
from memorch.config import package_version
from memorch.domain._validation import MAX_LIMIT, ScopeIds
from memorch.errors import ValidationError

app = typer.Typer(
    cls=HelpGroup,
    help="memorch: long-term memory for AI assistants over MCP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"memorch {package_version()}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """memorch: long-term memory for AI assistants over MCP."""


def _default_user(memory: Any, scope: ScopeIds) -> ScopeIds:
    """The scope a command reads or writes: without ``--user-id``, ``MEMORCH_USER_ID``'s user."""
    return {**scope, "user_id": scope.get("user_id") or memory.config.user_id}


def _json_arg(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"is not valid JSON: {exc}", param_hint=f"'{name}'") from exc


app.command()(serve)  # `memorch serve` (_serve.py), first in --help


@app.command()
@scope_options
def add(
    text: Annotated[str, typer.Argument(help="What to remember")],
    scope: ScopeIds,
    metadata: Annotated[str | None, typer.Option(help="JSON object")] = None,
    infer: Annotated[
        bool | None, typer.Option("--infer/--no-infer", help="Extract facts with the LLM (default: when one is set)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remember TEXT.

    Each line says what happened (ADD, UPDATE, DELETE or NONE) to which memory, and when no model
    answered (the text is stored as said, for `memorch reprocess`) or the facts come later
    (background inference).
    Example: memorch add "I moved to Lisbon" --user-id alice"""
    with open_memory() as m:
        result = m.add(text, **_default_user(m, scope), metadata=_json_arg(metadata, "--metadata"), infer=infer)
    emit(result, as_json, print_added)


@app.command()
@scope_options
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words")],
    scope: ScopeIds,
    limit: LimitOpt = 10,
    filters: Annotated[str | None, typer.Option(help="JSON filter")] = None,
    threshold: ThresholdOpt = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each signal's rank and score")] = False,
    full_ids: FullIdsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Find memories by meaning.

    Matches that score under the threshold are left out and counted; `--threshold 0` shows them.
    Example: memorch search "allergies" --user-id alice"""
    with open_memory() as m:
        result = m.search(
            query,
            **(scope := _default_user(m, scope)),
            limit=limit,
            filters=_json_arg(filters, "--filters"),
            threshold=threshold,
            explain=explain,
        )

    def render(r: dict[str, Any]) -> None:
        rows, below = r["results"], r.get("below_threshold")
        if rows:
            memory_table(out, rows, with_score=True, full_ids=full_ids)
        if below:
            out.print(below_threshold_line(below, scope, len(rows)), soft_wrap=True, highlight=False)
        elif not rows:
            _print_none(scope)

    emit(result, as_json, render)


def _print_none(scope: dict[str, Any], then: str = "") -> None:
    out.print(f"no memories for {scope_words(scope)}{then}", soft_wrap=True, highlight=False)


@app.command("list")
@scope_options
def list_(
    scope: ScopeIds,
    limit: LimitOpt = 100,
    filters: Annotated[str | None, typer.Option(help="JSON filter")] = None,
    full_ids: FullIdsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List memories, newest first.  Example: memorch list --user-id alice --limit 20"""
    with open_memory() as m:
        scope = _default_user(m, scope)
        result = m.get_all(**scope, limit=limit, filters=_json_arg(filters, "--filters"))

    def render(r: dict[str, Any]) -> None:
        if r["results"]:
            memory_table(out, r["results"], with_score=False, full_ids=full_ids)
        else:
            _print_none(scope)

    emit(result, as_json, render)


@app.command()
def get(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Show one memory, whole.  Example: memorch get 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.get(memory_id, user_id=user_id)
    emit(result, as_json, lambda r: out.print_json(data=r))


@app.command()
def update(
    memory_id: MemoryIdArg,
    text: Annotated[str, typer.Argument(help="The memory's new text")],
    user_id: UserOpt = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a memory's text.  Example: memorch update 3f1c... "I moved to Porto" """
    with open_memory() as m:
        result = m.update(memory_id, text, metadata=_json_arg(metadata, "--metadata"), user_id=user_id)
    emit(result, as_json, print_change)


@app.command()
def delete(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Forget one memory (its history stays).  Example: memorch delete 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.delete(memory_id, user_id=user_id)
    emit(result, as_json, lambda r: out.print(f"{'already deleted' if r['event'] == 'NONE' else 'deleted'} {r['id']}"))


def interactive() -> bool:
    """Whether someone can answer a question on this terminal (tests patch it)."""
    return sys.stdin.isatty()


@app.command("delete-all")
@scope_options
def delete_all(scope: ScopeIds, yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Forget every memory of a scope.

    Needs --user-id, --agent-id or --run-id (MEMORCH_USER_ID alone is not enough) and deletes what
    `memorch list` shows with the same options, all of it. Asks first; with no terminal to ask on
    it needs --yes. The history stays: `memorch restore ID` brings a memory back.
    Example: memorch delete-all --user-id alice --yes"""
    if not any(scope.values()):
        raise ValidationError(
            "memorch delete-all needs a scope; it does not default to MEMORCH_USER_ID",
            error_code="SCOPE_REQUIRED",
            suggestion="pass --user-id (--agent-id or --run-id narrow it); "
            "`memorch list` with the same options shows what would be deleted",
        )
    if not yes and not interactive():
        raise ValidationError(
            "memorch delete-all asks before deleting, and there is no terminal to ask on",
            error_code="CONFIRMATION_REQUIRED",
            suggestion="pass --yes to delete without asking",
        )
    with open_memory() as m:
        scope = _default_user(m, scope)
        layers = {"project": m.config.project} if m.config.project else {}  # as `list`: this project and global
        if not yes:
            count = len(m.get_all(**scope, limit=MAX_LIMIT)["results"])
            if count:
                _confirm(f"Delete {'all ' if count > 1 else ''}{_count_words(count)} of {scope_words(scope)}?")
        result = m.delete_all(**scope, **layers)

    def render(r: dict[str, Any]) -> None:
        if r["deleted"]:
            out.print(f"deleted {memories(r['deleted'])} of {scope_words(scope)}", soft_wrap=True, highlight=False)
        else:
            _print_none(scope, "; nothing was deleted")

    emit(result, as_json, render)


def _count_words(count: int) -> str:
    return f"{MAX_LIMIT} or more memories" if count >= MAX_LIMIT else memories(count)


def _confirm(question: str) -> None:
    if not typer.confirm(question, default=False, err=True):
        err.print("nothing was deleted")
        raise typer.Exit(1)


@app.command()
def restore(
    memory_id: MemoryIdArg,
    event: Annotated[str | None, typer.Option(help="history event id (default: undo the last change)")] = None,
    user_id: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Undo a change (also a deletion).  Example: memorch restore 3f1c... --event 9a2b..."""
    with open_memory() as m:
        result = m.restore(memory_id, event, user_id=user_id)
    emit(result, as_json, print_change)


@app.command()
def history(
    memory_id: MemoryIdArg, user_id: UserOpt = None, full_ids: FullIdsOpt = False, as_json: JsonOpt = False
) -> None:
    """Every change to one memory, oldest first.

    Each event's id (for `memorch restore --event`), when, what, and the text after it.
    Example: memorch history 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.history(memory_id, user_id=user_id)
    emit(result, as_json, lambda events: history_table(out, events, full_ids=full_ids))


@app.command()
@scope_options
def graph(
    entity: Annotated[str, typer.Argument(help="A person, place or thing the graph knows")],
    scope: ScopeIds,
    hops: Annotated[int, typer.Option(help="How far from the entity (1-3)")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """What the graph knows around ENTITY.  Example: memorch graph "Alice" --user-id alice"""
    with open_memory() as m:
        result = m.graph(entity, **_default_user(m, scope), hops=hops)

    def render(r: dict[str, Any]) -> None:
        table = Table("source", "relationship", "destination", title=Text(f"around {r['entity']}"))
        for rel in r["relations"]:
            table.add_row(Text(rel["source"]), Text(rel["relationship"]), Text(rel["destination"]))
        out.print(table)

    emit(result, as_json, render)


@app.command("import")
@scope_options
def import_(
    path: Annotated[Path, typer.Argument(help="the file or folder to import (JSONL from `memorch export` by default)")],
    scope: ScopeIds,
    source: Annotated[
        str, typer.Option("--from", help="memorch | mem0 | openmemory | mcp-memory | basic-memory | text")
    ] = "memorch",
    split: Annotated[str | None, typer.Option(help="text: line | paragraph (default: paragraph for .md)")] = None,
    infer: Annotated[bool, typer.Option("--infer", help="text: extract facts with the LLM")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and show what would be imported")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import memories in batches, every item checked first.

    `memorch export` files keep their ids and history; --from reads another server's export
    (scope options given replace the source's users).
    Example: memorch import memory.jsonl --from mcp-memory --dry-run"""
    from memorch.cli._import import run

    run(path, source, scope, split=split, infer=infer, dry_run=dry_run, as_json=as_json)


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="where to write the JSONL file")],
    user_id: Annotated[str | None, typer.Option(help="only this user's memories (default: every scope)")] = None,
    agent_id: AgentOpt = None,
    run_id: RunOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write memories, with their history, to a JSONL file.

    Ids, metadata, relations and history, of every scope unless one is given; `memorch import`
    reads the file back.
    Example: memorch export backup.jsonl"""
    with open_memory() as m:
        result = m.export_memories(path, user_id=user_id, agent_id=agent_id, run_id=run_id)
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"exported {memories(r['memories'])} and {plural(r['deleted'], 'deleted one')}"
            f" ({plural(r['history_events'], 'history event')}) to {path}"
        ),
    )


from memorch.cli._commands_admin import register_admin  # noqa: E402 - stats, reindex, reprocess, doctor

register_admin(app)

app.command("setup")(setup)

from memorch.cli._backup import register_backup  # noqa: E402 - `memorch backup` / `restore-backup`

register_backup(app)

from memorch.cli._ui import register_ui  # noqa: E402 - `memorch ui` lives with its web page

register_ui(app)

from memorch.cli._token import register_token  # noqa: E402 - `memorch token add|list|revoke`

register_token(app)


if __name__ == "__main__":  # python -m memorch.cli._main (the entry point is _launch.main)
    app()
