"""`memorch forget` (issue 27 item 1, the CLI's part): a purge by id or by scope, through the real
CLI (typer's runner) on a real data directory, then a byte scan of that directory for the text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_cli import added_id, invoke
from .test_purge import occurrences, token


def history(data: Path, memory_id: str) -> list[tuple[str, str | None, str | None]]:
    shown = invoke(data, "history", memory_id, "--json")
    assert shown.exit_code == 0, shown.output
    return [(e["event"], e["old_memory"], e["new_memory"]) for e in json.loads(shown.stdout)]


def test_forget_ids_asks_then_leaves_no_byte_of_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import memorch.cli._options as cli_options

    words = [token() for _ in range(3)]
    kept = added_id(tmp_path, "I keep bees on the roof")
    first = added_id(tmp_path, f"My locker code is {words[0]}")
    invoke(tmp_path, "update", first, f"My locker code is {words[1]} since Monday")  # history holds both
    earlier = added_id(tmp_path, f"The alarm code is {words[2]}")
    assert invoke(tmp_path, "delete", earlier).exit_code == 0  # deleted before: its history still says it
    assert set(occurrences(tmp_path, words)), "the scan must see the text before the purge"

    refused = invoke(tmp_path, "forget")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.strip().startswith("error [SCOPE_REQUIRED] memorch forget needs memory ids or a scope")
    no_terminal = invoke(tmp_path, "forget", first)
    assert no_terminal.exit_code == 1 and "error [CONFIRMATION_REQUIRED]" in no_terminal.stderr
    assert "pass --yes to purge without asking" in no_terminal.stderr
    # Bad input purges nothing: every id is checked before the first purge.
    for bad, code in (
        (["not-an-id"], "INVALID_MEMORY_ID"),
        (["3f1c2d4e-0000-4000-8000-000000000000"], "MEMORY_NOT_FOUND"),
    ):
        failed = invoke(tmp_path, "forget", first, *bad, "--yes")
        assert failed.exit_code == 1 and f"error [{code}]" in failed.stderr and len(failed.stderr.splitlines()) == 1
    assert [e[0] for e in history(tmp_path, first)] == ["ADD", "UPDATE"]

    monkeypatch.setattr(cli_options, "interactive", lambda: True)
    declined = invoke(tmp_path, "forget", first, input="n\n")
    assert declined.exit_code == 1 and "nothing was purged" in declined.stderr
    question = " ".join(declined.stderr.split())
    assert f"Forget 'My locker code is {words[1]} since Monday' ({first}) for good?" in question
    assert "this cannot be undone. [y/N]" in question
    assert [e[0] for e in history(tmp_path, first)] == ["ADD", "UPDATE"]

    confirmed = invoke(tmp_path, "forget", first, earlier, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "Forget 2 memories for good?" in confirmed.stderr
    assert confirmed.stdout.splitlines()[-1] == f"purged 2 memories for good: {first}, {earlier}"
    assert occurrences(tmp_path, [*words, "My locker code", "The alarm code"]) == []
    assert history(tmp_path, first) == history(tmp_path, earlier) == [("PURGE", None, None)]
    restore = invoke(tmp_path, "restore", first)
    assert restore.exit_code == 1 and restore.stderr.startswith("error [MEMORY_PURGED]")

    again = invoke(tmp_path, "forget", first, "--yes")
    assert again.exit_code == 0 and again.stdout.strip() == f"1 memory was already purged: {first}"
    listed = json.loads(invoke(tmp_path, "list", "--json").stdout)["results"]
    assert [r["id"] for r in listed] == [kept]  # nothing else changed
    assert invoke(tmp_path, "delete", kept).exit_code == 0 and invoke(tmp_path, "restore", kept).exit_code == 0


def test_forget_a_scope_and_the_history_of_its_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import memorch.cli._options as cli_options

    words = [token() for _ in range(3)]
    ids = [added_id(tmp_path, f"Bob's note {w}", "--user-id", "bob") for w in words]
    invoke(tmp_path, "delete", ids[0])
    other = added_id(tmp_path, "Carol's note stays", "--user-id", "carol")
    kept_word = token()
    added_id(tmp_path, f"Bob's planner note {kept_word}", "--user-id", "bob", "--agent-id", "planner")

    monkeypatch.setattr(cli_options, "interactive", lambda: True)
    declined = invoke(tmp_path, "forget", "--user-id", "bob", input="n\n")
    question = " ".join(declined.stderr.split())
    assert declined.exit_code == 1 and "nothing was purged" in question
    assert "Forget all 3 memories of user_id 'bob' for good, and the history of 1 memory deleted before?" in question
    assert "this cannot be undone" in question

    planner = invoke(tmp_path, "forget", "--user-id", "bob", "--agent-id", "planner", "--yes")  # a narrower scope
    assert planner.stdout.strip() == "purged 1 memory of user_id 'bob', agent_id 'planner' for good"
    assert occurrences(tmp_path, [kept_word]) == []

    done = invoke(tmp_path, "forget", "--user-id", "bob", input="y\n")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == (
        "purged 2 memories of user_id 'bob' for good, and the history of 1 memory deleted before"
    )
    assert occurrences(tmp_path, words) == []
    assert all(history(tmp_path, memory_id) == [("PURGE", None, None)] for memory_id in ids)
    assert json.loads(invoke(tmp_path, "get", other, "--json").stdout)["memory"] == "Carol's note stays"

    nothing = invoke(tmp_path, "forget", "--user-id", "bob", "--yes")
    assert nothing.stdout.strip() == "no memories for user_id 'bob'; nothing was purged"
    data = json.loads(invoke(tmp_path, "forget", "--user-id", "carol", "--yes", "--json").stdout)
    assert data["deleted"] == 1 and data["ids"] == [other] and data["purged"] is True


@pytest.mark.parametrize("command", ["forget", "delete-all"])
def test_a_scope_is_forgotten_in_every_project_whatever_memorch_project_says(tmp_path: Path, command: str) -> None:
    """With MEMORCH_PROJECT set, forgetting (or deleting all of) a user reached only that project's
    layer and the global one: another project's memories, and their text, stayed."""
    from memorch import Memory, MemoryConfig

    words = {layer: token() for layer in ("global", "app", "other")}
    for project, layer in ((None, "global"), ("p/app", "app"), ("p/other", "other")):
        with Memory(MemoryConfig(data_dir=tmp_path, graph="off", project=project)) as memory:
            memory.add(f"The {layer} code is {words[layer]}", user_id="me", infer=False, layer=None)
    done = invoke(tmp_path, command, "--user-id", "me", "--yes", MEMORCH_PROJECT="p/app")
    assert done.exit_code == 0, done.output
    with Memory(MemoryConfig(data_dir=tmp_path, graph="off")) as memory:
        assert memory.get_all(user_id="me")["results"] == []
    if command == "forget":
        assert not set(occurrences(tmp_path, list(words.values())))


def test_an_import_of_a_purged_memory_says_why_it_is_skipped(tmp_path: Path) -> None:
    """A purged memory keeps its id (so an old export cannot bring its text back): importing
    that export again skips it, and the line says it is by id, not by text."""
    data = tmp_path / "data"
    secret = added_id(data, "My locker code is 4411")
    assert invoke(data, "export", str(tmp_path / "e.jsonl")).exit_code == 0
    assert invoke(data, "forget", secret, "--yes").exit_code == 0
    again = invoke(data, "import", str(tmp_path / "e.jsonl"))
    assert again.exit_code == 0, again.output
    line = " ".join(again.stdout.split())
    assert line.startswith("imported 0 memories, skipped 1 duplicate (1 by id: this store has or had them"), line
