"""How the CLI prints results: what an add or a change did, and tables that fit the terminal.

What ``add`` did says why when it is not the plain outcome: stored as said because no model
answered, pending background inference, a repeat; credentials replaced before storing.

Tables (memories, history, counts) fit the terminal, 80 columns too.
A row never wraps: text longer than its column ends in "…" (``memorch get ID`` or ``--json``
shows it whole; ``history --full-ids`` wraps its text column instead, ``history_table``), times
are local ``YYYY-MM-DD HH:MM``, and ids are whole when the terminal leaves the text ``TEXT_MIN``
columns beside them, else cut to their first 8 characters, which a caption says (``--full-ids``
shows them whole: ``get``, ``history`` and ``restore`` take only a whole id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from memorch.cli._options import out, plural, scope_words

ID_WIDTH = 36  # a UUID
SHORT_ID = 9  # its first 8 characters and "…"
TIME_WIDTH = 16  # YYYY-MM-DD HH:MM
TEXT_MIN = 40  # ids are whole when the text keeps at least this many columns beside them
GAP = 3  # columns between two columns (box.SIMPLE_HEAD without edges)
CUT_IDS = "ids cut to fit: --full-ids shows them whole"


@dataclass(frozen=True)
class Column:
    header: str
    width: int | None = None  # None: the text, which takes the columns left over
    justify: str = "left"
    style: str | None = None


def local_time(stamp: str | None) -> str:
    """An ISO timestamp as local ``YYYY-MM-DD HH:MM``."""
    if not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp[:TIME_WIDTH]
    return (when.astimezone() if when.tzinfo is not None else when).strftime("%Y-%m-%d %H:%M")


def one_line(text: Any, style: str = "") -> Text:
    """Text for a cell or a line: whitespace runs (newlines too) as one space, never markup."""
    return Text(" ".join(str(text or "").split()), style=style)


def fitted_table(console: Console, id_header: str, columns: list[Column], full_ids: bool) -> Table:
    """A table of an id column then ``columns``, as wide as the terminal, whose rows never wrap
    (a caller may let one column fold)."""
    others = sum(c.width or 0 for c in columns)
    gaps = GAP * len(columns)
    cut = not full_ids and console.width - others - gaps - ID_WIDTH < TEXT_MIN
    id_width = SHORT_ID if cut else ID_WIDTH
    flexible = [c for c in columns if c.width is None]
    text_width = max(12, (console.width - others - gaps - id_width) // max(1, len(flexible)))
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
        caption=CUT_IDS if cut else None,
        caption_justify="left",
    )
    table.add_column(id_header, width=id_width, no_wrap=True, overflow="ellipsis", style="dim")
    for c in columns:
        table.add_column(
            c.header,
            width=c.width or text_width,
            no_wrap=True,
            overflow="ellipsis",
            justify=c.justify,  # type: ignore[arg-type]
            style=c.style,
        )
    return table


def memory_table(
    console: Console, rows: list[dict[str, Any]], *, with_score: bool, full_ids: bool, project: str | None = None
) -> None:
    """``list`` / ``search``: id, memory, (score,) updated. ``project``: the one the command works
    for; then a memory of the global layer (seen from every project) says so in its cell."""
    columns = [Column("memory")]
    if with_score:
        columns.append(Column("score", 5, "right"))
    columns.append(Column("updated", TIME_WIDTH, style="dim"))
    table = fitted_table(console, "id", columns, full_ids)
    width = table.columns[1].width
    for row in rows:
        notes = [(" (global)", "cyan")] if project and row.get("layer") == "global" else []
        if row.get("expires_at"):
            notes.append((f" (expires {local_time(row['expires_at'])})", "yellow"))
        cells: list[Any] = [row["id"], with_notes(one_line(row["memory"]), notes, width)]
        if with_score:
            cells.append(f"{row.get('score', 0):.3f}")
        cells.append(local_time(row.get("updated_at")))
        table.add_row(*cells)
    console.print(table)


def with_notes(text: Text, notes: list[tuple[str, str]], width: int | None = None) -> Text:
    """A memory's text and what else to know of it, such as when it expires or that it is in the
    global layer (in its cell: no column of their own, so the table keeps within 80 columns).
    ``width``: the cell's; a long text is shortened so the notes still show."""
    said = sum(len(note) for note, _ in notes)
    if notes and width is not None and len(text) + said > width:
        text.truncate(max(1, width - said), overflow="ellipsis")
    for note, style in notes:
        text.append(note, style=style)
    return text


