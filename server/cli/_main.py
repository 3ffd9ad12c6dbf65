"""The ``memorch`` command line (typer + rich): the app and the memory commands.

Examples::

    memorch serve                                   # MCP over stdio (what Claude Desktop runs)
    memorch serve --transport streamable-http --port 8765
    memorch add "I am allergic to peanuts" --user-id alice
    memorch search "what should I avoid eating?" --user-id alice --json
    memorch list --user-id alice --filters '{"category": "health"}'
    memorch list --user-id alice --all --json       # every page (or --cursor for the next one)
    memorch history 3f1c...
    memorch add "Parked on level 3" --expires-at 1d # gone after a day
    memorch stats --json

A failure is one line on stderr (``error [CODE] message. Suggestion: ...``) and a non-zero exit
code; ``_errors.py`` renders it. The admin commands (stats, reindex, reprocess, doctor, maintain) are in
``_commands_admin.py``; delete, delete-all and forget in ``_delete.py``; how results are
printed in ``_render.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from memorch.cli._options import (
    ExpiresOpt,
    FullIdsOpt,
    HelpGroup,
    JsonOpt,
    LimitOpt,
    MemoryIdArg,
    ThresholdOpt,
    UserOpt,
    default_user,
    emit,
    memories,
    open_memory,
    other_holders,
    out,
    print_none,
    scope_options,
    scope_words,
    stdin_text,
)
from memorch.cli._render import (
    below_threshold_line,
    explain_table,
    history_table,
    memory_table,
    print_added,
    print_change,
    relation_table,
)
from memorch.cli._serve import serve
from memorch.cli._setup import setup
from memorch.config import package_version
from memorch.domain._validation import MAX_LIMIT, ScopeIds

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
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What to remember (-: read it from stdin)")],
    scope: ScopeIds,
    metadata: Annotated[str | None, typer.Option(help="JSON object")] = None,
    infer: Annotated[
        bool | None, typer.Option("--infer/--no-infer", help="Extract facts with the LLM (default: when one is set)")
    ] = None,
    expires_at: ExpiresOpt = None,
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            metavar="global|project",
            help="With MEMORCH_PROJECT: global stores it for every project (docs/projects.md)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remember TEXT.

    Each line says what happened (ADD, UPDATE, DELETE or NONE) to which memory, and when no model
    answered (the text is stored as said, for `memorch reprocess`) or the facts come later
    (background inference). --expires-at: not returned after then, purged by maintenance.
    Example: memorch add "I moved to Lisbon" --user-id alice
    Example: memorch add "Parked on level 3" --expires-at 1d
    Example: memorch add - --user-id alice < note.txt
    Example: MEMORCH_PROJECT=auto memorch add "I prefer British English" --layer global"""
    if text == "-":  # as cat and git do: the text comes on stdin
        text = stdin_text()
    with open_memory() as m:
        result = m.add(
            text,
            **default_user(m, scope),
            metadata=_json_arg(metadata, "--metadata"),
            infer=infer,
            expires_at=expires_at,
            layer=layer,
        )
    emit(result, as_json, print_added)


