"""A call to a tool this server does not have: the one error form, naming the nearest tool.

The SDK's own answer was a bare ``Unknown tool: NAME``, which leaves a model no next step; a
model that knows another memory server's tools (``store_memory``, ``search_nodes``) calls them.
"""

from __future__ import annotations

import difflib
import re

from memorch.errors import ValidationError


def unknown_tool(name: str, tools: list[str]) -> ValidationError:
    """The error for a call to ``name``: ``tools`` in ``details``, the nearest as the next step
    (``nearest_tool``). The name is cut to 80 characters: it is the caller's text."""
    known = sorted(tools)
    shown = name[:80]
    nearest = nearest_tool(shown, known)
    return ValidationError(
        f"this server has no tool named {shown!r}",
        error_code="UNKNOWN_TOOL",
        details={"tool": shown, "tools": known},
        suggestion=f"call {nearest}, or another of the tools in details.tools"
        if nearest
        else "call one of the tools in details.tools (tools/list describes them)",
    )


def nearest_tool(name: str, tools: list[str]) -> str | None:
    """The tool that shares the most words with ``name`` ("memory" aside, which they all say; a
    peer's verb read as ours: ``store_memory`` is ``add_memory``, ``retrieve_memory`` and
    ``search_nodes`` ``search_memories``), the one with fewest other words among those (so
    ``delete_entities`` is ``delete_memory``, never ``delete_all_memories``), then the closest in
    spelling; with no word shared, a close misspelling or none."""
    asked = _tool_words(name)

    def closeness(tool: str) -> tuple[int, int, float]:
        words = _tool_words(tool)
        return (len(asked & words), -len(words - asked), difflib.SequenceMatcher(None, name, tool).ratio())

    best = max(tools, key=closeness, default=None)
    if best is not None and closeness(best)[0]:
        return best
    close = difflib.get_close_matches(name, tools, n=1, cutoff=0.75)
    return close[0] if close else None


# Peers' verbs for what a memorch tool does (the reference server's, mcp-memory-service's, mem0's).
_SAME_VERB = {
    "store": "add", "save": "add", "remember": "add", "create": "add", "insert": "add",
    "retrieve": "search", "recall": "search", "find": "search", "query": "search",
    "remove": "delete", "erase": "delete", "edit": "update", "modify": "update",
}  # fmt: skip


def _tool_words(name: str) -> set[str]:
    words = {word.removesuffix("s") for word in re.split(r"[^a-z]+", name.lower()) if word}
    return {_SAME_VERB.get(word, word) for word in words} - {"memory", "memorie"}
