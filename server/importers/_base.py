"""What every importer shares: the batch it builds, the lines it writes, the checks they pass.

An importer turns a source (a file or a folder) into lines of the ``memorch export`` format
(``transfer.ExportedMemory``): an id, the text, the scope, metadata, timestamps, the relations the
memory states, and one ADD event. ``AsyncMemory.import_memories`` then writes them through the one
bulk path, so ids, timestamps and graph relations land exactly as an export would restore them,
and a line whose id the store has already seen is skipped: importing the same file twice adds
nothing. Ids are the source's own UUIDs where it has them, otherwise derived (UUID5) from the
source's identity of the item and its scope, so the same item always gets the same id.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import memorch.domain._validation as validation
from memorch.domain._records import utc_now
from memorch.errors import MemoryError
from memorch.maintenance._bulk import checked_item
from memorch.maintenance._files import refuse, refuse_all
from memorch.storage.base import SCOPE_KEYS, Scope

NAMESPACE = uuid.UUID("17fd6531-ad9e-4919-a08e-2e75578a5e06")  # memorch's importers; never change it

# The check's stand-in for the scope an import gives an item that names none (the ids an item
# names are checked as given).
CHECKED_SCOPE = Scope(user_id="default")
SEVERAL_BAD_LINES = "fix or remove every line named and import again; nothing was written"


def stable_id(*parts: str | None) -> str:
    """The same parts always give the same memory id."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(p or "" for p in parts)))


