"""The CLI, through typer's runner, on a real data directory."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memorch.cli import app

runner = CliRunner()


def run(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, list(args), env={"MEMORCH_DATA_DIR": str(data), "MEMORCH_GRAPH": "off", "MEMORCH_USER_ID": "cli-user"}
    )
    return result.exit_code, result.stdout


def test_cli_round_trip(tmp_path: Path) -> None:
    code, out = run(tmp_path, "add", "I am allergic to peanuts", "--metadata", '{"category": "health"}', "--json")
    assert code == 0, out
    memory_id = json.loads(out)["results"][0]["id"]
    run(tmp_path, "add", "I live in Lisbon", "--user-id", "someone-else")

    code, out = run(tmp_path, "search", "what foods should I avoid?", "--json")
    results = json.loads(out)["results"]
    assert code == 0 and [r["id"] for r in results] == [memory_id]  # other user's memory is not visible
    assert results[0]["user_id"] == "cli-user"

    code, out = run(tmp_path, "list", "--filters", '{"category": "health"}', "--json")
    assert [r["id"] for r in json.loads(out)["results"]] == [memory_id]
    code, out = run(tmp_path, "update", memory_id, "I am allergic to peanuts and eggs", "--json")
    assert json.loads(out)["event"] == "UPDATE"
    code, out = run(tmp_path, "get", memory_id, "--json")
    assert json.loads(out)["memory"] == "I am allergic to peanuts and eggs"
    code, _ = run(tmp_path, "delete", memory_id, "--json")
    assert code == 0
    code, out = run(tmp_path, "history", memory_id, "--json")
    assert [e["event"] for e in json.loads(out)] == ["ADD", "UPDATE", "DELETE"]

    code, out = run(tmp_path, "stats", "--json")
    stats = json.loads(out)
    assert {"memories", "history_events", "entities", "relations", "pending_index"} <= set(stats)
    assert stats["memories"] == 1 and stats["history_events"] == 4 and stats["pending_index"] == 0

    code, out = run(tmp_path, "reindex", "--json")
    assert code == 0 and json.loads(out)["memories"] == 1
    code, out = run(tmp_path, "search", "Lisbon", "--user-id", "someone-else", "--json")
    assert json.loads(out)["results"][0]["memory"] == "I live in Lisbon"


def test_cli_errors_exit_nonzero_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["get", "not-an-id"], env={"MEMORCH_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "INVALID_MEMORY_ID" in result.output
    result = runner.invoke(app, ["add", "x", "--metadata", "{bad json"], env={"MEMORCH_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "not valid JSON" in result.output
    code, out = run(tmp_path, "list", "--json")
    assert code == 0
    assert json.loads(out)["results"] == []


def test_cli_import_batches_and_refuses_bad_files_whole(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    lines = [{"memory": f"imported fact number {i} about topic {i % 7}", "metadata": {"n": i}} for i in range(1200)]
    lines.append({"memory": "imported fact number 3 about topic 3"})  # an exact duplicate
    lines.append({"memory": "belongs to someone else", "user_id": "other"})
    good.write_text("\n".join(json.dumps(line) for line in lines))
    code, out = run(tmp_path, "import", str(good), "--json")
    assert code == 0, out
    assert json.loads(out) == {"imported": 1201, "duplicates": 1}
    code, out = run(tmp_path, "search", "fact number 1117", "--limit", "1", "--json")
    assert json.loads(out)["results"][0]["metadata"] == {"n": 1117}
    code, out = run(tmp_path, "list", "--user-id", "other", "--json")
    assert [r["memory"] for r in json.loads(out)["results"]] == ["belongs to someone else"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"memory": "fine"}) + "\n\n" + json.dumps({"memory": "   "}))
    result = runner.invoke(
        app, ["import", str(bad)], env={"MEMORCH_DATA_DIR": str(tmp_path), "MEMORCH_USER_ID": "cli-user"}
    )
    # the file's line (a blank line sits between), not the item's position
    assert result.exit_code == 1 and "bad.jsonl line 3:" in result.output and "EMPTY_TEXT" in result.output
    code, out = run(tmp_path, "stats", "--json")
    assert json.loads(out)["memories"] == 1201  # nothing from the bad file was written
