"""Expiry on the command line, through the real CLI (typer's runner) on a real data directory:
``add --expires-at``, ``update --expires-at WHEN|never``, ``list`` / ``get`` showing the expiry,
``maintain``, and a bad expiry refused in one line with nothing stored."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from memorch.cli._main import app

runner = CliRunner()


def invoke(data: Path, *args: str, **env: str) -> Any:
    base = {"MEMORCH_DATA_DIR": str(data), "MEMORCH_GRAPH": "off", "MEMORCH_USER_ID": "cli-user", "COLUMNS": "80"}
    return runner.invoke(app, list(args), env={**base, **env})


def ok_json(data: Path, *args: str, **env: str) -> Any:
    result = invoke(data, *args, "--json", **env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored_expiry(data: Path, memory_id: str) -> str | None:
    with sqlite3.connect(data / "memorch.db") as db:
        return db.execute("SELECT expires_at FROM memories WHERE id = ?", (memory_id,)).fetchone()[0]


def test_add_update_list_and_get_show_the_expiry(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    added = ok_json(tmp_path, "add", "Parked on level 3", "--expires-at", "7d")
    memory_id, expires = added["results"][0]["id"], added["expires_at"]
    week = datetime.fromisoformat(expires) - before
    assert timedelta(days=7) <= week < timedelta(days=7, seconds=30)
    assert stored_expiry(tmp_path, memory_id) == expires
    kept = ok_json(tmp_path, "add", "I play the cello")["results"][0]["id"]

    listing = invoke(tmp_path, "list")
    assert listing.exit_code == 0 and max(len(line) for line in listing.stdout.splitlines()) <= 80
    local = datetime.fromisoformat(expires).astimezone().strftime("%Y-%m-%d %H:%M")
    lines = {line for line in listing.stdout.splitlines() if "level 3" in line or "cello" in line}
    assert any(f"(expires {local})" in line and "level 3" in line for line in lines), listing.stdout
    assert not any("expires" in line for line in lines if "cello" in line)
    assert ok_json(tmp_path, "get", memory_id)["expires_at"] == expires
    assert "expires_at" not in ok_json(tmp_path, "get", kept)

    changed = invoke(tmp_path, "update", memory_id, "Parked on level 4", "--expires-at", "never")
    assert changed.exit_code == 0 and changed.stdout.splitlines()[-1] == "never expires", changed.output
    assert stored_expiry(tmp_path, memory_id) is None and "expires_at" not in ok_json(tmp_path, "get", memory_id)

    later = ok_json(tmp_path, "update", kept, "I play the cello on Fridays", "--expires-at", "2030-01-01")
    assert later["expires_at"] == stored_expiry(tmp_path, kept) == "2030-01-01T23:59:59.999999+00:00"
    unchanged = ok_json(tmp_path, "update", kept, "I play the cello on Fridays and Sundays")  # omitted: kept
    assert unchanged["event"] == "UPDATE" and stored_expiry(tmp_path, kept) == later["expires_at"]


def test_a_bad_expiry_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    for bad in ("yesterday", "2001-01-01", "0d"):
        refused = invoke(tmp_path, "add", "Parked on level 3", "--expires-at", bad)
        assert refused.exit_code == 1 and refused.stdout == ""
        assert refused.stderr.startswith("error [INVALID_EXPIRY]") and len(refused.stderr.strip().splitlines()) == 1
    assert ok_json(tmp_path, "list")["results"] == []
    memory_id = ok_json(tmp_path, "add", "I play the cello")["results"][0]["id"]
    refused = invoke(tmp_path, "update", memory_id, "changed", "--expires-at", "soon")
    assert refused.exit_code == 1 and "INVALID_EXPIRY" in refused.stderr
    assert ok_json(tmp_path, "get", memory_id)["memory"] == "I play the cello"


def test_default_expiry_applies_to_a_cli_add(tmp_path: Path) -> None:
    rule = json.dumps({"run_id": "1h"})
    run_memory = ok_json(tmp_path, "add", "Scratch note", "--run-id", "r1", MEMORCH_DEFAULT_EXPIRY=rule)
    assert run_memory["expires_at"] == stored_expiry(tmp_path, run_memory["results"][0]["id"])
    plain = ok_json(tmp_path, "add", "Kept note", MEMORCH_DEFAULT_EXPIRY=rule)  # no run: no rule applies
    assert "expires_at" not in plain and stored_expiry(tmp_path, plain["results"][0]["id"]) is None


def test_maintain_purges_what_expired_and_says_so(tmp_path: Path) -> None:
    gone = ok_json(tmp_path, "add", "The door code is 4711", "--expires-at", "1s")["results"][0]["id"]
    kept = ok_json(tmp_path, "add", "I play the cello")["results"][0]["id"]
    nothing = invoke(tmp_path, "maintain")
    assert nothing.exit_code == 0, nothing.output
    assert nothing.stdout.strip() == "purged 0 expired memories; cleared the text of 0 old history events"
    time.sleep(1.2)  # (a list now would hide it, and its process's own sweep could purge it first)
    done = invoke(tmp_path, "maintain")
    assert done.stdout.strip() == "purged 1 expired memory; cleared the text of 0 old history events"
    with sqlite3.connect(tmp_path / "memorch.db") as db:
        assert db.execute("SELECT count(*) FROM memories WHERE id = ?", (gone,)).fetchone()[0] == 0
        events = db.execute("SELECT event, old_memory, new_memory FROM history WHERE memory_id = ?", (gone,))
        assert events.fetchall() == [("PURGE", None, None)]
    assert [r["id"] for r in ok_json(tmp_path, "list")["results"]] == [kept]
    assert ok_json(tmp_path, "maintain") == {"expired": 0, "expired_ids": [], "history_events_cleared": 0}


def test_a_long_memory_keeps_its_expiry_in_view_at_80_columns(tmp_path: Path) -> None:
    text = "Dentist appointment with Dr Silva on Friday morning at nine, bring the insurance card and forms"
    expires = ok_json(tmp_path, "add", text, "--expires-at", "2030-01-01")["expires_at"]
    listing = invoke(tmp_path, "list")
    local = datetime.fromisoformat(expires).astimezone().strftime("%Y-%m-%d %H:%M")
    [line] = [line for line in listing.stdout.splitlines() if "Dentist" in line]
    assert len(line) <= 80 and "…" in line and f"(expires {local})" in line, listing.stdout
