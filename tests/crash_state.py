"""What a data directory holds after a crash and restart, as plain JSON for ``crash_check.py``.

``collect`` opens the directory with a new ``AsyncMemory`` (a restart) and asks ``stats``
first: that is the product's own settling step (owed vector work replayed, the graph outbox
drained). Then it reads every store: the ledger through its export pages (live memories with
their relations and history, deleted ones as history), LanceDB's rows, Kuzu's nodes and edges,
and a search for each live memory's text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memorch.storage.base import Scope

if TYPE_CHECKING:
    from .crash_harness import Case

SEARCH_LIMIT = 5  # a memory searched by its own text must come back among this many


def _graph(memory: Any) -> dict[str, list[Any]]:
    from memorch.storage.graph import KuzuGraph

    # Read straight from Kuzu, in this process (the product's graph runs in a child process):
    # the test looks for what is left behind.
    parts = memory.engine.components
    graph = KuzuGraph(parts.graph_path, parts.graph_lock_path)
    with graph._session() as conn:
        rows = graph._rows
        return {
            "relates": [list(r) for r in graph.snapshot()],
            "memories": sorted(r[0] for r in rows(conn, "MATCH (m:Memory) RETURN m.id")),
            "mentions": sorted(
                list(r) for r in rows(conn, "MATCH (m:Memory)-[:MENTIONS]->(e:Entity) RETURN m.id, e.key")
            ),
            "entities": sorted(r[0] for r in rows(conn, "MATCH (e:Entity) RETURN e.key")),
        }


async def collect(case: Case) -> dict[str, Any]:
    from memorch import AsyncMemory

    from .crash_workloads import config

    memory = AsyncMemory(config(case))
    stats = await memory.stats()
    # Background inference resumes what the victim left pending; its facts' graph work follows.
    inference = await memory.flush_inference()
    await memory.flush_graph()
    ledger = memory.engine.components.ledger
    rows = [row for page in ledger.export_pages(Scope()) for row in page]
    vectors = memory.engine.components.vectors
    found: dict[str, list[str]] = {}
    for row in rows:
        if not row.get("deleted"):
            hits = await memory.search(row["memory"], user_id=row["user_id"], limit=SEARCH_LIMIT, threshold=0)
            found[row["id"]] = [h["id"] for h in hits["results"]]
    state = {
        "stats": {k: v for k, v in stats.items() if k != "circuits"},
        "rows": rows,
        "vector_ids": sorted(vectors.all_ids()),
        "vector_rows": vectors.count(),
        "pending": {target: ledger.pending(target) for target in ("vectors", "graph")},
        "pending_inference": inference["pending_inference"],
        "graph": _graph(memory),
        "search": found,
    }
    await memory.close()
    return state
