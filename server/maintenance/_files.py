"""Reading files to import (another server's export, or memorch's own): every problem names the
file and its line. The importers read their sources with it, and ``AsyncMemory.import_memories``
the file ``export_memories`` wrote."""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from memorch.errors import MemoryError, ValidationError

E = TypeVar("E", bound=MemoryError)


# Problems named in one refusal's message, and listed in its details (a file with many bad lines
# is fixed in one pass, not one run per line; the list is capped so a refusal stays small).
SAID_IN_MESSAGE = 5
LISTED_IN_DETAILS = 1000


def refuse(where: str, message: str, suggestion: str, code: str = "INVALID_IMPORT_ITEM") -> ValidationError:
    return ValidationError(f"{where}: {message}", error_code=code, details={"where": where}, suggestion=suggestion)


def refuse_all(errors: Sequence[E], several: str | None = None) -> E:
    """One refusal for every problem a check found: the first one's code and details, its
    message followed by the next few, ``details.problems`` (each one's ``where`` or ``item``,
    ``error_code`` and ``message``; the first ``LISTED_IN_DETAILS``) and
    ``details.problem_count``; ``several``: the next step when there are several (else the
    first one's)."""
    first = errors[0]
    listed = [_problem(e) for e in errors[:LISTED_IN_DETAILS]]  # before the first's message grows
    more = [e.message for e in errors[1:SAID_IN_MESSAGE]]
    left = len(errors) - SAID_IN_MESSAGE
    first.message = "; ".join([first.message, *more]) + (f"; and {left} more" if left > 0 else "")
    first.details["problem_count"] = len(errors)
    first.details["problems"] = listed
    if several is not None and len(errors) > 1:
        first.next_step = several
    return first


# Longest first: UTF-32's little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_text(path: Path, data: bytes | None = None, suggestion: str = "check the path and the --from format") -> str:
    """A file's text; unreadable or non-UTF-8 files are refused with their name (and line)."""
    try:
        raw = path.read_bytes() if data is None else data
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror or exc}",
            error_code="IMPORT_FILE_UNREADABLE",
            details={"path": str(path)},
            suggestion=suggestion,
        ) from exc
    # A byte order mark says the encoding: UTF-16 is what Windows tools ("Unicode" in Notepad,
    # PowerShell's Out-File) write. Without one, UTF-8 alone: a guess at legacy encodings
    # could silently turn text into other characters.
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), "utf-8-sig")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        said = encoding.upper().removesuffix("-SIG")
        fix = (
            "convert the file to UTF-8 from its encoding, e.g. "
            f"`iconv -f WINDOWS-1252 -t UTF-8 {path.name} > {path.stem}-utf8{path.suffix}`"
            if said == "UTF-8"
            else f"the file starts as {said} but is damaged there: save it again as UTF-8"
        )
        raise refuse(
            f"{path} line {line}", f"is not {said} text (byte 0x{raw[exc.start]:02x})", fix, "IMPORT_NOT_UTF8"
        ) from exc


def parse_json(text: str, name: str, suggestion: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise refuse(f"{name} line {exc.lineno}", f"is not valid JSON: {exc.msg}", suggestion, "INVALID_JSON") from exc


def _problem(error: MemoryError) -> dict[str, Any]:
    """One entry of ``details.problems``: where (or which item), its code and message."""
    placed = {key: error.details[key] for key in ("where", "item") if key in error.details}
    return {**placed, "error_code": error.error_code, "message": error.message}


def json_lines(
    text: str, name: str, suggestion: str, *, code: str = "INVALID_JSON", objects_only: bool = True
) -> list[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSONL text; ``objects_only``: each value
    must be a JSON object (otherwise the caller checks each item itself). Every bad line is named
    in one refusal (``refuse_all``)."""
    out, problems = [], []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 is valid in JSON
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            message = f"is not valid JSON: {exc.msg} (column {exc.colno})"
            problems.append(refuse(f"{name} line {number}", message, suggestion, code))
            continue
        if objects_only and not isinstance(value, dict):
            problems.append(refuse(f"{name} line {number}", "is not a JSON object", suggestion))
            continue
        out.append((number, value))
    if problems:
        raise refuse_all(problems)
    return out


def files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files to read: the path itself, or a folder's matching files (hidden ones skipped), sorted."""
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in suffixes
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise refuse(str(path), f"has no {'/'.join(suffixes)} files", "point at a file or a folder of notes")
        return found
    if not path.exists():
        raise missing(path)
    return [path]


def missing(path: Path, exc: OSError | None = None) -> ValidationError:
    """An import source that is not there, or cannot be reached (``exc``), said alike for every format."""
    why = (exc.strerror or str(exc)) if exc is not None else "No such file or directory"
    return ValidationError(
        f"cannot read {path}: {why}",
        error_code="IMPORT_FILE_UNREADABLE",
        details={"path": str(path)},
        suggestion="check the path",
    )