def history_table(console: Console, events: list[dict[str, Any]], *, full_ids: bool) -> None:
    """``history``: each event's id (for ``restore --event``), when, what, and the memory's text
    after it (for a DELETE, the text deleted, dimmed); then the events' reasons, numbered."""
    columns = [Column("when", TIME_WIDTH, style="dim"), Column("event", 7), Column("memory")]
    table = fitted_table(console, "event id", columns, full_ids)
    if full_ids:  # whole ids leave the text a dozen columns at 80: each version cut alike said nothing
        table.columns[-1].no_wrap, table.columns[-1].overflow = False, "fold"
    for e in events:
        text = one_line(e["new_memory"]) if e.get("new_memory") is not None else one_line(e["old_memory"], "dim")
        table.add_row(e["id"], local_time(e.get("updated_at")), e["event"], text)
    console.print(table)
    # Each event's reason whole, below (in a cell it was cut): what a message's facts are, by id.
    for position, e in enumerate(events, start=1):
        if e.get("reason"):
            console.print(Text.assemble((f"{position}. {e['event']}: ", "bold"), one_line(e["reason"])), soft_wrap=True)


SIGNALS = ("vector", "text", "graph")
SIGNAL_WIDTH = 10  # "#100 0.441"
EXPLAINED = "#rank and relevance in each signal (graph: relations); --json has every number"


def _signal(detail: dict[str, Any] | None, name: str) -> str:
    """A signal's part in one hit: ``#2 0.441`` (rank, calibrated relevance), ``-`` if it missed."""
    if not detail:
        return "-"
    value = detail.get("relations") if name == "graph" else detail.get("relevance", detail.get("scaled"))
    shown = f"{value:g}" if name == "graph" and value is not None else f"{value or 0:.3f}"
    return f"#{detail.get('rank', '?')} {shown}"


def explain_table(console: Console, rows: list[dict[str, Any]]) -> None:
    """``search --explain``: why each hit scored, one row per hit in the results' order: its rank
    and relevance in each signal, the fused value that orders the hits, and the score."""
    columns = [Column(name, SIGNAL_WIDTH) for name in SIGNALS]
    columns += [Column("fused", 5, "right"), Column("score", 5, "right")]
    fixed = sum(c.width or 0 for c in columns) + GAP * len(columns)
    # Whole ids where they fit, else cut: the results' table above says how to see them whole.
    table = fitted_table(console, "id", columns, full_ids=console.width >= ID_WIDTH + fixed)
    table.caption = None
    for row in rows:
        explain = row.get("explain") or {}
        fusion = explain.get("fusion") or {}
        cells = [_signal(explain.get(name), name) for name in SIGNALS]
        table.add_row(row["id"], *cells, f"{fusion.get('fused', 0):.3f}", f"{row.get('score', 0):.3f}")
    console.print(table)
    console.print(Text(EXPLAINED, style="dim"), soft_wrap=True)


def relation_table(console: Console, entity: str, relations: list[dict[str, Any]]) -> None:
    """``graph``: source, relationship, destination; long names wrap inside their column."""
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
        title=one_line(f"around {entity}"),
        title_justify="left",
    )
    for header in ("source", "relationship", "destination"):
        table.add_column(header, ratio=1, overflow="fold")
    for rel in relations:
        table.add_row(one_line(rel["source"]), one_line(rel["relationship"]), one_line(rel["destination"]))
    console.print(table)


