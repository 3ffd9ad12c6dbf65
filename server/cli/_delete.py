"""The ``memorch`` commands that remove memories: ``delete`` and ``delete-all`` (the history
stays, ``restore`` brings a memory back) and ``forget`` (a purge: the text and its history are
gone for good, docs/security.md "Forgetting for good").

Examples::

    memorch delete 3f1c2d4e-...
    memorch delete-all --user-id alice --yes
    memorch forget 3f1c2d4e-... 9a2b7c1d-...     # asks first: it cannot be undone
    memorch forget --user-id alice --yes         # every memory of alice, and the history of those deleted before

Both scope-wide commands need the scope on the command line (``MEMORCH_USER_ID`` alone is not
enough), ask before acting on a terminal, and need ``--yes`` without one.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from memorch.cli import _options
from memorch.cli._options import (
    JsonOpt,
    MemoryIdArg,
    UserOpt,
    YesOpt,
    confirm,
    emit,
    memories,
    open_memory,
    out,
    plural,
    print_none,
    scope_options,
    scope_words,
)
from memorch.cli._render import one_line
from memorch.domain._validation import ScopeIds
from memorch.errors import ValidationError

CANNOT_UNDO = "Its text and history are removed; this cannot be undone"


def delete(memory_id: MemoryIdArg, user_id: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Forget one memory (its history stays).  Example: memorch delete 3f1c2d4e-..."""
    with open_memory() as m:
        result = m.delete(memory_id, user_id=user_id)
    emit(result, as_json, lambda r: out.print(f"{'already deleted' if r['event'] == 'NONE' else 'deleted'} {r['id']}"))


def _needs_scope(command: str, what: str) -> ValidationError:
    return ValidationError(
        f"memorch {command} needs {what}; it does not default to MEMORCH_USER_ID",
        error_code="SCOPE_REQUIRED",
        suggestion="pass --user-id (--agent-id or --run-id narrow it); "
        f"`memorch list` with the same options shows what would be {'purged' if command == 'forget' else 'deleted'}",
    )


def _needs_yes(command: str, verb: str) -> ValidationError:
    return ValidationError(
        f"memorch {command} asks before {verb.removesuffix('e')}ing, and there is no terminal to ask on",
        error_code="CONFIRMATION_REQUIRED",
        suggestion=f"pass --yes to {verb} without asking",
    )


