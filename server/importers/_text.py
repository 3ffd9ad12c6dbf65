"""Plain text and Markdown: one memory per line or per paragraph.

The default split follows the file type: Markdown (``.md``, ``.markdown``) by paragraph, since
Markdown prose is wrapped across lines and a line is often half a sentence; anything else by
line, the usual shape of a plain notes file (one fact per line). ``--split line|paragraph``
overrides. In Markdown, front matter and code blocks are left out (code blocks are counted as
skipped), a heading is not a memory but names the ``section`` of what follows, each item of a
list is its own memory, a quote's ``>`` goes, and each row of a table is one memory that names
its columns ("Name: Ana, Role: lead"). A line of invisible characters alone (a zero-width
space) is a blank line, as it looks, not a memory the whole import is refused for. A folder's
empty files add nothing; a source with no text at all is refused, not reported as "imported 0".

These lines have no ids: they go in as plain ``{"memory", "metadata"}`` items, and the bulk
import skips a text the scope already holds (exact text), so importing a file twice adds nothing.
With ``--infer`` each chunk goes through ``add`` and the LLM extracts the facts instead.
"""

from __future__ import annotations

import re
from itertools import zip_longest
from pathlib import Path

from memorch.domain._validation import visible
from memorch.importers._base import Batch, Options, refuse
from memorch.importers._basic_memory import front_matter_end
from memorch.maintenance._files import files, read_text

SPLITS = ("line", "paragraph")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?")
_QUOTE = re.compile(r"^(?:>\s?)+")
_TABLE_RULE = re.compile(r"^\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?$")


def read(path: Path, options: Options) -> Batch:
    if options.split is not None and options.split not in SPLITS:
        raise refuse("--split", f"must be line or paragraph, not {options.split!r}", "pass --split line or paragraph")
    batch = Batch("text")
    scope = options.scope()
    for file in files(path, (".txt", ".md", ".markdown", ".text")):
        markdown = file.suffix.lower() in (".md", ".markdown")
        split = options.split or ("paragraph" if markdown else "line")
        name = str(file.relative_to(path)) if path.is_dir() else file.name
        found = Chunks(markdown, split)
        for number, chunk, section in found.read(read_text(file)):
            metadata = {"imported_from": "text", "file": name, "line": number}
            if section:
                metadata["section"] = section
            batch.add({"memory": chunk, **scope, "metadata": metadata}, f"{file} line {number}", split)
        if found.code_blocks:
            batch.skipped["code block"] += found.code_blocks
    if not batch.items:
        hint = "check the path (an empty file imports nothing)"
        raise refuse(str(path), "holds no text to import", hint, "EMPTY_IMPORT")
    return batch


class Chunks:
    """A file's memories: (first line number, text, Markdown section) of each."""

    def __init__(self, markdown: bool, split: str) -> None:
        self.markdown, self.split = markdown, split
        self.code_blocks = 0
        self.out: list[tuple[int, str, str | None]] = []
        self.block: list[tuple[int, str]] = []
        self.section: str | None = None
        # The table being read: its first row (line number, text, cells) and whether the rule row
        # under it came (only then is it a table, as GitHub's Markdown has it).
        self.header: tuple[int, str, list[str]] | None = None
        self.ruled = False

    def read(self, text: str) -> list[tuple[int, str, str | None]]:
        lines = text.split("\n")
        start = front_matter_end(lines) if self.markdown else 0
        fenced = False
        for number, raw in enumerate(lines[start:], start=start + 1):
            line = raw.strip()
            if self.markdown and line.startswith(("```", "~~~")):
                fenced = not fenced
                self.code_blocks += fenced
                self.flush()
            elif fenced or not visible(line):  # blank, or a zero-width space alone, which looks blank
                self.flush()
            elif self.markdown:
                self.markdown_line(number, raw, line)
            else:
                self.add(number, line)
        self.flush()
        return self.out

    def markdown_line(self, number: int, raw: str, line: str) -> None:
        heading = _HEADING.match(line)
        if heading:
            self.flush()
            self.section = heading.group(1) or None
        elif line.startswith("|"):
            self.table_row(number, line)
        else:
            self.end_table()
            line = _QUOTE.sub("", line).strip()
            raw = _QUOTE.sub("", raw.strip())
            if not visible(line):  # a quote's empty line ends its paragraph
                self.flush()
                return
            item = _LIST.match(raw)
            if item:
                self.flush()
                line = raw[item.end() :].strip()
            if visible(line):  # a list item of a zero-width space alone adds nothing
                self.add(number, line)

    def table_row(self, number: int, line: str) -> None:
        """The first row names the columns, the rule under it is skipped, each row after is a memory
        ("name: Ana, role: lead"; a cell past the named columns is kept unnamed)."""
        cells = [c.strip() for c in line.strip("|").split("|")]
        if self.header is None:
            self.flush()
            self.header, self.ruled = (number, line, cells), False
        elif not self.ruled and _TABLE_RULE.match(line):
            self.ruled = True
        elif not self.ruled:  # no rule under the first row: a line of text, not a table
            self.end_table()
            self.header, self.ruled = (number, line, cells), False
        else:
            pairs = zip_longest(self.header[2], cells, fillvalue="")
            said = [f"{name}: {cell}" if name else cell for name, cell in pairs if cell]
            if said:
                self.out.append((number, ", ".join(said), self.section))

    def end_table(self) -> None:
        if self.header is not None and not self.ruled:
            self.out.append((self.header[0], self.header[1], self.section))
        self.header = None

    def add(self, number: int, line: str) -> None:
        if self.split == "line":
            self.flush()
        self.block.append((number, line))
        if self.split == "line":
            self.flush()

    def flush(self) -> None:
        if self.block:
            self.out.append((self.block[0][0], " ".join(t for _, t in self.block), self.section))
            self.block.clear()
        self.end_table()  # a table ends at a blank line, a heading or other text
