"""Structured tool results (the shapes of DESIGN §2, as pydantic models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class MemoryItem(BaseModel):
    id: str
    memory: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    created_at: str
    updated_at: str
    score: float | None = None
    explain: dict[str, dict[str, float]] | None = None  # per-signal rank and raw score (search only)


class Relation(BaseModel):
    source: str
    relationship: str
    destination: str


class MemoryList(BaseModel):
    results: list[MemoryItem]
    relations: list[Relation] = Field(default_factory=list)


class AddEvent(BaseModel):
    id: str
    memory: str
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    previous_memory: str | None = None


class AddResult(BaseModel):
    results: list[AddEvent]
    relations: dict[str, list[Any]] | None = None
    degraded: bool = False
    reason: str | None = None


class ChangeResult(BaseModel):
    id: str
    memory: str
    event: Literal["UPDATE", "DELETE", "NONE"]
    previous_memory: str | None = None


class HistoryItem(BaseModel):
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: str
    created_at: str
    updated_at: str | None
    is_deleted: bool
    actor_id: str | None = None
    role: str | None = None


class HistoryResult(BaseModel):
    memory_id: str
    events: list[HistoryItem]


class DeleteAllResult(BaseModel):
    deleted: int
    message: str
