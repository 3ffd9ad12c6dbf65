"""Reading a JSONL file for ``memorch import``: every problem names the file's line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import MemoryError, ValidationError


def read_jsonl(path: Path) -> tuple[list[Any], list[int]]:
    """The file's JSON values and the line each came from; a bad file names the line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}",
            error_code="IMPORT_FILE_UNREADABLE",
            details={"path": str(path)},
            suggestion="check the path; `memorch export FILE.jsonl` writes a file this command reads",
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValidationError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})",
            error_code="IMPORT_NOT_UTF8",
            details={"path": str(path), "line": line},
            suggestion="convert the file to UTF-8 (e.g. `iconv -t UTF-8`), one JSON object per line",
        ) from exc
    items: list[Any] = []
    numbers: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 is valid inside JSON
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{path} line {number} is not valid JSON: {exc.msg} (column {exc.colno})",
                error_code="INVALID_JSONL",
                details={"path": str(path), "line": number},
                suggestion='write one JSON object per line, like {"memory": "..."}',
            ) from exc
        numbers.append(number)
    return items, numbers


def at_line(exc: MemoryError, path: Path, line_numbers: list[int]) -> MemoryError:
    """Name the file's line instead of the item's position (blank lines are skipped)."""
    item = exc.details.get("item")
    if isinstance(item, int) and 1 <= item <= len(line_numbers):
        line = line_numbers[item - 1]
        exc.details["line"] = line
        exc.message = re.sub(rf"^item {item}: ", "", exc.message)
        exc.message = f"{path} line {line}: {exc.message}"
    return exc