def source_uuid(value: Any) -> str | None:
    """The source's id when it is a UUID (then it stays the memory's id), else None."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def timestamp(value: Any, where: str, name: str, *, past: bool = True) -> str | None:
    """ISO 8601 UTC from an ISO string (any offset; none means UTC) or epoch seconds/milliseconds.
    ``past``: a time something was said or changed, so not later than now (a 2030 ``created_at``
    sorted as the newest memory for years: a newcomer's trial); an expiry may be later."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        else:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError, OSError):
        raise refuse(
            where, f"{name} {str(value)[:40]!r} is not a date", "give ISO 8601 dates or epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if past and moment > datetime.now(UTC):
        raise refuse(where, f"{name} {str(value)[:40]!r} is in the future", "give the time it was said, not later")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class Options:
    """How to read a source: scope parts given on the command line win over the source's."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    default_user: str = "default"
    split: str | None = None  # text: "line" | "paragraph" (default by file type)
    max_text_bytes: int = 16_000

    @property
    def owner(self) -> str:
        """The user of a line that names no scope: the import's, or the configured one."""
        return self.user_id or self.default_user

    def scope(self, item: dict[str, Any] | None = None, where: str = "") -> dict[str, str | None]:
        """The scope of ``item`` (one of the source's, at ``where``): an id it names that is not
        text is refused, not replaced by the default user (a ``user_id`` of 5 was)."""
        given = {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id}
        item = item or {}
        for key in SCOPE_KEYS:
            if not given[key] and item.get(key) is not None and not isinstance(item[key], str):
                raise refuse(where, f"{key} {repr(item[key])[:40]} is not a string", f"write {key} as text")
        scope = {k: given[k] or item.get(k) for k in SCOPE_KEYS}
        if not any(scope.values()):
            scope["user_id"] = self.default_user
        return scope


@dataclass
class Batch:
    """A source, converted: the lines to import, where each came from, and what they are."""

    source: str
    items: list[dict[str, Any]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[MemoryError] = field(default_factory=list)  # the source's items that could not be read

    @contextmanager
    def item(self) -> Iterator[None]:
        """Read one of the source's items: its refusal is kept, and the next item is read, so that
        one error names every bad item (``check``) and a file is fixed in one pass."""
        try:
            yield
        except MemoryError as exc:  # refusals name their place (``refuse``); a bug is not one
            self.problems.append(exc)

    def add(self, item: dict[str, Any], where: str, kind: str) -> None:
        self.items.append(item)
        self.where.append(where)
        self.kinds[kind] += 1

    def record(
        self,
        where: str,
        kind: str,
        *,
        memory_id: str,
        text: str,
        scope: dict[str, str | None],
        metadata: dict[str, Any],
        created_at: str | None = None,
        updated_at: str | None = None,
        relations: list[dict[str, Any]] | None = None,
        expires_at: str | None = None,
    ) -> None:
        """One memory as an export line: one ADD event, dated when the source says it was made."""
        created = created_at or updated_at or utc_now()
        updated = updated_at or created
        event = {
            "id": stable_id(memory_id, "ADD"),
            "event": "ADD",
            "old_memory": None,
            "new_memory": text,
            "created_at": created,
            "updated_at": updated,
            "is_deleted": False,
        }
        line = {"id": memory_id, "memory": text, **scope, "metadata": metadata, "created_at": created}
        if expires_at:
            line["expires_at"] = expires_at
        self.add({**line, "updated_at": updated, "relations": relations or [], "history": [event]}, where, kind)

    def check(self, max_text_bytes: int) -> None:
        """Every line passes the checks ``import_memories`` makes (``checked_item``), named by its
        place in the source, all of them in one refusal. Only memorch's own export lines may
        carry memorch's reserved metadata key."""
        problems: list[MemoryError] = list(self.problems)
        for item, where in zip(self.items, self.where, strict=True):
            try:
                if isinstance(item, dict) and "id" in item and self.source != "memorch":
                    validation.metadata(item.get("metadata"))
                checked_item(item, CHECKED_SCOPE, max_text_bytes)
            except MemoryError as exc:
                exc.message = f"{where}: {exc.message}"
                exc.details["where"] = where
                exc.next_step = exc.next_step or "fix or remove that line and import again (nothing was written)"
                problems.append(exc)
        if problems:  # in the source's order: the reader's and the check's were two lists
            problems.sort(key=lambda exc: _place(str(exc.details.get("where", ""))))
            raise refuse_all(problems, SEVERAL_BAD_LINES)

    def locate(self, exc: MemoryError) -> MemoryError:
        """Name the source's file and line instead of the item's position (each of the problems
        ``refuse_all`` listed, too)."""
        for found in [exc.details, *exc.details.get("problems", ())]:
            item = found.get("item")
            if not (isinstance(item, int) and 1 <= item <= len(self.where)):
                continue
            place = found["where"] = self.where[item - 1]
            if line := re.search(r" line (\d+)$", place):
                found["line"] = int(line.group(1))
            exc.message = exc.message.replace(f"item {item}: ", f"{place}: ", 1)
            if "message" in found:  # a problem's own message
                found["message"] = found["message"].replace(f"item {item}: ", f"{place}: ", 1)
        return exc

    def users(self, default: str | None = None) -> dict[str, int]:
        """How many of the lines go to each user (``default``: the user of a line that names no
        scope): an import says whose memories it writes (a file's relations went to the default
        user, its memories to theirs, unsaid)."""
        owners = (item.get("user_id") if "user_id" in item else default for item in self.items)
        return dict(Counter(str(user) for user in owners if user))

    def expired(self) -> int:
        """How many lines have an expiry already past: imported as they were (hidden, removed by
        maintenance), and said, since `get` of one then answers that it expired."""
        now = datetime.now(UTC)
        return sum(1 for item in self.items if _past(item.get("expires_at"), now))

    def summary(self, samples: int = 3, default_user: str | None = None) -> dict[str, Any]:
        return {
            "source": self.source,
            "memories": len(self.items),
            "users": self.users(default_user),
            "expired": self.expired(),
            "relations": sum(len(i.get("relations", ())) for i in self.items),
            "kinds": dict(self.kinds),
            "skipped": dict(self.skipped),
            "samples": [
                {k: i.get(k) for k in ("memory", *SCOPE_KEYS, "metadata", "relations") if i.get(k)}
                for i in self.items[:samples]
            ],
        }


def _place(where: str) -> list[tuple[str, int]]:
    """A place's sort key, its numbers read as numbers: "f.json item 2" before "f.json item 10"."""
    return [(text, int(number or 0)) for text, number in re.findall(r"(\D*)(\d*)", where) if text or number]


def _past(value: Any, now: datetime) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # the check (``checked_item``) refused it already
        return False
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) <= now


def text_field(value: Any, where: str, name: str, suggestion: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise refuse(where, f"{name} is missing or not a non-empty string", suggestion)
    return value.strip()


def add_relation(
    batch: Batch,
    where: str,
    scope: dict[str, str | None],
    triple: tuple[str, str, str],
    types: tuple[str | None, str | None] = (None, None),
    metadata: dict[str, Any] | None = None,
    created_at: str | None = None,
    updated_at: str | None = None,
) -> None:
    """A relation as a memory of its own that states it ("Alice works at Acme"): searchable by its
    words, and deleting it removes exactly that edge (a memory owns the relations it states)."""
    source, relationship, destination = triple
    batch.record(
        where,
        "relation",
        memory_id=stable_id(batch.source, "relation", *scope.values(), *triple),
        text=f"{source} {relationship.replace('_', ' ')} {destination}",
        scope=scope,
        metadata={"imported_from": batch.source, **(metadata or {})},
        created_at=created_at,
        updated_at=updated_at,
        relations=[
            {
                "source": source,
                "source_type": types[0],
                "relationship": relationship,
                "destination": destination,
                "destination_type": types[1],
            }
        ],
    )
