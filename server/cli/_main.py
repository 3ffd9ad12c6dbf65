"""The ``memorch`` command line (typer + rich).

Examples::

    memorch serve                                   # MCP over stdio (what Claude Desktop runs)
    memorch serve --transport streamable-http --port 8765
    memorch add "I am allergic to peanuts" --user-id alice
    memorch search "what should I avoid eating?" --user-id alice --json
    memorch list --user-id alice --filters '{"category": "health"}'
    memorch history 3f1c...
    memorch stats --json

A failure is one line on stderr (``error [CODE] message. Suggestion: ...``) and a non-zero exit
code; ``cli_errors.py`` renders it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from memorch.cli._options import (
    AgentOpt,
    HelpGroup,
    JsonOpt,
    LimitOpt,
    MemoryIdArg,
    RunOpt,
    ThresholdOpt,
    UserOpt,
    emit,
    err,
    memory_table,
    open_memory,
    out,
    plural,
    scope_options,
)
from memorch.cli._serve import serve
from memorch.cli._setup import setup
from memorch.config import package_version
from memorch.domain._validation import ScopeIds

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


app.command()(serve)  # `memorch serve` (server/cli_serve.py), first in --help


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
    """Remember TEXT.  Example: memorch add "I moved to Lisbon" --user-id alice"""
    with open_memory() as m:
        result = m.add(text, **_default_user(m, scope), metadata=_json_arg(metadata, "--metadata"), infer=infer)
    emit(result, as_json, lambda r: [out.print(f"{e['event']:<6} {e['id']}  {e['memory']}") for e in r["results"]])


@app.command()
@scope_options
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words")],
    scope: ScopeIds,
    limit: LimitOpt = 10,
    filters: Annotated[str | None, typer.Option(help="JSON filter")] = None,
    threshold: ThresholdOpt = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each signal's rank and score")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find memories by meaning.  Example: memorch search "allergies" --user-id alice"""
    with open_memory() as m:
        result = m.search(
            query,
            **(scope := _default_user(m, scope)),
            limit=limit,
            filters=_json_arg(filters, "--filters"),
            threshold=threshold,
            explain=explain,
        )
    emit(result, as_json, lambda r: memory_table(out, r["results"], with_score=True, scope=scope))


@app.command("list")
@scope_options
def list_(
    scope: ScopeIds,
    limit: LimitOpt = 100,
    filters: Annotated[str | None, typer.Option(help="JSON filter")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List memories, newest first.  Example: memorch list --user-id alice --limit 20"""
    with open_memory() as m:
        scope = _default_user(m, scope)
        result = m.get_all(**scope, limit=limit, filters=_json_arg(filters, "--filters"))
    emit(result, as_json, lambda r: memory_table(out, r["results"], scope=scope))


@app.command()
def get(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Show one memory.  Example: memorch get 3f1c2d4e-..."""
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
    emit(result, as_json, lambda r: out.print(f"{r['event']} {r['id']}  {r['memory']}"))


@app.command()
def delete(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Forget one memory.  Example: memorch delete 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.delete(memory_id, user_id=user_id)
    emit(result, as_json, lambda r: out.print(f"deleted {r['id']}"))


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
    emit(result, as_json, lambda r: out.print(f"{r['event']} {r['id']}  {r['memory']}"))


@app.command()
def history(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Every change to one memory, oldest first.  Example: memorch history 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.history(memory_id, user_id=user_id)

    def render(events: list[dict[str, Any]]) -> None:
        table = Table("when", "event", "old", "new")
        for e in events:
            table.add_row(
                e["updated_at"][:19] if e["updated_at"] else "",
                e["event"],
                e["old_memory"] or "",
                e["new_memory"] or "",
            )
        out.print(table)

    emit(result, as_json, render)


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Counts of memories, history events, graph entities and pending index work."""
    with open_memory() as m:
        result = m.stats()
    emit(result, as_json, lambda r: out.print_json(data=r))


@app.command()
def reindex(
    re_embed: Annotated[bool, typer.Option("--re-embed", help="Recompute embeddings")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even from a ledger smaller than the index")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the search index from the SQLite ledger (no model calls unless --re-embed)."""
    from rich.progress import Progress

    with open_memory() as m, Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("reindexing", total=None)
        result = m.reindex(
            re_embed=re_embed, progress=lambda done, total: bar.update(task, completed=done, total=total), force=force
        )
    emit(result, as_json, lambda r: out.print(f"reindexed {plural(r['memories'], 'memory', 'memories')}"))


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
        table = Table("source", "relationship", "destination", title=f"around {r['entity']}")
        for rel in r["relations"]:
            table.add_row(rel["source"], rel["relationship"], rel["destination"])
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
    """Import memories in batches: `memorch export` files keep their ids and history; --from reads
    another server's export (given scope options replace the source's users). Every item is checked
    first.  Example: memorch import memory.jsonl --from mcp-memory --dry-run"""
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
    """Write memories with ids, metadata, relations and history as JSONL (every scope unless
    one is given); `memorch import` reads the file back.  Example: memorch export backup.jsonl"""
    with open_memory() as m:
        result = m.export_memories(path, user_id=user_id, agent_id=agent_id, run_id=run_id)
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"exported {plural(r['memories'], 'memory', 'memories')} and {plural(r['deleted'], 'deleted one')}"
            f" ({plural(r['history_events'], 'history event')}) to {path}"
        ),
    )


@app.command()
def reprocess(as_json: JsonOpt = False) -> None:
    """Run inference over messages stored verbatim while no model could answer (each once)."""
    with open_memory() as m, err.status("reprocessing"):
        result = m.reprocess()
    emit(
        result,
        as_json,
        lambda r: out.print(f"processed {r['processed']}, failed {r['failed']}, {r['remaining']} still pending"),
    )


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check the data directory, stores, embedder and LLM with one real operation each."""
    with open_memory() as m:
        checks = m.doctor()

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table("check", "status", "detail", "time")
        for c in rows:
            status = "[green]ok[/green]" if c["ok"] else "[red]FAIL[/red]"
            table.add_row(c["name"], status, c["detail"], f"{c['seconds']:.2f}s")
        out.print(table)

    emit(checks, as_json, render)
    if not all(c["ok"] for c in checks):
        raise typer.Exit(1)


app.command("setup")(setup)

from memorch.cli._backup import register_backup  # noqa: E402 - `memorch backup` / `restore-backup`

register_backup(app)

from memorch.cli._ui import register_ui  # noqa: E402 - `memorch ui` lives with its web page

register_ui(app)

from memorch.cli._token import register_token  # noqa: E402 - `memorch token add|list|revoke`

register_token(app)


if __name__ == "__main__":  # python -m memorch.cli (the entry point is launch.main)
    app()
