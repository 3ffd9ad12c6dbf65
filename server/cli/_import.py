"""``memorch import``'s work, kept out of ``_main.py``: read and check the source before the store
is opened (a bad file changes nothing, a dry run touches nothing), then write with a progress bar
on a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from memorch.cli._options import emit, err, memories, open_memory, out, plural
from memorch.config import MemoryConfig
from memorch.domain._validation import ScopeIds
from memorch.importers import load, need_llm, options_for, write


def run(
    path: Path,
    source: str,
    scope: ScopeIds,
    *,
    split: str | None,
    infer: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    from rich.progress import Progress

    config = MemoryConfig()
    if infer:
        need_llm(config, source)
    options = options_for(config, scope, split)
    batch = load(source, path, options)
    if dry_run:
        emit(batch.summary(default_user=options.owner), as_json, lambda r: _report(out, r))
        return
    with open_memory() as m, Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"importing from {source}", total=len(batch.items))
        logged = [0]  # the last ten-thousand said

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)
            # Off a terminal (a log, a pipe), a line now and then: a 50,000-line import was
            # minutes of silence (a newcomer's trial).
            if not err.is_terminal and done // LOGGED_EVERY > logged[0]:
                logged[0] = done // LOGGED_EVERY
                err.print(f"imported {done} of {total}")

        result = m.run_sync(write(m.async_memory, batch, infer=infer, progress=progress, **scope))
    outcome = {**result, "users": batch.users(options.owner), "expired": batch.expired()}
    emit(outcome, as_json, lambda r: out.print(_done(r) + _whose(r), soft_wrap=True))


def _whose(r: dict[str, Any]) -> str:
    """Whose memories the lines are (the file's users, or the one the import gave them), and how
    many had expired already."""
    users = r.get("users") or {}
    shown = ", ".join(f"{user!r} ({n})" for user, n in list(users.items())[:5])
    whose = (f"; for user {shown}" + (f" and {len(users) - 5} more" if len(users) > 5 else "")) if users else ""
    expired = r.get("expired") or 0
    return whose + (f"; {expired} already expired (hidden, removed by maintenance)" if expired else "")


LOGGED_EVERY = 10_000  # lines between two progress lines off a terminal


# What the importers call their items (``Batch.kinds``), when there are several of one.
KIND_PLURALS = {"memory": "memories", "restored": "restored", "deleted memory": "deleted memories"}


def _count(n: int, kind: str) -> str:
    return plural(n, kind, KIND_PLURALS.get(kind))


def _done(r: dict[str, Any]) -> str:
    if "chunks" in r:
        line = f"{plural(r['chunks'], 'chunk')}: {r['added']} added, {r['updated']} updated, {r['unchanged']} unchanged"
        return line + (f", {r['degraded']} stored verbatim (no model answered)" if r["degraded"] else "")
    skipped = "".join(f", skipped {_count(n, kind)}" for kind, n in r.get("skipped", {}).items())
    known = r.get("known_ids", 0)
    kept = "this store has or had them, in any scope; deleted or purged memories keep theirs"
    why = f" ({known} by id: {kept})" if known else ""
    deleted = r.get("deleted", 0)
    what = memories(r["imported"] - deleted)
    if deleted:  # an export's deleted memories: their history came back, for restore
        what += f" and {deleted} deleted (their history, for restore)"
    return f"imported {what}, skipped {plural(r['duplicates'], 'duplicate')}{why}{skipped}"


def _report(out: Console, r: dict[str, Any]) -> None:
    kinds = ", ".join(_count(n, kind) for kind, n in r["kinds"].items()) or "nothing"
    head = f"dry run, nothing written: {memories(r['memories'])} from {r['source']} ({kinds})"
    # A relation is both a memory ("Ana lives in Porto") and a link of the graph: said apart.
    out.print(f"{head}; {plural(r['relations'], 'relation')} for the graph{_whose(r)}", soft_wrap=True)
    for kind, n in r["skipped"].items():
        out.print(f"  would skip {_count(n, kind)}")
    for sample in r["samples"]:
        out.print(f"  e.g. {sample.get('memory')!r}", highlight=False, soft_wrap=True)
    out.print("memories the store already holds are skipped when importing")
