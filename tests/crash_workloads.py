"""The workloads a crash victim runs, and the scripted model they talk to.

Each workload drives ``AsyncMemory`` through one kind of write and logs to the ack file what it
is about to do (``begin``, with the ledger transactions the operation will commit, in order:
``expect``) and what it was told (``done``, with the result). ``crash_check.py`` replays the
acknowledged results and allows the one operation in flight to have committed any prefix of its
expected transactions, nothing else.

A transaction is ``{"create": [[text, user]], "set": {id: text}, "delete": [id]}``.

The model is ``respond`` (served by ``tests/fake_llm.py`` in the test process): it answers from
the request alone, so any number of victims can share it. A message ``"<Name>: I live in
<Place>"`` becomes the fact ``"<Name> lives in <Place>"`` with the relation
(Name, lives_in, Place), as an UPDATE of the scope's existing "<Name> lives in ..." memory if the
model is shown one; ``"<Name>: I have left"`` DELETEs that memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memorch import AsyncMemory, MemoryConfig

    from .crash_harness import AckLog, Case
    from .fake_llm import Request

USER = "crash-u1"
OTHER = "crash-u2"
DOWN_MODEL = "down-model"  # the fake server fails every request for it (degraded adds)
BACKGROUND_WORKLOADS = ("background_inference",)

# -- the scripted model ----------------------------------------------------------------------

_SAID = re.compile(r"^user: (\w+): I (?:live in (\w+)|(have left))$", re.MULTILINE)
_EXISTING = re.compile(r"EXISTING MEMORIES:\n(.*?)\n\n", re.DOTALL)


def respond(request: Request) -> dict[str, Any]:
    block = _EXISTING.search(request.prompt)
    existing = {}
    for line in block.group(1).splitlines() if block else []:
        number, _, text = line.partition(": ")
        if number.isdigit():
            existing[int(number)] = text
    conversation = request.prompt.split("CONVERSATION:\n", 1)[-1]
    decisions: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []
    for name, place, left in _SAID.findall(conversation):
        own = next((i for i, text in existing.items() if text.startswith(f"{name} lives in ")), None)
        if left:
            if own is not None:
                decisions.append({"event": "DELETE", "id": own, "reason": f"{name} left"})
            continue
        text = f"{name} lives in {place}"
        decisions.append(
            {"event": "ADD", "text": text} if own is None else {"event": "UPDATE", "id": own, "text": text}
        )
        relations.append(
            {
                "fact": len(decisions) - 1,
                "source": name,
                "source_type": "person",
                "relationship": "lives_in",
                "destination": place,
                "destination_type": "place",
            }
        )
    return {"memory": decisions, "relations": relations}


# -- operations, each logged before and after ------------------------------------------------


def config(case: Case, **overrides: Any) -> MemoryConfig:
    from memorch import MemoryConfig

    settings: dict[str, Any] = dict(
        data_dir=case.data_dir,
        graph="on",
        llm_model="openai/fake-model",
        llm_api_base=case.llm_url,
        llm_api_key="test-key",
        llm_max_retries=0,
        llm_timeout=30,
        circuit_failure_threshold=1000,
        graph_flush_delay=60.0,  # graph work only when a step flushes: call counts stay fixed
        index_flush_delay=0.0,  # vector rows written before each answer: call counts stay fixed
    )
    if case.workload in BACKGROUND_WORKLOADS:  # the victim's and the restart's alike
        settings["background_inference"] = "on"
    settings.update(overrides)
    return MemoryConfig(**settings)


async def template(data_dir: str) -> None:
    """Create the stores of an empty data directory (``crash_harness.make_template``)."""
    from memorch import AsyncMemory, MemoryConfig

    memory = AsyncMemory(MemoryConfig(data_dir=data_dir, graph="on"))
    memory.engine.components.vectors  # noqa: B018 - creates the table, its indexes, the embedder record
    memory.engine.components.graph.counts()  # creates Kuzu's schema
    await memory.close()


class Driver:
    def __init__(self, memory: AsyncMemory, ack: AckLog) -> None:
        self.memory = memory
        self.ack = ack

    async def step(self, op: str, run: Callable[[], Awaitable[Any]], expect: list[dict[str, Any]], **info: Any) -> Any:
        number = self.ack.begin(op, expect=expect, **info)
        result = await run()
        self.ack.done(number, op, result)
        return result

    async def add(
        self, texts: list[str], user: str, infer: bool, expect: list[dict[str, Any]] | None = None
    ) -> list[str]:
        messages = [{"role": "user", "content": t} for t in texts]
        if expect is None:
            expect = [{"create": [[t, user] for t in texts]}]
        result = await self.step(
            "add", lambda: self.memory.add(messages, user_id=user, infer=infer), expect, user=user, texts=texts
        )
        return [r["id"] for r in result["results"]]

    async def update(self, memory_id: str, text: str) -> None:
        await self.step("update", lambda: self.memory.update(memory_id, text), [{"set": {memory_id: text}}])

    async def delete(self, memory_id: str) -> None:
        await self.step("delete", lambda: self.memory.delete(memory_id), [{"delete": [memory_id]}])

    async def restore(self, memory_id: str, text: str) -> None:
        await self.step("restore", lambda: self.memory.restore(memory_id), [{"set": {memory_id: text}}])

    async def delete_all(self, user: str, ids: list[str]) -> None:
        await self.step("delete_all", lambda: self.memory.delete_all(user_id=user), [{"delete": ids}], user=user)

    async def add_pending(self, text: str, facts: dict[str, Any]) -> None:
        """An add acknowledged before inference (background inference): ``facts`` (a
        transaction) replace the stored message later, in one transaction. In flight, the
        message may be stored or not; once stored, the restart's ``flush_inference`` turns it
        into the facts: so the one transaction allowed is the facts with the message retired."""
        await self.step(
            "add",
            lambda: self.memory.add([{"role": "user", "content": text}], user_id=USER, infer=True),
            [{**facts, "retired": [text]}],
            user=USER,
            texts=[text],
        )

    async def flush_graph(self) -> None:
        async def flush() -> Any:
            from memorch.errors import StorageError

            try:
                return await self.memory.flush_graph()
            except StorageError as exc:  # the engine's child killed (a "child" kill point): kept queued
                if exc.error_code != "GRAPH_ERROR":
                    raise
                return {"error": exc.error_code}

        await self.step("flush_graph", flush, [])


# -- the workloads ---------------------------------------------------------------------------


async def verbatim(case: Case, ack: AckLog, pause: float = 0.0, **overrides: Any) -> None:
    """Verbatim adds (one and two messages per call), update, delete, restore, delete_all;
    ``pause``: seconds to wait after the second add (see ``verbatim_deferred``)."""
    from memorch import AsyncMemory

    d = Driver(AsyncMemory(config(case, **overrides)), ack)
    [paula] = await d.add(["Paula keeps bees in the garden"], USER, False)
    omar, _ = await d.add(["Omar collects stamps from Peru", "Omar plays the oboe"], USER, False)
    await asyncio.sleep(pause)
    await d.update(paula, "Paula keeps bees and hens in the garden")
    await d.delete(omar)
    await d.restore(omar, "Omar collects stamps from Peru")
    zoe = await d.add(["Zoe runs marathons in Kenya", "Zoe grows tomatoes on the balcony"], OTHER, False)
    await d.delete_all(OTHER, zoe)
    await d.add(["Ivan bakes sourdough bread on Sundays"], USER, False)
    await d.memory.close()


async def verbatim_deferred(case: Case, ack: AckLog) -> None:
    """The verbatim workload with the default write path: vector rows written after the answer,
    in batches (``index_flush_delay``), so index kill points land in background work. The pause
    (twice the delay) makes the two adds one batch and the rest at least one more, however fast
    the embedder is: the kill points count on a second batch."""
    await verbatim(case, ack, pause=0.1, index_flush_delay=0.05)


async def _inferring(case: Case, ack: AckLog, settle: Callable[[Driver], Awaitable[None]], **overrides: Any) -> None:
    from memorch import AsyncMemory

    d = Driver(AsyncMemory(config(case, **overrides)), ack)
    [alice] = await d.add(["Alice: I live in Paris"], USER, True, [{"create": [["Alice lives in Paris", USER]]}])
    [bob] = await d.add(["Bob: I live in Oslo"], USER, True, [{"create": [["Bob lives in Oslo", USER]]}])
    await settle(d)
    await d.add(["Alice: I live in Rome"], USER, True, [{"set": {alice: "Alice lives in Rome"}}])
    await d.add(["Bob: I have left"], USER, True, [{"delete": [bob]}])
    await settle(d)
    [carol] = await d.add(["Carol: I live in Lima"], USER, True, [{"create": [["Carol lives in Lima", USER]]}])
    await d.update(alice, "Alice lives in Rome with her cat")
    await d.delete(carol)
    await settle(d)
    await d.memory.close()


async def inferring(case: Case, ack: AckLog) -> None:
    """Adds through the model (ADD, UPDATE, DELETE with relations); the graph flushed by hand."""
    await _inferring(case, ack, Driver.flush_graph)


async def inferring_background(case: Case, ack: AckLog) -> None:
    """The same, with the graph following in the background (its debounced flush)."""

    async def pause(d: Driver) -> None:
        await asyncio.sleep(0.4)

    await _inferring(case, ack, pause, graph_flush_delay=0.05)


async def reprocess(case: Case, ack: AckLog) -> None:
    """Adds while the model is down (stored verbatim, pending), then ``reprocess``."""
    from memorch import AsyncMemory

    down = Driver(AsyncMemory(config(case, llm_model=f"openai/{DOWN_MODEL}")), ack)
    said = ["Dana: I live in Lima", "Eve: I live in Kyiv"]
    pending = [(await down.add([text], USER, True))[0] for text in said]
    await down.memory.close()
    d = Driver(AsyncMemory(config(case)), ack)
    expect = [
        {"create": [["Dana lives in Lima", USER]], "delete": [pending[0]]},
        {"create": [["Eve lives in Kyiv", USER]], "delete": [pending[1]]},
    ]
    await d.step("reprocess", d.memory.reprocess, expect)
    await d.flush_graph()
    await d.memory.close()


async def background_inference(case: Case, ack: AckLog) -> None:
    """Background inference: each add is acknowledged with the message stored as said, and the
    worker's one transaction replaces it by the model's facts (ADD, ADD, then an UPDATE)."""
    from memorch import AsyncMemory

    d = Driver(AsyncMemory(config(case)), ack)
    await d.add_pending("Alice: I live in Paris", {"create": [["Alice lives in Paris", USER]]})
    await d.add_pending("Bob: I live in Oslo", {"create": [["Bob lives in Oslo", USER]]})
    await d.step("flush_inference", d.memory.flush_inference, [])
    await d.add_pending("Alice: I live in Rome", {"set_text": {"Alice lives in Paris": "Alice lives in Rome"}})
    await d.step("flush_inference", d.memory.flush_inference, [])
    await d.flush_graph()
    await d.memory.close()


QUINN = "0d4a3b52-6f49-4c55-9a55-2b1c6e3f7a01"
RITA = "0d4a3b52-6f49-4c55-9a55-2b1c6e3f7a02"
SHELVES = 20


def _export_file(folder: Path) -> Path:
    """An export with a live memory (relations, history), a deleted one, and plain lines."""
    at = "2026-01-01T00:00:00+00:00"
    lines: list[dict[str, Any]] = [
        {
            "id": QUINN,
            "memory": "Quinn repairs old clocks",
            "user_id": USER,
            "relations": [{"source": "Quinn", "relationship": "repairs", "destination": "clocks"}],
            "history": [
                {
                    "id": "5e0c1d2a-0000-4000-8000-000000000001",
                    "event": "ADD",
                    "new_memory": "Quinn repairs old clocks",
                    "created_at": at,
                }
            ],
        },
        {
            "id": RITA,
            "deleted": True,
            "user_id": USER,
            "history": [
                {
                    "id": "5e0c1d2a-0000-4000-8000-000000000002",
                    "event": "ADD",
                    "new_memory": "Rita sold her car",
                    "created_at": at,
                },
                {
                    "id": "5e0c1d2a-0000-4000-8000-000000000003",
                    "event": "DELETE",
                    "old_memory": "Rita sold her car",
                    "created_at": at,
                    "is_deleted": True,
                },
            ],
        },
        *(
            {"memory": f"Shelf {i} holds box {i * 7 % SHELVES} of winter clothes", "user_id": USER}
            for i in range(SHELVES)
        ),
    ]
    path = folder / "export.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def _present(memory: AsyncMemory) -> list[dict[str, Any]]:
    """An import's acknowledgement: the ids it left (the bulk import's result only counts)."""
    listed = await memory.get_all(user_id=USER, limit=1000)
    return [{"id": r["id"], "memory": r["memory"], "event": "PRESENT"} for r in listed["results"]]


def import_expectation() -> list[dict[str, Any]]:
    plain = [[f"Shelf {i} holds box {i * 7 % SHELVES} of winter clothes", USER] for i in range(SHELVES)]
    return [{"create": plain, "set": {QUINN: "Quinn repairs old clocks"}, "dead": [RITA]}]


async def importing(case: Case, ack: AckLog) -> None:
    """A JSONL import (one batch, with background index maintenance after it), an explicit
    maintenance pass, a graph flush, a full ``reindex``, an update and a last add."""
    from memorch import AsyncMemory
    from memorch.importers import import_source

    path = _export_file(Path(case.data_dir).parent)
    d = Driver(AsyncMemory(config(case)), ack)

    async def run_import() -> dict[str, Any]:
        return {**await import_source(d.memory, "memorch", path), "results": await _present(d.memory)}

    await d.step("import", run_import, import_expectation(), dead=[RITA])
    await d.step("maintain", lambda: asyncio.to_thread(d.memory.engine.components.vectors.maintain_now), [])
    await d.flush_graph()
    await d.step("reindex", d.memory.reindex, [])
    await d.update(QUINN, "Quinn repairs old clocks and watches")
    await d.add(["Sam paints with watercolours"], USER, False)
    await d.flush_graph()
    await d.memory.close()


async def importing_inferred(case: Case, ack: AckLog) -> None:
    """``import --from text --infer``: each line an add through the model, one commit each."""
    from memorch import AsyncMemory
    from memorch.importers import import_source

    path = Path(case.data_dir).parent / "notes.txt"
    path.write_text("Tom: I live in Rome\nUma: I live in Oslo\nTom: I live in Bern\n")
    d = Driver(AsyncMemory(config(case)), ack)
    expect = [
        {"create": [["Tom lives in Rome", USER]]},
        {"create": [["Uma lives in Oslo", USER]]},
        {"set_text": {"Tom lives in Rome": "Tom lives in Bern"}},
    ]

    async def run_import() -> dict[str, Any]:
        result = await import_source(d.memory, "text", path, user_id=USER, infer=True)
        return {**result, "results": await _present(d.memory)}

    await d.step("import", run_import, expect)
    await d.flush_graph()
    await d.memory.close()


WORKLOADS: dict[str, Callable[[Case, AckLog], Awaitable[None]]] = {
    "verbatim": verbatim,
    "verbatim_deferred": verbatim_deferred,
    "inferring": inferring,
    "inferring_background": inferring_background,
    "background_inference": background_inference,
    "reprocess": reprocess,
    "importing": importing,
    "importing_inferred": importing_inferred,
}