@scope_options
def delete_all(scope: ScopeIds, yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Forget every memory of a scope.

    Needs --user-id, --agent-id or --run-id (MEMORCH_USER_ID alone is not enough) and deletes
    every memory of that scope, in every project's layer too (as delete_all_memories: "forget
    everything"). Asks first; with no terminal to ask on it needs --yes. The history stays:
    `memorch restore ID` brings a memory back.
    Example: memorch delete-all --user-id alice --yes"""
    if not any(scope.values()):
        raise _needs_scope("delete-all", "a scope")
    if not yes and not _options.interactive():
        raise _needs_yes("delete-all", "delete")
    with open_memory() as m:
        # The scope as given: MEMORCH_USER_ID is not added (`--run-id X` is that run, whoever's),
        # and every layer, whatever MEMORCH_PROJECT says: "forget everything" (docs/projects.md).
        if not yes:
            count, _ = _scope_counts(m, scope)
            if count:
                every = "all " if count > 1 else ""
                layers = " in every project" if m.config.project else ""  # not only what `list` shows here
                confirm(f"Delete {every}{memories(count)} of {scope_words(scope)}{layers}?", "nothing was deleted")
        result = m.delete_all(**scope)

    def render(r: dict[str, Any]) -> None:
        if r["deleted"]:
            out.print(f"deleted {memories(r['deleted'])} of {scope_words(scope)}", soft_wrap=True, highlight=False)
        else:
            print_none(scope, "; nothing was deleted")

    emit(result, as_json, render)


@scope_options
def forget(
    scope: ScopeIds,
    memory_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="ID", help="Memory ids to purge (none: every memory of the scope given)"),
    ] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Forget for good: the text and its whole history are removed (a purge).

    Unlike delete, nothing is left to restore: the memory's text leaves the ledger, its history,
    the search index and the graph, and no copy stays in the store's files (a ledger
    restore-backup kept, and backups, are copies of your own to delete). Give memory
    ids (a deleted one too), or a scope (--user-id, --agent-id, --run-id) for every memory of it
    and the history of those deleted before. Asks first; with no terminal to ask on it needs --yes.
    Example: memorch forget 3f1c2d4e-... --yes
    Example: memorch forget --user-id alice"""
    if not memory_ids and not any(scope.values()):
        raise _needs_scope("forget", "memory ids or a scope")
    if not yes and not _options.interactive():
        raise _needs_yes("forget", "purge")
    if memory_ids:
        _forget_ids(list(dict.fromkeys(memory_ids)), scope, yes, as_json)
    else:
        _forget_scope(scope, yes, as_json)


def _last_text(events: list[dict[str, Any]]) -> str:
    """A memory's text as its history last had it (a deleted one's: the text deleted)."""
    for event in reversed(events):
        text = event.get("new_memory") or event.get("old_memory")
        if text:
            return str(text)
    return ""


def _forget_ids(ids: list[str], scope: ScopeIds, yes: bool, as_json: bool) -> None:
    narrow = {key: value for key, value in scope.items() if value is not None}
    with open_memory() as m:
        # Every id is checked before any is purged: a typo purges nothing.
        histories = {memory_id: m.history(memory_id, **narrow) for memory_id in ids}
        live = [i for i in ids if histories[i][-1]["event"] != "PURGE"]
        if live and not yes:
            if len(live) == 1:
                text = one_line(_last_text(histories[live[0]])).plain
                confirm(f"Forget {text!r} ({live[0]}) for good? {CANNOT_UNDO}.", "nothing was purged")
            else:
                confirm(f"Forget {memories(len(live))} for good? {CANNOT_UNDO}.", "nothing was purged")
        results = [m.delete(memory_id, purge=True, **narrow) for memory_id in ids]

    def render(rs: list[dict[str, Any]]) -> None:
        purged = [r["id"] for r in rs if r["event"] == "PURGE"]
        before = [r["id"] for r in rs if r["event"] != "PURGE"]
        parts = [f"purged {memories(len(purged))} for good: {', '.join(purged)}"] if purged else []
        if before:
            were = "was" if len(before) == 1 else "were"
            parts.append(f"{plural(len(before), 'memory', 'memories')} {were} already purged: {', '.join(before)}")
        out.print(Text("; ".join(parts)), soft_wrap=True)

    emit(results, as_json, render)


def _scope_counts(m: Any, scope: dict[str, Any]) -> tuple[int, int]:
    """How many memories of the scope a purge removes, and how many deleted ones' history."""
    from memorch.domain import _validation as validation

    where = validation.scope(scope, required=True)
    engine = m.async_memory.engine
    ledger = engine.components.ledger
    return m.run_sync(engine.read(lambda: (len(ledger.ids(where)), len(ledger.deleted_ids(where)))))


def _purge_words(live: int, earlier: int, scope: dict[str, Any], every: bool = False) -> str:
    """What a scope's purge removes, in words: ``3 memories of user_id 'alice' for good, and the
    history of 1 memory deleted before`` (only the history when no memory is live)."""
    where, history = scope_words(scope), f"the history of {plural(earlier, 'memory', 'memories')} deleted before"
    if not live:
        return f"{history} ({where})"
    said = f"{'all ' if every and live > 1 else ''}{memories(live)} of {where} for good"
    return f"{said}, and {history}" if earlier else said


def _forget_scope(scope: ScopeIds, yes: bool, as_json: bool) -> None:
    with open_memory() as m:
        # The scope as given (as delete-all), in every layer, whatever MEMORCH_PROJECT says:
        # forgetting a user leaves no project's copy.
        live, earlier = _scope_counts(m, scope)
        if (live or earlier) and not yes:
            what = _purge_words(live, earlier, scope, every=True)
            layers = " in every project" if m.config.project else ""  # as delete-all asks
            confirm(
                f"Forget {what}{layers}? Their text and history are removed; this cannot be undone.",
                "nothing was purged",
            )
        result = m.delete_all(purge=True, **scope)

    def render(r: dict[str, Any]) -> None:
        if r["deleted"] or earlier:
            out.print(f"purged {_purge_words(r['deleted'], earlier, scope)}", soft_wrap=True, highlight=False)
        else:
            print_none(scope, "; nothing was purged")

    emit(result, as_json, render)


def register_delete(app: typer.Typer) -> None:
    app.command()(delete)
    app.command("delete-all")(delete_all)
    app.command()(forget)
