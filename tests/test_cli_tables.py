"""The CLI's output on 80 columns and `memorch list` paging (issue 28 items 6 and 7): every page
of a scope reached through `--cursor` or `--all`, `search --explain` readable as a table, and
`doctor` and `graph` tables with no line over 80 characters. Through typer's runner, on real
data directories."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from memorch import Memory, MemoryConfig

from .test_cli import added_id, invoke

MANY = 2_500


def test_list_reaches_every_memory_page_by_page(tmp_path: Path) -> None:
    """2,500 memories of one user, imported in one batch (so many share a created_at): the cursor
    pages and --all list each exactly once."""
    with Memory(MemoryConfig(data_dir=tmp_path, graph="off", embedder="static")) as m:
        done = m.import_memories(
            [{"memory": f"Fact number {i} about topic {i % 37}"} for i in range(MANY)], user_id="u"
        )
        assert done["imported"] == MANY
        m.add("Someone else's fact", user_id="v")
    static = {"MEMORCH_EMBEDDER": "static"}

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        shown = invoke(
            tmp_path,
            "list",
            "--user-id",
            "u",
            "--limit",
            "1000",
            "--json",
            *(["--cursor", cursor] if cursor else []),
            **static,
        )
        assert shown.exit_code == 0, shown.output
        page = json.loads(shown.stdout)
        seen += [r["id"] for r in page["results"]]
        pages += 1
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert pages == 3 and len(seen) == MANY == len(set(seen))

    every = json.loads(invoke(tmp_path, "list", "--user-id", "u", "--all", "--json", **static).stdout)
    assert [r["id"] for r in every["results"]] == seen and "next_cursor" not in every
    assert {r["memory"] for r in every["results"]} == {f"Fact number {i} about topic {i % 37}" for i in range(MANY)}

    first = invoke(tmp_path, "list", "--user-id", "u", **static)  # a page of 100, and the way on
    lines = first.stdout.rstrip("\n").splitlines()
    assert sum(line.split("…")[0] in {r[:8] for r in seen[:100]} for line in lines) == 100
    last = lines[-1].split()
    assert last[:5] == ["100", "memories", "shown,", "more", "remain:"] and last[5] == "--cursor"
    second = json.loads(invoke(tmp_path, "list", "--user-id", "u", "--cursor", last[6], "--json", **static).stdout)
    assert [r["id"] for r in second["results"]] == seen[100:200]

    table = invoke(tmp_path, "list", "--user-id", "u", "--all", **static)
    rows = [line for line in table.stdout.splitlines() if "…" in line and "Fact number" in line]
    assert len(rows) == MANY and all(len(line) <= 80 for line in table.stdout.splitlines())
    assert "more remain" not in table.stdout
    bad = invoke(tmp_path, "list", "--cursor", "not-a-cursor", **static)
    assert bad.exit_code == 1 and bad.stderr.startswith("error [INVALID_CURSOR]")


def test_search_explain_is_a_table_that_fits_80_columns(tmp_path: Path) -> None:
    for text in ("I am allergic to peanuts and tree nuts", "I live in Lisbon", "Peanut butter is my favourite snack"):
        added_id(tmp_path, text)
    args = ("search", "peanut allergy", "--threshold", "0", "--explain")
    data = json.loads(invoke(tmp_path, *args, "--json").stdout)
    shown = invoke(tmp_path, *args)
    lines = shown.stdout.rstrip("\n").splitlines()
    assert shown.exit_code == 0 and all(len(line) <= 80 for line in lines), lines
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["id", "vector", "text", "graph"])
    explained = lines[header + 2 : header + 2 + len(data["results"])]
    for hit, line in zip(data["results"], explained, strict=True):  # the results' order, one line each
        cells = line.split()
        assert cells[0] == hit["id"][:8] + "…"
        vector = hit["explain"]["vector"]
        assert cells[1:3] == [f"#{vector['rank']}", f"{vector['relevance']:.3f}"]
        assert cells[-1] == f"{hit['score']:.3f}" and cells[-2] == f"{hit['explain']['fusion']['fused']:.3f}"
    assert lines[-1] == "#rank and relevance in each signal (graph: relations); --json has every number"
    plain = invoke(tmp_path, "search", "peanut allergy", "--threshold", "0").stdout
    assert "vector" not in plain  # only with --explain


def detail_lines(lines: list[str], row: str) -> list[str]:
    """The detail of the doctor's row that starts with ``row``, line by line (a wrapped cell goes
    on in the lines below, whose first columns are blank), without the time at its end."""
    start = next(line for line in lines if line.startswith("check")).index("detail")
    at = next(i for i, line in enumerate(lines) if line.startswith(row))
    cells = [re.sub(r"\s+\d+\.\d\ds$", "", lines[at][start:].rstrip()).strip()]
    for line in lines[at + 1 :]:
        if line[:start].strip():
            break
        cells.append(line[start:].strip())
    return cells


LONG_NAMES = [
    (
        "Alice Wonderland-Smythe of the Northern Highlands",
        "is_a_founding_member_of",
        "International Society for the Protection of Mountain Ecosystems",
    ),
    ("Alice Wonderland-Smythe of the Northern Highlands", "lives_in", "Lisbon"),
]


def test_doctor_and_graph_tables_fit_80_columns(tmp_path: Path) -> None:
    data = tmp_path / "a-rather-long-directory-name-for-the-data" / "of-this-memorch-store-on-a-real-machine"
    now = "2025-01-02T03:04:05+00:00"
    item = {
        "id": str(uuid.uuid4()),
        "memory": "Alice founded the mountain society and lives in Lisbon",
        "user_id": "cli-user",
        "created_at": now,
        "relations": [
            {"source": s, "source_type": "person", "relationship": r, "destination": d, "destination_type": "thing"}
            for s, r, d in LONG_NAMES
        ],
        "history": [{"id": str(uuid.uuid4()), "event": "ADD", "new_memory": "x", "created_at": now}],
    }
    with Memory(MemoryConfig(data_dir=data, graph="on", graph_flush_delay=0)) as m:
        m.import_memories([item])
        m.add("I am allergic to peanuts", user_id="cli-user")
        m.flush_graph()
    on = {"MEMORCH_GRAPH": "on"}

    doctor = invoke(data, "doctor", **on)
    lines = doctor.stdout.rstrip("\n").splitlines()
    assert doctor.exit_code == 0, doctor.output
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    checks = json.loads(invoke(data, "doctor", "--json", **on).stdout)
    for check in checks:  # one row each, starting with its name and ok; the detail whole, wrapped
        assert any(line.startswith(check["name"]) and " ok " in line for line in lines), check["name"]
    text = " ".join(doctor.stdout.split())
    # The free space moves between the two runs when anything else writes to the disk (CI did).
    details = [re.sub(r"\(\d+ MB free\)", "", check["detail"]) for check in checks]
    assert all(word in text for detail in details for word in detail.split() if len(word) < 30)
    assert re.search(r"\(\d+ MB free\)", text)
    assert "".join(detail_lines(lines, "data directory")).startswith(str(data))  # a path folds, whole

    graph = invoke(data, "graph", "Alice Wonderland-Smythe of the Northern Highlands", **on)
    lines = graph.stdout.rstrip("\n").splitlines()
    assert graph.exit_code == 0, graph.output
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    words = " ".join(graph.stdout.split())
    for source, relationship, destination in LONG_NAMES:
        for name in (source, destination):
            assert all(word in words for word in name.split())
        assert relationship in graph.stdout.replace("\n", "").replace(" ", "") or relationship in words
    nobody = invoke(data, "graph", "Zed", **on)
    assert nobody.stdout.strip() == (
        "no relations around Zed for user_id 'cli-user' (relations come from an LLM when memories are added)"
    )


def test_a_projects_tables_mark_the_global_layer(tmp_path: Path) -> None:
    """With MEMORCH_PROJECT set, `list` and `search` show the project's memories and the global
    layer's; a global one says so in its cell (within 80 columns), a project's does not."""
    project = {"MEMORCH_PROJECT": "acme/app", "MEMORCH_EMBEDDER": "static"}
    assert invoke(tmp_path, "add", "I prefer British English", "--layer", "global", **project).exit_code == 0
    assert invoke(tmp_path, "add", "This app is deployed with Fly.io", **project).exit_code == 0

    for args in (("list",), ("search", "English or deployment", "--threshold", "0")):
        shown = invoke(tmp_path, *args, **project)
        assert shown.exit_code == 0, shown.output
        lines = shown.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80
        [british] = [line for line in lines if "British" in line]
        [fly] = [line for line in lines if "Fly.io" in line]
        assert "(global)" in british and "(global)" not in fly

    alone = invoke(tmp_path, "list", MEMORCH_EMBEDDER="static")  # no project: one layer, no mark
    assert "British" in alone.stdout and "(global)" not in alone.stdout
