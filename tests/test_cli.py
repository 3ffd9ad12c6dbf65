"""The CLI, through typer's runner, on a real data directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from memorch.cli._main import app

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


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """Every command and group of the CLI, with its path and a context to read its parameters."""
    ctx = command.context_class(command, info_name=path[-1] if path else "memorch")
    yield path, command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), (*path, name))


def test_every_option_and_argument_has_a_help_text_and_flags_take_no_value() -> None:
    root = typer.main.get_command(app)
    paths = [path for path, _, _ in _commands(root)]
    assert ("setup",) in paths and ("import",) in paths
    for path, command, ctx in _commands(root):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        shown = result.output
        assert "<bool>" not in shown, f"`memorch {' '.join(path)} --help` shows a flag as taking a value"
        for param in command.get_params(ctx):
            name = param.opts[-1]
            assert param.help, f"{name} of `memorch {' '.join(path)}` has no help text"
            help_start = " ".join(param.help.split())[:40]
            if param.param_type_name == "option":  # its row: the option, then the start of its help
                assert any(name in line and help_start in line for line in shown.splitlines()), (path, name)
            else:
                assert help_start in shown, (path, name)


def test_counts_in_words_and_an_empty_scope_named(tmp_path: Path) -> None:
    code, out = run(tmp_path, "list")
    assert code == 0 and out.strip() == "no memories for user_id 'cli-user'"
    code, out = run(tmp_path, "list", "--user-id", "alice", "--agent-id", "planner")
    assert out.strip() == "no memories for user_id 'alice', agent_id 'planner'"
    code, out = run(tmp_path, "search", "anything", "--user-id", "alice")
    assert out.strip() == "no memories for user_id 'alice'"

    run(tmp_path, "add", "I am allergic to peanuts")
    code, out = run(tmp_path, "reindex")
    assert code == 0 and out.strip() == "reindexed 1 memory"
    code, out = run(tmp_path, "export", str(tmp_path / "backup.jsonl"))
    assert code == 0 and " ".join(out.split()).startswith("exported 1 memory and 0 deleted ones (1 history event) to")


def test_shell_completion_works_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer finds the shell by walking the process tree (shellingham); a test run with no shell
    # among its ancestors (started detached, or by a service) has none: say it is bash.
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda *args, **kwargs: ("bash", "/bin/bash"))
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="memorch")
    assert script.exit_code == 0 and "_MEMORCH_COMPLETE=complete_bash" in script.output, (
        script.output,
        script.exception,
    )
    complete = {"_MEMORCH_COMPLETE": "complete_bash", "COMP_WORDS": "memorch setup c", "COMP_CWORD": "2"}
    words = runner.invoke(app, [], prog_name="memorch", env=complete)
    assert words.output.split() == ["claude-desktop", "claude-code", "cursor"]
    installed = runner.invoke(app, ["--install-completion", "bash"], prog_name="memorch", env={"HOME": str(tmp_path)})
    assert installed.exit_code == 0, installed.output
    assert "memorch" in (tmp_path / ".bashrc").read_text()
    assert "_memorch_completion" in (tmp_path / ".bash_completions" / "memorch.sh").read_text()
