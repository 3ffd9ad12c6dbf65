"""Plain text and Markdown: one memory per line or per paragraph.

The default split follows the file type: Markdown (``.md``, ``.markdown``) by paragraph, since
Markdown prose is wrapped across lines and a line is often half a sentence; anything else by
line, the usual shape of a plain notes file (one fact per line). ``--split line|paragraph``
overrides. In Markdown, front matter and code blocks are left out, a heading is not a memory but
names the ``section`` of what follows, and each item of a list is its own memory.

These lines have no ids: they go in as plain ``{"memory", "metadata"}`` items, and the bulk
import skips a text the scope already holds (exact text), so importing a file twice adds nothing.
With ``--infer`` each chunk goes through ``add`` and the LLM extracts the facts instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from memorch.importers._base import Batch, Options, refuse
from memorch.importers._basic_memory import front_matter
from memorch.maintenance._files import files, read_text

SPLITS = ("line", "paragraph")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?")


def read(path: Path, options: Options) -> Batch:
    if options.split is not None and options.split not in SPLITS:
        raise refuse("--split", f"must be line or paragraph, not {options.split!r}", "pass --split line or paragraph")
    batch = Batch("text")
    scope = options.scope()
    for file in files(path, (".txt", ".md", ".markdown", ".text")):
        markdown = file.suffix.lower() in (".md", ".markdown")
        split = options.split or ("paragraph" if markdown else "line")
        name = str(file.relative_to(path)) if path.is_dir() else file.name
        for number, chunk, section in chunks(read_text(file), markdown, split):
            metadata = {"imported_from": "text", "file": name, "line": number}
            if section:
                metadata["section"] = section
            batch.add({"memory": chunk, **scope, "metadata": metadata}, f"{file} line {number}", split)
    return batch


def chunks(text: str, markdown: bool, split: str) -> list[tuple[int, str, str | None]]:
    """(first line number, text, Markdown section) of each memory."""
    lines = text.split("\n")
    start = front_matter(lines)[1] if markdown else 0
    out: list[tuple[int, str, str | None]] = []
    block: list[tuple[int, str]] = []
    section = None
    fenced = False

    def flush() -> None:
        if block:
            out.append((block[0][0], " ".join(t for _, t in block), section))
            block.clear()

    for number, raw in enumerate(lines[start:], start=start + 1):
        line = raw.strip()
        if markdown and line.startswith(("```", "~~~")):
            fenced = not fenced
            flush()
            continue
        if not line or fenced:
            flush()
            continue
        heading = _HEADING.match(line) if markdown else None
        if heading:
            flush()
            section = heading.group(1) or None
            continue
        item = _LIST.match(raw) if markdown else None
        if item or split == "line":
            flush()
            line = raw[item.end() :].strip() if item else line
        if line:
            block.append((number, line))
        if split == "line":
            flush()
    flush()
    return out
