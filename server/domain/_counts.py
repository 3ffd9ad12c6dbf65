"""Counts as English words, for every surface that says one (CLI lines, doctor, tool answers)."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 memory``, ``2 memories``, ``0 duplicates``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def memories(count: int) -> str:
    """``1 memory``, ``3 memories``."""
    return plural(count, "memory", "memories")
