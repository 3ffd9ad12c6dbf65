"""Moving in from other memory servers (``memorch import --from FORMAT FILE_OR_DIR``).

Each module reads one format into a ``Batch`` of lines for ``AsyncMemory.import_memories``
(``_base`` says how): ``_mem0``, ``_openmemory``, ``_mcp_memory`` (the reference MCP memory
server), ``_mcp_memory_service`` (doobidoo's mcp-memory-service), ``_basic_memory`` and
``_text``; ``memorch`` is memorch's own JSONL (``memorch export`` files, or ``{"memory": ...}``
lines). Every line is checked before anything is written.

    from memorch.importers import import_source
    await import_source(memory, "mcp-memory", "memory.jsonl", user_id="alice")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import memorch.domain._validation as validation
import memorch.importers._basic_memory as basic_memory
import memorch.importers._mcp_memory as mcp_memory
import memorch.importers._mcp_memory_service as mcp_memory_service
import memorch.importers._mem0 as mem0
import memorch.importers._openmemory as openmemory
import memorch.importers._text as text
from memorch.domain._validation import ScopeIds
from memorch.errors import ConfigurationError, MemoryError, ValidationError
from memorch.importers._base import Batch, Options, refuse
from memorch.importers._sniff import looks_like, shape_of
from memorch.maintenance._files import json_lines, missing, read_text

if TYPE_CHECKING:
    from memorch.api._async_memory import AsyncMemory
    from memorch.config import MemoryConfig

__all__ = ["FORMATS", "Batch", "Options", "import_source", "load", "options_for", "write"]


def _memorch(path: Path, options: Options) -> Batch:
    suggestion = (
        'write one JSON object per line, like {"memory": "..."}; for another server\'s data, name it: '
        "--from mem0, openmemory, mcp-memory, mcp-memory-service, basic-memory or text"
    )
    text = read_text(path, suggestion="check the path; `memorch export FILE.jsonl` writes a file this command reads")
    _refuse_one_document(path, text, suggestion)
    batch = Batch("memorch")
    for number, item in json_lines(text, str(path), suggestion, code="INVALID_JSONL", objects_only=False):
        if isinstance(item, list):  # a JSON list (mem0's get_all, an API's page): not memorch's JSONL
            raise refuse(
                f"{path} line {number}", "is a JSON list, not one object per line", suggestion, "INVALID_JSONL"
            )
        batch.add(item, f"{path} line {number}", "restored" if isinstance(item, dict) and "id" in item else "memory")
    return batch


def _refuse_one_document(path: Path, text: str, suggestion: str) -> None:
    """A JSON document over several lines (mem0's get_all saved with an indent) is one refusal,
    naming the format when its shape tells: read as JSON Lines it was one error per line, 997
    lines on a terminal for a newcomer's 50,000 memories. JSON Lines of several lines fails this
    parse at its first line's end, so the check costs a line's read."""
    body = text.strip()
    if body[:1] not in ("{", "[") or "\n" not in body:
        return
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSON Lines, or not JSON: read line by line as before
        return
    guess = shape_of(document)
    exc = refuse(
        str(path),
        "is one JSON document over several lines, not JSON Lines (one object per line)",
        f"this looks like {guess} data: import it with --from {guess}" if guess else suggestion,
        "INVALID_JSONL",
    )
    if guess:
        exc.details["looks_like"] = guess
    raise exc


READERS: dict[str, Callable[[Path, Options], Batch]] = {
    "memorch": _memorch,
    "mem0": mem0.read,
    "openmemory": openmemory.read,
    "mcp-memory": mcp_memory.read,
    "mcp-memory-service": mcp_memory_service.read,
    "basic-memory": basic_memory.read,
    "text": text.read,
}
FORMATS = tuple(READERS)


def options_for(config: MemoryConfig, scope_ids: ScopeIds, split: str | None = None) -> Options:
    user_id, agent_id, run_id = (scope_ids.get("user_id"), scope_ids.get("agent_id"), scope_ids.get("run_id"))
    return Options(user_id, agent_id, run_id, config.user_id, split, config.max_text_bytes)


def load(source: str, path: str | Path, options: Options) -> Batch:
    """The source read and checked: a bad item is refused, naming its file and line or item."""
    if source not in READERS:
        raise ValidationError(
            f"unknown import format {source!r}",
            error_code="UNKNOWN_IMPORT_FORMAT",
            suggestion=f"pass --from with one of: {', '.join(FORMATS)}",
        )
    try:  # one answer for every format (a zip reader said "not a zip file"); EACCES too
        Path(path).stat()
    except OSError as exc:
        raise missing(Path(path), exc) from None
    try:
        batch = READERS[source](Path(path), options)
        batch.check(options.max_text_bytes)
    except ValidationError as exc:
        _name_the_format(exc, source, Path(path))
        raise
    return batch


# Formats whose files are no text (a zip, a database): "not UTF-8" is what another reader says.
BINARY_FORMATS = frozenset(("openmemory", "mcp-memory-service"))


def _name_the_format(exc: ValidationError, source: str, path: Path) -> None:
    """When the file looks like another server's: without ``--from`` (memorch's own JSONL) that is
    the likely cause and the hint replaces the generic one; with another ``--from``, it is added
    after what the reader said (also to its items' errors: `--from mem0` on the MCP memory
    server's file named its first line's missing 'memory' and no more, a newcomer's trial). A
    file of the format asked for, with a bad item, is guessed as that format: no hint."""
    guess = looks_like(path)
    if guess is None or guess == source:
        return
    if exc.error_code == "IMPORT_NOT_UTF8" and guess not in BINARY_FORMATS:  # an encoding, not a format
        return
    hint = f"this looks like {guess} data: import it with --from {guess}"
    exc.next_step = hint if source == "memorch" or not exc.next_step else f"{exc.next_step}; or, {hint}"
    exc.details["looks_like"] = guess


def need_llm(config: MemoryConfig, source: str) -> None:
    """``--infer`` runs extraction through ``add``: text sources only, and only with a model."""
    if source != "text":
        raise ValidationError(
            f"--infer works with --from text, not {source}",
            error_code="INFER_NOT_SUPPORTED",
            suggestion=f"drop --infer: {source} memories are facts already and are imported as they are",
        )
    if not config.llm_enabled:
        raise ConfigurationError(
            "--infer needs an LLM to extract facts, and none is configured",
            error_code="LLM_NOT_CONFIGURED",
            suggestion="set MEMORCH_LLM_MODEL (and MEMORCH_LLM_API_BASE / MEMORCH_LLM_API_KEY), "
            "or import without --infer to store each line or paragraph as it is",
        )


async def import_source(
    memory: AsyncMemory,
    source: str,
    path: str | Path,
    *,
    split: str | None = None,
    dry_run: bool = False,
    infer: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **scope_ids: Unpack[ScopeIds],
) -> dict[str, Any]:
    """Import a file or folder of another server's memories; ``dry_run`` only reads and checks it.
    Scope parts given here replace the source's; without them the source's users are kept."""
    validation.scope(scope_ids, required=False, allowed=validation.SCOPE_IDS)  # before anything is read
    if infer:
        need_llm(memory.config, source)
    options = options_for(memory.config, scope_ids, split)
    batch = load(source, path, options)
    if dry_run:
        return batch.summary(default_user=options.owner)
    return await write(memory, batch, infer=infer, progress=progress, **scope_ids)


async def write(
    memory: AsyncMemory,
    batch: Batch,
    *,
    infer: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **scope_ids: Unpack[ScopeIds],
) -> dict[str, Any]:
    """Write a loaded batch through ``import_memories`` (or ``add`` with inference)."""
    if infer:
        return await infer_batch(memory, batch, progress)
    try:
        ids: ScopeIds = {**scope_ids, "user_id": scope_ids.get("user_id") or memory.config.user_id}
        result = await memory.import_memories(batch.items, progress=progress, **ids)
    except MemoryError as exc:
        raise batch.locate(exc) from exc
    return {**result, **({"skipped": dict(batch.skipped)} if batch.skipped else {})}


async def infer_batch(
    memory: AsyncMemory, batch: Batch, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Each chunk through ``add`` with inference: the model extracts and reconciles the facts."""
    counts = {"chunks": len(batch.items), "added": 0, "updated": 0, "deleted": 0, "unchanged": 0, "degraded": 0}
    names = {"ADD": "added", "UPDATE": "updated", "DELETE": "deleted", "NONE": "unchanged"}
    for done, item in enumerate(batch.items, 1):
        scope = ScopeIds(user_id=item.get("user_id"), agent_id=item.get("agent_id"), run_id=item.get("run_id"))
        result = await memory.add(item["memory"], metadata=item["metadata"], infer=True, **scope)
        counts["degraded"] += bool(result.get("degraded"))
        for event in result["results"]:
            counts[names[event["event"]]] += 1
        if progress:
            progress(done, len(batch.items))
    return counts
