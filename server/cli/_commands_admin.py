"""The ``memorch`` commands about the whole store: ``stats``, ``reindex``, ``reprocess``, ``doctor``,
``maintain``."""

from __future__ import annotations

from typing import Annotated

import typer

from memorch.cli._options import JsonOpt, emit, err, memories, open_memory, out, plural
from memorch.cli._render import doctor_table, stats_table


def stats(as_json: JsonOpt = False) -> None:
    """Counts of memories, history and pending work; the LLM.

    A table; --json for the numbers as JSON.  Example: memorch stats --json"""
    with open_memory() as m:
        result = m.stats()
    emit(result, as_json, lambda r: stats_table(out, r))
    if result["problems"]:  # the counts above, then what failed, and exit 1
        from memorch.cli._errors import report_fields

        for problem in result["problems"]:
            report_fields(problem)
        raise typer.Exit(1)


def reindex(
    re_embed: Annotated[bool, typer.Option("--re-embed", help="Recompute embeddings")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even from a ledger smaller than the index")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the search index from the SQLite ledger.

    No model calls unless --re-embed.  Example: memorch reindex --re-embed"""
    from rich.progress import Progress

    with open_memory() as m, Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("reindexing", total=None)
        result = m.reindex(
            re_embed=re_embed, progress=lambda done, total: bar.update(task, completed=done, total=total), force=force
        )
    emit(result, as_json, lambda r: out.print(f"reindexed {memories(r['memories'])}"))


def reprocess(as_json: JsonOpt = False) -> None:
    """Extract facts from messages stored while no model answered.

    Each message once; those the model still cannot answer stay pending, and the model's error
    is said (exit code 1). Example: memorch reprocess"""
    with open_memory() as m, err.status("reprocessing"):
        result = m.reprocess()
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"processed {plural(r['processed'], 'message')}{_found_nothing(r['found_nothing'])}, "
            f"{r['failed']} failed, {r['remaining']} still pending",
            soft_wrap=True,
        ),
    )
    if (failure := result["last_error"]) is not None:
        from memorch.cli._errors import report_fields

        report_fields(failure)
        raise typer.Exit(1)


def _found_nothing(ids: list[str]) -> str:
    """Messages reprocess deleted because the model found nothing to keep: said, with the way back."""
    if not ids:
        return ""
    named = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    return f" ({len(ids)} with nothing worth remembering, deleted: `memorch restore ID` brings one back: {named})"


def doctor(as_json: JsonOpt = False) -> None:
    """Check each part with one real operation.

    The data directory, the stores, the embedder and the LLM; exits 1 if one fails.
    Example: memorch doctor"""
    with open_memory() as m:
        checks = m.doctor()

    emit(checks, as_json, lambda rows: doctor_table(out, rows))
    if not all(c["ok"] for c in checks):
        raise typer.Exit(1)


def maintain(as_json: JsonOpt = False) -> None:
    """Purge expired memories now, and old history text (MEMORCH_HISTORY_RETENTION).

    A running server does this by itself hourly; one line says what went.
    Example: memorch maintain"""
    with open_memory() as m:
        result = m.maintain()
    emit(
        result,
        as_json,
        lambda r: out.print(
            f"purged {plural(r['expired'], 'expired memory', 'expired memories')};"
            f" cleared the text of {plural(r['history_events_cleared'], 'old history event')}"
        ),
    )


def register_admin(app: typer.Typer) -> None:
    for command in (stats, reindex, reprocess, doctor, maintain):
        app.command()(command)
