"""The CLI, through typer's runner, on a real data directory."""

from __future__ import annotations

import itertools
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
    assert json.loads(out) == {"imported": 1201, "duplicates": 1, "users": {"cli-user": 1201, "other": 1}, "expired": 0}
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


# --- issue 28: delete-all, plurals, tables at 80 columns, stats, add notes, below the threshold ---


def invoke(data: Path, *args: str, columns: int = 80, input: str | None = None, **env: str) -> Any:
    """The CLI at a terminal width (rich reads COLUMNS), with stdout and stderr apart."""
    base = {"MEMORCH_DATA_DIR": str(data), "MEMORCH_GRAPH": "off", "MEMORCH_USER_ID": "cli-user"}
    return runner.invoke(app, list(args), env={**base, "COLUMNS": str(columns), **env}, input=input)


def added_id(data: Path, text: str, *args: str) -> str:
    result = invoke(data, "add", text, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"][0]["id"]


def test_delete_all_needs_a_scope_and_a_yes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import memorch.cli._options as cli_options

    kept = added_id(tmp_path, "I live in Lisbon", "--user-id", "bob")
    first = added_id(tmp_path, "I am allergic to peanuts")
    added_id(tmp_path, "I play the cello")

    refused = invoke(tmp_path, "delete-all")  # MEMORCH_USER_ID alone is no scope for this
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.strip().startswith("error [SCOPE_REQUIRED] memorch delete-all needs a scope")
    no_terminal = invoke(tmp_path, "delete-all", "--user-id", "cli-user")
    assert no_terminal.exit_code == 1
    assert "error [CONFIRMATION_REQUIRED]" in no_terminal.stderr and "pass --yes" in no_terminal.stderr

    monkeypatch.setattr(cli_options, "interactive", lambda: True)
    declined = invoke(tmp_path, "delete-all", "--user-id", "cli-user", input="n\n")
    assert declined.exit_code == 1 and declined.stdout.strip() == "n"  # the runner echoes what was typed
    assert "Delete all 2 memories of user_id 'cli-user'? [y/N]" in declined.stderr
    assert "nothing was deleted" in declined.stderr
    assert len(json.loads(invoke(tmp_path, "list", "--json").stdout)["results"]) == 2

    confirmed = invoke(tmp_path, "delete-all", "--user-id", "cli-user", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.splitlines()[-1] == "deleted 2 memories of user_id 'cli-user'"
    assert json.loads(invoke(tmp_path, "list", "--json").stdout)["results"] == []
    assert [r["id"] for r in json.loads(invoke(tmp_path, "list", "--user-id", "bob", "--json").stdout)["results"]] == [
        kept
    ]
    assert invoke(tmp_path, "restore", first).exit_code == 0  # the history stays: one comes back

    one = invoke(tmp_path, "delete-all", "--user-id", "bob", "--yes")
    assert one.exit_code == 0 and one.stdout.strip() == "deleted 1 memory of user_id 'bob'"
    none = invoke(tmp_path, "delete-all", "--user-id", "bob", "-y", "--json")
    assert json.loads(none.stdout)["deleted"] == 0
    none = invoke(tmp_path, "delete-all", "--user-id", "bob", "--yes")
    assert none.stdout.strip() == "no memories for user_id 'bob'; nothing was deleted"


@pytest.mark.parametrize(("command", "done"), [("delete-all", "deleted"), ("forget", "purged")])
def test_a_run_id_alone_is_the_scope_as_given(tmp_path: Path, command: str, done: str) -> None:
    """`memorch delete-all --run-id session-42 --yes` (docs/cli.md) deletes that run's memories,
    whoever's: MEMORCH_USER_ID's user is not added to a scope given on the command line (a
    newcomer's trial: it was, and the session's memory of alice stayed with exit code 0)."""
    alices = added_id(tmp_path, "session note", "--run-id", "session-42", "--user-id", "alice")
    kept = added_id(tmp_path, "not in the session", "--user-id", "alice")
    result = invoke(tmp_path, command, "--run-id", "session-42", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{done} 1 memory of run_id 'session-42'")
    left = json.loads(invoke(tmp_path, "list", "--user-id", "alice", "--json").stdout)["results"]
    assert [r["id"] for r in left] == [kept] and alices != kept


LONG = (
    "I am allergic to peanuts and tree nuts, so I carry an epinephrine auto-injector on every trip "
    "and ask restaurants about their cooking oil before I order anything at all"
)
STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"


def local(stamp: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")


def test_tables_fit_80_columns_one_line_per_row(tmp_path: Path) -> None:
    import re

    long_id = added_id(tmp_path, LONG)
    short_id = added_id(tmp_path, "I live in Lisbon")
    invoke(tmp_path, "update", short_id, "I live in Porto now,\nnear the river")
    rows = {r["id"]: r for r in json.loads(invoke(tmp_path, "list", "--json").stdout)["results"]}

    for args in (["list"], ["search", "what foods should I avoid?", "--threshold", "0"]):
        shown = invoke(tmp_path, *args)
        assert shown.exit_code == 0, shown.output
        lines = shown.stdout.rstrip("\n").splitlines()
        assert all(len(line) <= 80 for line in lines), lines
        for memory_id, row in rows.items():
            [line] = [line for line in lines if memory_id[:8] + "…" in line]  # one line per memory, id cut
            assert re.search(STAMP + r"\s*$", line) and local(row["updated_at"]) in line  # the whole local time
            assert memory_id not in line
        [long_line] = [line for line in lines if long_id[:8] in line]
        assert LONG[:30] in long_line and "…" in long_line.replace(long_id[:8] + "…", "") and LONG not in long_line
        assert "I live in Porto now, near the river" in shown.stdout  # a newline in a memory stays in its row
        assert lines[-1].strip() == "ids cut to fit: --full-ids shows them whole"

        whole = invoke(tmp_path, *args, "--full-ids")
        assert all(len(line) <= 80 for line in whole.stdout.splitlines())
        assert all(sum(memory_id in line for line in whole.stdout.splitlines()) == 1 for memory_id in rows)
        wide = invoke(tmp_path, *args, columns=120)  # room for whole ids and the text: no caption
        assert all(memory_id in wide.stdout for memory_id in rows) and "--full-ids" not in wide.stdout, wide.stdout

    events = json.loads(invoke(tmp_path, "history", short_id, "--json").stdout)
    shown = invoke(tmp_path, "history", short_id)
    lines = shown.stdout.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines)
    for event, text in zip(events, ["I live in Lisbon", "I live in Porto now, near the river"], strict=True):
        [line] = [line for line in lines if event["id"][:8] + "…" in line]
        assert local(event["updated_at"]) in line and event["event"] in line and text in line
    whole = invoke(tmp_path, "history", short_id, "--full-ids").stdout
    assert all(event["id"] in whole for event in events)  # what `memorch restore --event` takes
    # ... and each version's text whole, wrapped in its cell (cut alike, they looked the same)
    assert "I live in Porto now, near the river" in " ".join(whole.split()), whole
    assert all(len(line) <= 80 for line in whole.splitlines())


def test_stats_is_a_table_and_json_only_when_asked(tmp_path: Path) -> None:
    added_id(tmp_path, "I am allergic to peanuts")
    shown = invoke(tmp_path, "stats")
    assert shown.exit_code == 0 and not shown.stdout.lstrip().startswith("{")
    words = {" ".join(line.split()[:-1]): line.split()[-1] for line in shown.stdout.splitlines() if line.strip()}
    assert words["memories"] == "1" and words["history events"] == "1" and words["messages awaiting the model"] == "0"
    assert "LLM none (memories are stored as said)" in " ".join(shown.stdout.split())
    data = json.loads(invoke(tmp_path, "stats", "--json").stdout)
    assert data["memories"] == 1 and data["llm_model"] is None


def test_reprocess_says_why_the_model_failed_and_stops_at_a_failure_of_the_model(tmp_path: Path, fake: Any) -> None:
    """A newcomer's trial: with nothing answering, `memorch reprocess` printed "3 failed" with exit
    code 0 and no cause, and met the refused connection once per batch."""
    from .fake_llm import Failure

    model = {
        "MEMORCH_LLM_MODEL": "openai/fake-model",
        "MEMORCH_LLM_API_BASE": fake.url,
        "MEMORCH_LLM_API_KEY": "k",
        "MEMORCH_LLM_MAX_RETRIES": "0",
    }
    idle = invoke(tmp_path, "reprocess")  # no model, nothing pending: nothing to do is no failure
    assert idle.exit_code == 0 and idle.stdout.strip() == "processed 0 messages, 0 failed, 0 still pending"
    for text in ("I collect vinyl", "I keep bees", "I moved to Lisbon"):
        fake.push(Failure(500))
        assert invoke(tmp_path, "add", text, **model).exit_code == 0
    modelless = invoke(tmp_path, "reprocess")  # three wait for a model: without one, an error
    assert modelless.exit_code == 1 and modelless.stderr.startswith("error [LLM_NOT_CONFIGURED]")
    asked = len(fake.chat_requests())
    fake.responder = lambda request: Failure(500)  # nothing answers
    failed = invoke(tmp_path, "reprocess", **model)
    assert failed.exit_code == 1
    assert failed.stdout.strip() == "processed 0 messages, 1 failed, 3 still pending"
    assert failed.stderr.strip().startswith("error [NETWORK_ERROR] openai/fake-model could not be reached")
    assert "Suggestion: check MEMORCH_LLM_API_BASE" in failed.stderr
    assert len(fake.chat_requests()) == asked + 1  # one batch tried: the others would meet the same
    data = json.loads(invoke(tmp_path, "reprocess", "--json", **model).stdout)
    assert data["last_error"]["error_code"] == "NETWORK_ERROR" and data["remaining"] == 3
    facts = itertools.count()
    fake.responder = lambda request: {"memory": [{"event": "ADD", "text": f"Fact number {next(facts)}"}]}
    done = invoke(tmp_path, "reprocess", "--json", **model)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["last_error"] is None


def test_add_says_when_nothing_was_inferred_and_what_repeats(tmp_path: Path, fake: Any) -> None:
    from .fake_llm import Failure

    model = {
        "MEMORCH_LLM_MODEL": "openai/fake-model",
        "MEMORCH_LLM_API_BASE": fake.url,
        "MEMORCH_LLM_API_KEY": "k",
        "MEMORCH_LLM_MAX_RETRIES": "0",
    }
    fake.push(Failure(500))
    degraded = invoke(tmp_path, "add", "I collect vinyl", **model)
    assert degraded.exit_code == 0, degraded.output
    line = " ".join(degraded.stdout.split())
    assert line.startswith("ADD ") and "I collect vinyl (stored as said: no usable answer from the model — [" in line
    assert line.endswith("; run `memorch reprocess` once one answers)") and "Suggestion:" not in line
    fake.push({"memory": [{"event": "ADD", "text": "Collects vinyl records"}]})
    reprocessed = invoke(tmp_path, "reprocess", **model)
    assert reprocessed.stdout.strip() == "processed 1 message, 0 failed, 0 still pending"

    # A message the model finds nothing in is deleted: the line says so, with the way back.
    fake.push(Failure(500))
    said = invoke(tmp_path, "add", "Hello there", **model).stdout.split()[1]
    fake.push({"memory": []})
    line = " ".join(invoke(tmp_path, "reprocess", **model).stdout.split())
    assert line.startswith("processed 1 message (1 with nothing worth remembering, deleted: `memorch restore ID`")
    assert line.endswith(", 0 failed, 0 still pending")
    [deleted_id] = [w.strip(":),") for w in line.split() if w.strip(":),").startswith(said)]
    assert invoke(tmp_path, "restore", deleted_id, **model).exit_code == 0
    assert "Hello there" in invoke(tmp_path, "list", "--full-ids").stdout

    fake.responder = lambda request: {"memory": []}
    pending = invoke(tmp_path, "add", "I keep bees", **model, MEMORCH_BACKGROUND_INFERENCE="on")
    assert pending.exit_code == 0, pending.output
    assert " ".join(pending.stdout.split()).endswith(
        "I keep bees (pending: `memorch reprocess`, or a running server, extracts its facts)"
    )

    plain = invoke(tmp_path, "add", "I [bold]like[/bold] tea")  # no model: no note; text is not markup
    assert plain.stdout.strip().endswith("  I [bold]like[/bold] tea")
    again = invoke(tmp_path, "add", "I [bold]like[/bold] tea")
    assert again.stdout.strip().startswith("NONE ")
    assert again.stdout.strip().endswith("I [bold]like[/bold] tea  (the same text is already stored)")
    secret = invoke(tmp_path, "add", "my openai key is sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH")
    assert secret.stdout.splitlines()[-1] == "1 credential replaced before storing: openai-api-key"


def test_search_says_what_scored_below_the_threshold(tmp_path: Path) -> None:
    for text in ("I am allergic to peanuts", "I live in Lisbon", "My sister is called Ana"):
        added_id(tmp_path, text, "--user-id", "newbie")
    found = json.loads(invoke(tmp_path, "search", "weather in the mountains", "--user-id", "newbie", "--json").stdout)
    assert found["results"] == [] and found["below_threshold"]["count"] == 3  # the library's key
    best = found["below_threshold"]["best_score"]

    shown = invoke(tmp_path, "search", "weather in the mountains", "--user-id", "newbie")
    floor = f"{int(best * 100) / 100:.2f}"
    assert shown.stdout.strip() == (
        f"no memory scored 0.30 or more for user_id 'newbie' (3 below it, best {floor}); --threshold 0 shows them"
    )
    every = invoke(tmp_path, "search", "weather in the mountains", "--user-id", "newbie", "--threshold", "0")
    assert "I live in Lisbon" in every.stdout and "below" not in every.stdout

    some = invoke(tmp_path, "search", "which foods should I avoid? peanuts", "--user-id", "newbie")
    assert "I am allergic to peanuts" in some.stdout
    # A search that found a match keeps the hits after it down to half the default threshold.
    assert some.stdout.rstrip().splitlines()[-1].startswith("2 more memories scored below 0.15 (best 0.")
    nobody = invoke(tmp_path, "search", "anything", "--user-id", "nobody")
    first, hint = nobody.stdout.strip().split("\n")  # a scope with no memories at all
    assert first == "no memories for user_id 'nobody'" and "holds memories of user_id 'newbie'" in hint


def test_counts_are_plural_only_when_they_are_many(tmp_path: Path) -> None:
    lines = tmp_path / "one.jsonl"
    lines.write_text(json.dumps({"memory": "I am allergic to peanuts"}) + "\n")
    dry = invoke(tmp_path, "import", str(lines), "--dry-run")
    assert " ".join(dry.stdout.split()).startswith(
        "dry run, nothing written: 1 memory from memorch (1 memory); 0 relations for the graph"
    )
    done = invoke(tmp_path, "import", str(lines))
    assert done.stdout.strip() == "imported 1 memory, skipped 0 duplicates; for user 'cli-user' (1)"
    backup = invoke(tmp_path, "backup", str(tmp_path / "backup"))
    assert backup.exit_code == 0, backup.output
    assert " ".join(backup.stdout.split()).startswith("backed up 1 memory (1 history event) to ")


def test_help_fits_80_columns_and_wraps_only_where_the_line_is_full() -> None:
    """Every --help at 80 columns: no line longer, each paragraph of a command's description
    wrapped only where the next word would not fit (a docstring's own line breaks used to split
    sentences), and the command list shows each command's one-paragraph summary."""
    from memorch.cli._options import reflow

    root = typer.main.get_command(app)
    for path, command, _ctx in _commands(root):
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert shown.exit_code == 0, shown.output
        lines = shown.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), (path, [line for line in lines if len(line) > 80])
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
        end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
        words = [line.strip() for line in lines[start:end]]
        for line, following in itertools.pairwise(words):
            if line and following:  # the same paragraph: the next word did not fit on this line
                assert len(line) + 1 + len(following.split()[0]) > 78, (path, line, following)
        if command.help and path:
            paragraphs = reflow(command.help).split("\n\n")
            assert " ".join(" ".join(words).split()) == " ".join(" ".join(paragraphs).split()), path
    listing = " ".join(runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout.split())
    for name in ("delete-all", "stats", "setup"):
        summary = reflow(root.get_command(typer.Context(root), name).help).split("\n\n")[0]
        assert f"{name} {summary[:30]}" in listing.replace("│ ", "").replace(" │", "")


def test_add_dash_reads_the_text_from_stdin(tmp_path: Path) -> None:
    """`memorch add -` stored a literal "-" (a newcomer's trial); it reads stdin, as cat does."""
    piped = invoke(tmp_path, "add", "-", "--json", input="I moved to Porto\nlast week\n")
    assert piped.exit_code == 0, piped.output
    stored = json.loads(piped.stdout)["results"][0]["memory"]
    assert stored.startswith("I moved to Porto") and "last week" in stored
    assert invoke(tmp_path, "add", "-", input="").stderr.startswith("error [EMPTY_TEXT]")
    latin1 = runner.invoke(
        app, ["add", "-"], env={"MEMORCH_DATA_DIR": str(tmp_path), "MEMORCH_GRAPH": "off"}, input=b"caf\xe9"
    )
    assert latin1.exit_code == 1 and latin1.stderr.startswith("error [INVALID_TEXT] the text on stdin is not UTF-8")
    assert len(json.loads(invoke(tmp_path, "list", "--json").stdout)["results"]) == 1


def test_an_import_off_a_terminal_says_how_far_it_got(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer's trial: a 50,000-line import with its output in a file was minutes of silence."""
    import memorch.cli._import as cli_import

    monkeypatch.setattr(cli_import, "LOGGED_EVERY", 2)
    lines = tmp_path / "five.jsonl"
    lines.write_text("".join(json.dumps({"memory": f"imported fact {n}"}) + "\n" for n in range(5)))
    done = invoke(tmp_path, "import", str(lines))
    assert done.exit_code == 0, done.output
    assert [line for line in done.stderr.splitlines() if line.startswith("imported")][-1] == "imported 5 of 5"
