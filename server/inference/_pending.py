"""Messages stored as said, waiting for inference, and the work that turns them into facts.

Two ways a message waits (``_memorch.pending_inference`` in its metadata):

- **degraded**: no model could answer an ``add``; ``memorch reprocess`` (or the background
  worker, when it runs) infers later.
- **background** (``MEMORCH_BACKGROUND_INFERENCE=on``, the default of ``memorch serve``): ``add``
  acknowledges once the messages are durable and searchable, and ``BackgroundInference`` runs the
  one model call after. The messages of one ``add`` form a batch (``_memorch.batch``) and are
  inferred together, with their roles and dates, as the waiting path would have.

Either way one transaction stores the facts and deletes the messages they came from, after
checking under the write lock that those messages are unchanged and still pending
(``inference.apply``): a second worker, a rerun or a crash and restart never processes one twice,
and a search never sees both a message and the facts extracted from it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from memorch.domain._expiry import with_expiry
from memorch.domain._messages import Message
from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.errors import AuthenticationError, ConfigurationError, MissingCredentialsError, NetworkError
from memorch.inference._plan import Plan, infer
from memorch.models._llm import MODEL_FAILURES
from memorch.results import AddEvent, ReprocessResult
from memorch.storage.base import MemoryRecord

if TYPE_CHECKING:
    from memorch.engine._engine import Engine

log = logging.getLogger("memorch.pending")
BATCH_FETCH = 1000  # pending messages read per round
# Failures of the model, not of a batch: every batch after would meet them too.
EVERY_BATCH_FAILURES = (NetworkError, AuthenticationError, MissingCredentialsError)
RETRY_FIRST, RETRY_MAX = 5.0, 300.0  # seconds before the worker tries a failing model again


def batches(records: list[MemoryRecord]) -> list[list[MemoryRecord]]:
    """Pending records (oldest first) grouped by the ``add`` that stored them; a degraded
    message without a batch is its own group."""
    grouped: dict[str, list[MemoryRecord]] = {}
    for record in records:
        grouped.setdefault(_marks(record).get("batch") or record.id, []).append(record)
    return [sorted(batch, key=lambda r: _marks(r).get("part", 0)) for batch in grouped.values()]


def _marks(record: MemoryRecord) -> dict[str, Any]:
    return record.metadata.get(RESERVED_METADATA_KEY, {})


async def process(engine: Engine, batch: list[MemoryRecord]) -> Plan:
    """One model call over one batch; its facts replace its messages in one transaction.
    Raises a MODEL_FAILURES error when no model answers (the batch stays pending)."""
    first = batch[0]
    metadata = {k: v for k, v in first.metadata.items() if k != RESERVED_METADATA_KEY}
    metadata = with_expiry(metadata, first.expires_at)  # the add's expiry goes on to its facts
    messages = []
    for record in batch:
        marks = _marks(record)
        messages.append(Message(marks.get("role") or "user", record.memory, timestamp=marks.get("said_at")))
    return await infer(engine, messages, first.scope, metadata, retire=batch)


async def reprocess_pending(engine: Engine, limit: int) -> ReprocessResult:
    """Infer over pending messages, batch by batch, each at most once. A batch the model fails
    stays pending and its error is returned (``last_error``); one no batch can escape (the model
    unreachable, credentials refused or missing) ends the run there, rather than meeting it again
    for every batch (a newcomer waited 24 s for three refused connections)."""
    ledger = engine.components.ledger
    pending = await engine.workers.read(ledger.pending_inference, limit)
    if pending and not engine.config.llm_enabled:  # nothing to do is no failure, with or without a model
        raise ConfigurationError(
            "reprocessing needs an LLM",
            error_code="LLM_NOT_CONFIGURED",
            suggestion="set MEMORCH_LLM_MODEL (and MEMORCH_LLM_API_BASE if needed)",
        )
    processed, failed, found_nothing = 0, 0, []
    results: list[AddEvent] = []
    last_error: dict[str, Any] | None = None
    for batch in batches(pending):
        try:
            plan = await process(engine, batch)
        except MODEL_FAILURES as exc:
            log.warning("reprocess of %s failed, left pending: %s", [r.id for r in batch], exc)
            failed, last_error = failed + len(batch), exc.to_dict()
            if isinstance(exc, EVERY_BATCH_FAILURES):
                break
            continue
        if not plan.skipped:
            processed += len(batch)
            found_nothing += [] if plan.results else [r.id for r in batch]
            results.extend(plan.results)
    remaining = (await engine.workers.read(ledger.counts))["pending_inference"]
    return ReprocessResult(
        processed=processed,
        found_nothing=found_nothing,
        failed=failed,
        remaining=remaining,
        last_error=last_error,
        results=results,
    )


class BackgroundInference:
    """The server's worker for pending messages: one task on the event loop, woken by ``kick``
    (each deferred ``add``, and the first use after a start, so a crash's leftovers resume).
    A model failure leaves the work pending and retries later with a growing pause, except when no
    configured model has its API key: retrying cannot make one appear, so the worker says so once
    and stops (the messages stay stored as said) until ``kick(again=True)`` (``flush_inference``:
    a library may set the key meanwhile) or the next start; ``memorch reprocess`` infers them once
    a key is set. Any other exception is a bug: logged with its traceback, and the worker stops
    until the next kick."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._retry = RETRY_FIRST
        self._closed = False
        self._no_key = False
        self.last_error: str | None = None

    def kick(self, again: bool = False) -> None:
        """Make sure the worker runs (call from the event loop); ``again``: also after it stopped
        for a missing key."""
        self._no_key = self._no_key and not again
        if self._closed or self._no_key:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def idle(self) -> None:
        """Wait until the worker has nothing left it can do now."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                more, failed = await self._round()
                if self._no_key:
                    log.warning("background inference stopped: %s (messages stay stored as said)", self.last_error)
                    return
                if failed:
                    self._retry_later()
                    return
                if not (more or self._again):
                    return
                self._again = False
        except Exception:  # noqa: BLE001, RUF100 - a bug: logged here (a task has no caller), then re-raised
            log.exception("background inference stopped by an unexpected error (pending work is kept)")
            raise

    def _retry_later(self) -> None:
        log.warning("background inference failed, retrying in %.0f s: %s", self._retry, self.last_error)
        delay, self._retry = self._retry, min(self._retry * 2, RETRY_MAX)
        asyncio.get_running_loop().call_later(delay, self.kick)

    async def _round(self) -> tuple[bool, bool]:
        """Process what is pending now: (a full fetch, so more may wait; some batch failed).
        A failing batch is left pending and the others still go ahead."""
        engine = self._engine
        pending = await engine.workers.read(engine.components.ledger.pending_inference, BATCH_FETCH)
        groups = batches(pending)
        if len(pending) == BATCH_FETCH and len(groups) > 1:
            groups = groups[:-1]  # the last batch may continue past this fetch
        failed = False
        for batch in groups:
            try:
                plan = await process(engine, batch)
            except MODEL_FAILURES as exc:
                failed, self.last_error = True, str(exc)
                # Every batch would meet it (with fallbacks the error is theirs together; the
                # check asks each model, LiteLLM being loaded by now).
                missing = (
                    exc if isinstance(exc, MissingCredentialsError) else engine.components.llm.missing_credentials()
                )
                if missing is not None:
                    self._no_key, self.last_error = True, str(missing)
                    break
                continue
            self._retry, self.last_error = RETRY_FIRST, None
            self._again = self._again or plan.skipped  # edited meanwhile: read it again
        return len(pending) == BATCH_FETCH, failed