@app.command()
@scope_options
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for, in your own words")],
    scope: ScopeIds,
    limit: LimitOpt = 10,
    filters: Annotated[str | None, typer.Option(help="JSON filter")] = None,
    threshold: ThresholdOpt = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show why each hit scored: each signal's rank and relevance")
    ] = False,
    full_ids: FullIdsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Find memories by meaning.

    Matches that score under the threshold are left out and counted; `--threshold 0` shows them.
    --explain adds a second table: each hit's rank and relevance in the vector, text and graph
    signals (--json has every number).
    Example: memorch search "allergies" --user-id alice --explain"""
    with open_memory() as m:
        result = m.search(
            query,
            **(scope := default_user(m, scope)),
            limit=limit,
            filters=_json_arg(filters, "--filters"),
            threshold=threshold,
            explain=explain,
        )
        holders = other_holders(m, scope) if not result["results"] and not result.get("below_threshold") else None

    def render(r: dict[str, Any]) -> None:
        rows, below = r["results"], r.get("below_threshold")
        if rows:
            memory_table(out, rows, with_score=True, full_ids=full_ids, project=m.config.project)
            if explain:
                explain_table(out, rows)
        if below:
            out.print(below_threshold_line(below, scope, len(rows)), soft_wrap=True, highlight=False)
        elif not rows:
            print_none(scope, holders=holders)

    emit(result, as_json, render)


@app.command("list")
@scope_options
def list_(
    scope: ScopeIds,
    limit: Annotated[
        int | None, typer.Option(help="At most this many memories a page (default 100; with --all, 1000)")
    ] = None,
    filters: Annotated[str | None, typer.Option(help="JSON filter")] = None,
    cursor: Annotated[
        str | None, typer.Option(metavar="CURSOR", help="The next page: the cursor the page before printed")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every memory, page after page")] = False,
    full_ids: FullIdsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List memories, newest first, a page at a time.

    When more remain, the last line gives the --cursor of the next page (--json: next_cursor);
    --all lists every one.
    Example: memorch list --user-id alice --limit 20
    Example: memorch list --user-id alice --all --json"""
    with open_memory() as m:
        scope = default_user(m, scope)
        size = (MAX_LIMIT if every else 100) if limit is None else limit  # 0 is refused as MCP refuses it
        result = _pages(m, scope, size, _json_arg(filters, "--filters"), cursor, every)
        holders = other_holders(m, scope) if not result["results"] and cursor is None and not filters else None

    def render(r: dict[str, Any]) -> None:
        if r["results"]:
            memory_table(out, r["results"], with_score=False, full_ids=full_ids, project=m.config.project)
        elif cursor is None and filters and r.get("empty"):  # the scope has memories, none matching
            out.print(r["empty"], soft_wrap=True, highlight=False)
        elif cursor is None:
            print_none(scope, holders=holders)
        else:
            out.print(f"no more memories for {scope_words(scope)}", soft_wrap=True, highlight=False)
        if r.get("next_cursor"):
            shown = memories(len(r["results"]))
            out.print(f"{shown} shown, more remain: --cursor {r['next_cursor']} (or --all)", soft_wrap=True)

    emit(result, as_json, render)


def _pages(m: Any, scope: ScopeIds, limit: int, filters: Any, cursor: str | None, every: bool) -> dict[str, Any]:
    """One page of ``get_all`` from ``cursor``; ``every``: that page and all after it, joined."""
    rows: list[dict[str, Any]] = []
    while True:
        page = m.get_all(**scope, limit=limit, filters=filters, cursor=cursor)
        rows += page["results"]
        cursor = page.get("next_cursor")
        if not every or cursor is None:
            return {**page, "results": rows}


@app.command()
def get(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Show one memory, whole.  Example: memorch get 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.get(memory_id, user_id=user_id)
    emit(result, as_json, lambda r: out.print_json(data=r))


@app.command()
def update(
    memory_id: MemoryIdArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The memory's new text")],
    user_id: UserOpt = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object")] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(metavar="WHEN|never", help="A new expiry (as for add), or never to remove it; omitted: kept"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a memory's text.

    Example: memorch update 3f1c... "I moved to Porto"
    Example: memorch update 3f1c... "Parked on level 3" --expires-at never"""
    with open_memory() as m:
        result = m.update(
            memory_id, text, metadata=_json_arg(metadata, "--metadata"), user_id=user_id, expires_at=expires_at
        )
        if expires_at is not None and result["event"] != "NONE":  # say the expiry it has now
            result["expires_at"] = m.get(memory_id, user_id=user_id).get("expires_at")
    emit(result, as_json, print_change)


from memorch.cli._delete import register_delete  # noqa: E402 - delete, delete-all, forget

register_delete(app)


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
    entity: Annotated[str, typer.Argument(metavar="ENTITY", help="A person, place or thing the graph knows")],
    scope: ScopeIds,
    hops: Annotated[int, typer.Option(help="How far from the entity (1-3)")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """What the graph knows around ENTITY.  Example: memorch graph "Alice" --user-id alice"""
    with open_memory() as m:
        result = m.graph(entity, **(scope := default_user(m, scope)), hops=hops)

    def render(r: dict[str, Any]) -> None:
        if r["relations"]:
            relation_table(out, r["entity"], r["relations"])
        else:
            why = "relations come from an LLM when memories are added"
            out.print(Text(f"no relations around {r['entity']} for {scope_words(scope)} ({why})"), soft_wrap=True)

    emit(result, as_json, render)


@app.command("import")
@scope_options
def import_(
    path: Annotated[
        Path,
        typer.Argument(metavar="PATH", help="the file or folder to import (JSONL from `memorch export` by default)"),
    ],
    scope: ScopeIds,
    source: Annotated[
        str,
        typer.Option(
            "--from", help="memorch | mem0 | openmemory | mcp-memory | mcp-memory-service | basic-memory | text"
        ),
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


from memorch.cli._backup import export_command  # noqa: E402 - with backup: one page, docs/backups.md

app.command("export")(export_command)


from memorch.cli._commands_admin import register_admin  # noqa: E402 - stats, reindex, reprocess, doctor, maintain

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