def doctor_table(console: Console, checks: list[dict[str, Any]]) -> None:
    """``doctor``: each check, ok or FAIL, what it found (wrapped in its column) and its time."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("check", no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("status", width=6, no_wrap=True)
    table.add_column("detail", ratio=1, overflow="fold")
    table.add_column("time", width=6, no_wrap=True, justify="right", style="dim")
    for c in checks:
        status = Text("ok", style="green") if c["ok"] else Text("FAIL", style="bold red")
        table.add_row(one_line(c["name"]), status, one_line(c["detail"]), f"{c['seconds']:.2f}s")
    console.print(table)


_STATS = {
    "memories": "memories",
    "history_events": "history events",
    "pending_index": "index work pending",
    "pending_inference": "messages awaiting the model",
    "entities": "graph entities",
    "relations": "graph relations",
    "llm_model": "LLM",
    "circuits": "LLM circuits",
}


def stats_table(console: Console, stats: dict[str, Any]) -> None:
    """``stats``: one row per count, in words (its ``problems`` are reported as errors after it)."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in stats.items():
        if key == "problems":
            continue
        if key == "llm_model":
            shown = value or "none (memories are stored as said)"
        elif isinstance(value, dict):
            shown = ", ".join(f"{name} {state}" for name, state in value.items()) or "none"
        else:
            shown = str(value)
        table.add_row(_STATS.get(key, key.replace("_", " ")), Text(shown))
    console.print(table)


def _floor(score: float) -> str:
    """Two decimals, rounded down: a score under the threshold never reads as equal to it."""
    return f"{math.floor(score * 100) / 100:.2f}"


def below_threshold_line(below: dict[str, Any], scope: dict[str, Any], shown: int) -> str:
    """What a search left out under its threshold (the result's ``below_threshold``)."""
    count, threshold = int(below["count"]), float(below["threshold"])
    best = _floor(float(below["best_score"]))
    them = "it" if count == 1 else "them"
    if shown == 0:
        return (
            f"no memory scored {threshold:.2f} or more for {scope_words(scope)} "
            f"({count} below it, best {best}); --threshold 0 shows {them}"
        )
    more = plural(count, "more memory", "more memories")
    return f"{more} scored below {threshold:.2f} (best {best}); --threshold 0 shows {them}"


def _add_note(result: dict[str, Any], event: dict[str, Any]) -> tuple[str, str] | None:
    """Why an add event is not the plain outcome (stored as said, pending, a repeat), and its style."""
    if event["event"] == "ADD" and result.get("degraded"):
        # the model's error, without its suggestion: what to do here is reprocess
        reason = " ".join(str(result.get("reason") or "unknown").split()).partition(". Suggestion: ")[0]
        return (
            # (not "no model answered": a reply out of shape or refused for what it says is one)
            f"stored as said: no usable answer from the model — {reason.rstrip('.')}; "
            "run `memorch reprocess` once one answers",
            "yellow",
        )
    if event["event"] == "ADD" and result.get("pending"):
        # This command ends now: a running server's background inference or `memorch reprocess`
        # comes back to it, not this process (it said "extracted in the background").
        return "pending: `memorch reprocess`, or a running server, extracts its facts", "dim"
    if event["event"] == "NONE" and event.get("reason"):
        return str(event["reason"]), "dim"
    return None


def print_added(result: dict[str, Any]) -> None:
    for event in result["results"]:
        text = one_line(event["memory"])
        stored = event["event"] in ("ADD", "UPDATE")  # the add's expiry is on what it stored
        expiry = result.get("expires_at") if stored else None
        notes = [(f" (expires {local_time(expiry)})", "yellow")] if expiry else []
        line = Text.assemble(f"{event['event']:<6} {event['id']}  ", with_notes(text, notes))
        note = _add_note(result, event)
        if note is not None:
            line.append(f"  ({note[0]})", style=note[1])
        out.print(line, soft_wrap=True)
    if not result["results"] and result.get("reason"):
        out.print(one_line(result["reason"]), soft_wrap=True)
    print_redacted(result)


def print_redacted(result: dict[str, Any]) -> None:
    """Credentials replaced by ``[REDACTED:<kind>]`` before the text was stored."""
    found = result.get("redacted") or []
    if found:
        kinds = ", ".join(f"{r['kind']} ({r['count']})" if r["count"] > 1 else r["kind"] for r in found)
        total = sum(r["count"] for r in found)
        out.print(Text(f"{plural(total, 'credential')} replaced before storing: {kinds}"), soft_wrap=True)


def print_change(r: dict[str, Any]) -> None:
    out.print(Text.assemble(f"{r['event']} {r['id']}  ", one_line(r["memory"])), soft_wrap=True)
    if "expires_at" in r:  # an update that set or removed the expiry
        out.print(f"expires {local_time(r['expires_at'])}" if r["expires_at"] else "never expires", highlight=False)
    print_redacted(r)
