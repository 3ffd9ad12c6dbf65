"""Every CLI command with bad input: one `error [CODE] ...` line on stderr, never a traceback.

Each case is a real `memorch` process (the console script) on its own data directory; the cases
run concurrently, once per module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from memorch.cli._errors import cli_words
from memorch.config import MemoryConfig, package_version
from memorch.errors import ConfigurationError

from .mcp_helpers import memorch_command, server_env

MISSING = "00000000-0000-4000-8000-000000000000"
MCP_WORDS = ("search_memories", "list_memories", "get_memory", "memory_history", "add_memory", "user_id", "memory_id")


@dataclass
class Case:
    args: list[str]
    code: str  # the error code the line must carry
    says: str  # and a phrase it must contain
    env: dict[str, str] = field(default_factory=dict)
    data_dir: str | None = None  # "file" | "proc": a data directory that cannot be one


CASES = {
    "add-empty-text": Case(["add", ""], "EMPTY_TEXT", "TEXT"),
    "add-bad-metadata": Case(["add", "x", "--metadata", "{bad"], "USAGE_ERROR", "'--metadata': is not valid JSON"),
    "search-empty-query": Case(["search", ""], "EMPTY_TEXT", "QUERY"),
    "graph-empty-entity": Case(["graph", ""], "EMPTY_TEXT", "in ENTITY", env={"MEMORCH_GRAPH": "on"}),
    "search-bad-weights-env": Case(
        ["search", "q"], "INVALID_SETTING", "MEMORCH_SEARCH_WEIGHTS", env={"MEMORCH_SEARCH_WEIGHTS": "{bad"}
    ),
    "list-bad-log-level": Case(
        ["list"], "INVALID_SETTING", "MEMORCH_LOG_LEVEL must be", env={"MEMORCH_LOG_LEVEL": "loud"}
    ),
    "get-bad-id": Case(["get", "not-an-id"], "INVALID_MEMORY_ID", "use `memorch search` or `memorch list`"),
    "list-zero-limit": Case(["list", "--limit", "0"], "INVALID_LIMIT", "from 1 to 1000"),
    "get-table-id": Case(
        ["get", "b0f8ef85"], "INVALID_MEMORY_ID", "tables shorten ids: add --full-ids to `memorch list`"
    ),
    "update-missing": Case(["update", MISSING, "new text"], "MEMORY_NOT_FOUND", "`memorch search`"),
    "delete-missing": Case(["delete", MISSING], "MEMORY_NOT_FOUND", "`memorch list`"),
    "history-bad-id": Case(["history", "nope"], "INVALID_MEMORY_ID", "`memorch search`"),
    "delete-all-without-scope": Case(["delete-all"], "SCOPE_REQUIRED", "does not default to MEMORCH_USER_ID"),
    "delete-all-without-terminal": Case(
        ["delete-all", "--user-id", "alice"], "CONFIRMATION_REQUIRED", "no terminal to ask on"
    ),
    "delete-all-bad-scope": Case(["delete-all", "--user-id", " ", "--yes"], "INVALID_SCOPE", "must be a non-empty"),
    "stats-data-dir-is-a-file": Case(["stats"], "DATA_DIR_UNUSABLE", "(MEMORCH_DATA_DIR) is a file", data_dir="file"),
    "reindex-data-dir-in-proc": Case(
        ["reindex"], "DATA_DIR_UNUSABLE", "(MEMORCH_DATA_DIR) cannot be created", data_dir="proc"
    ),
    "graph-bad-flag": Case(
        ["graph", "Alice"],
        "INVALID_SETTING",
        "MEMORCH_GRAPH must be on or off (got 'maybe')",
        env={"MEMORCH_GRAPH": "maybe"},
    ),
    "import-not-utf8": Case(["import", "{latin1}"], "IMPORT_NOT_UTF8", "line 2: is not UTF-8 text (byte 0xe9)"),
    "import-bad-json": Case(["import", "{badjson}"], "INVALID_JSONL", "badjson.jsonl line 3: is not valid JSON"),
    "import-missing-file": Case(["import", "{missing}"], "IMPORT_FILE_UNREADABLE", "No such file"),
    # Every format says so (a zip reader said "is not a readable zip file", UNKNOWN_IMPORT_FORMAT).
    "import-missing-zip": Case(
        ["import", "{missing}", "--from", "openmemory"], "IMPORT_FILE_UNREADABLE", "No such file"
    ),
    "import-missing-database": Case(
        ["import", "{missing}", "--from", "mcp-memory-service"], "IMPORT_FILE_UNREADABLE", "No such file"
    ),
    "export-bad-size-env": Case(
        ["export", "{out}"],
        "INVALID_SETTING",
        "MEMORCH_MAX_TEXT_BYTES must be a whole number (got 'abc')",
        env={"MEMORCH_MAX_TEXT_BYTES": "abc"},
    ),
    # One code for "no model configured", as `import --infer` says it (reprocess said NO_LLM).
    "reprocess-bad-timeout-env": Case(
        ["reprocess"], "INVALID_SETTING", "MEMORCH_LLM_TIMEOUT must be a number", env={"MEMORCH_LLM_TIMEOUT": "soon"}
    ),
    "user-id-env-with-a-space": Case(
        ["list"], "INVALID_SETTING", "MEMORCH_USER_ID is invalid: user_id must be", env={"MEMORCH_USER_ID": "alice "}
    ),
    "llm-base-without-scheme": Case(
        ["add", "I like tea"],
        "INVALID_SETTING",
        "MEMORCH_LLM_API_BASE must be a URL starting with http:// or https:// "
        "(e.g. http://127.0.0.1:4000/v1 for an OpenAI-compatible server)",
        env={"MEMORCH_LLM_MODEL": "openai/local", "MEMORCH_LLM_API_BASE": "127.0.0.1:4000/v1"},
    ),
    "doctor-data-dir-is-a-file": Case(["doctor"], "DATA_DIR_UNUSABLE", "MEMORCH_DATA_DIR", data_dir="file"),
    "option-without-its-value": Case(["add", "--user-id"], "USAGE_ERROR", "see `memorch add --help`"),
    "no-such-command": Case(["users"], "USAGE_ERROR", "Did you mean 'serve'? Suggestion: see `memorch --help`"),
    "serve-port-out-of-range": Case(["serve", "--port", "99999"], "USAGE_ERROR", "'--port': must be a TCP port from 1"),
    "serve-bad-transport": Case(["serve", "--transport", "pigeon"], "USAGE_ERROR", "'--transport': must be stdio"),
    "serve-bad-flag": Case(["serve"], "INVALID_SETTING", "MEMORCH_GRAPH", env={"MEMORCH_GRAPH": "maybe"}),
    "unknown-command": Case(["remember", "x"], "USAGE_ERROR", "No such command 'remember'"),
}


def _run(name: str, case: Case, root: Path) -> subprocess.CompletedProcess[str]:
    work = root / name
    work.mkdir()
    files = {
        "latin1": work / "latin1.jsonl",
        "badjson": work / "badjson.jsonl",
        "missing": work / "missing.jsonl",
        "out": work / "out.jsonl",
    }
    files["latin1"].write_bytes(b'{"memory": "fine"}\n{"memory": "caf\xe9"}\n')
    files["badjson"].write_text('{"memory": "fine"}\n\n{"memory": oops}\n')
    data = work / "data"
    if case.data_dir == "file":
        data.write_text("not a directory")
    elif case.data_dir == "proc":
        data = Path("/proc/memorch-no-such-dir/data")
    args = [str(files[arg[1:-1]]) if arg[1:-1] in files else arg for arg in case.args]  # "{latin1}" → its path
    return subprocess.run(
        [*memorch_command(), *args],
        env=server_env(data, **case.env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    commands = {
        "add",
        "search",
        "list",
        "get",
        "update",
        "delete",
        "delete-all",
        "history",
        "stats",
        "reindex",
        "graph",
    }
    commands |= {"import", "export", "reprocess", "doctor", "serve"}
    assert commands <= {case.args[0] for case in CASES.values()}  # every command meets bad input
    root = tmp_path_factory.mktemp("cli-errors")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, name, case, root) for name, case in CASES.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_in_the_cli_words(
    results: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    case, done = CASES[name], results[name]
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, nothing else
    assert lines[0].startswith(f"error [{case.code}] "), lines[0]
    assert case.says in lines[0], lines[0]
    suggestion = lines[0].partition(". Suggestion: ")[2]
    assert not any(word in suggestion for word in MCP_WORDS), suggestion  # tools are the MCP surface's words


BUG = "import sys, memorch.api._memory as s; s.Memory.stats = lambda self: [][1]; from memorch.cli import main; main()"
# `memorch serve` without options: the entry point's own path, not the CLI's (server/cli/_launch.py).
FAST_PATH_BUG = "import memorch.serve._app as a; a.build_server = lambda c: [][1]; from memorch.cli import main; main()"


@pytest.mark.parametrize(
    ("script", "command", "log_level", "logged"),
    [
        (BUG, "stats", None, False),
        (BUG, "stats", "ERROR", True),
        (FAST_PATH_BUG, "serve", None, True),  # the server logs on stderr (WARNING by default)
    ],
)
def test_a_bug_is_an_internal_error_with_the_traceback_only_in_the_log(
    tmp_path: Path, script: str, command: str, log_level: str | None, logged: bool
) -> None:
    env = server_env(tmp_path, **({"MEMORCH_LOG_LEVEL": log_level} if log_level else {}))
    done = subprocess.run(
        [sys.executable, "-c", script, command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error [")]
    assert errors == [
        "error [INTERNAL_ERROR] memorch hit an internal error (IndexError). Suggestion: this is a bug in memorch: "
        + ("the traceback is in the log above" if logged else "run it again with MEMORCH_LOG_LEVEL=DEBUG")
        + ", then report it"
    ]
    if logged:  # the log (stderr here) has it, with the command
        assert "internal error in `" in done.stderr and "Traceback" in done.stderr and "IndexError" in done.stderr
        assert done.stderr.strip().endswith("then report it")  # the error line comes last
    else:
        assert done.stderr.strip() == errors[0]


def test_version() -> None:
    done = subprocess.run([*memorch_command(), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"memorch {package_version()}\n" and package_version()


def test_invalid_settings_name_the_variable_for_library_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig(graph="maybe", max_text_bytes="x")  # type: ignore[arg-type]
    assert raised.value.error_code == "INVALID_SETTING"
    assert (
        raised.value.message == "graph must be on or off (got 'maybe'); max_text_bytes must be a whole number (got 'x')"
    )
    monkeypatch.setenv("MEMORCH_EMBEDDING_BATCH_SIZE", "many")
    with pytest.raises(ConfigurationError, match=r"MEMORCH_EMBEDDING_BATCH_SIZE must be a whole number \(got 'many'\)"):
        MemoryConfig()
    monkeypatch.setenv("MEMORCH_EMBEDDING_BATCH_SIZE", "0")  # no text would ever be embedded
    with pytest.raises(ConfigurationError, match=r"MEMORCH_EMBEDDING_BATCH_SIZE must be greater than 0 \(got '0'\)"):
        MemoryConfig()
    monkeypatch.delenv("MEMORCH_EMBEDDING_BATCH_SIZE")
    monkeypatch.setenv("MEMORCH_LLM_FALLBACKS", "openai/a, ollama/b")  # the documented comma list
    config = MemoryConfig(graph=False)
    assert config.llm_fallbacks == ["openai/a", "ollama/b"] and config.graph == "off"
    assert config.model_copy(update={"graph": "on"}).graph_enabled


def test_suggestions_name_the_cli_options() -> None:
    assert cli_words("pass user_id (the MCP server fills it from MEMORCH_USER_ID)") == (
        "pass --user-id (the MCP server fills it from MEMORCH_USER_ID)"
    )
    assert cli_words("it shows; pass the text in 'text'") == "it shows; pass the text in TEXT"
    example = 'give mem0\'s get_all output: {"results": [{"memory": "...", "user_id": "..."}]}'
    assert cli_words(example) == example  # a file's fields stay as the file writes them


def test_an_imported_files_error_keeps_the_files_field_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"memory": "fine", "user_id": 5}\n')
    env = {"MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_GRAPH": "off"}
    done = subprocess.run(
        [sys.executable, "-m", "memorch", "import", str(bad)], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert done.returncode == 1 and "bad.jsonl line 1: user_id" in done.stderr, done.stderr
    assert "--user-id" not in done.stderr and "user_id" in done.stderr, done.stderr


def test_serve_as_mcp_clients_run_it_starts_without_the_command_line(tmp_path: Path) -> None:
    """`memorch serve` with no options skips typer and the commands (server/cli/_launch.py: cold
    start); it still serves (initialize answered) and ends quietly when the client goes away."""
    initialize = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"t","version":"0"}}}\n'
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sys; from memorch.cli import main; main()", "serve"],
        env=server_env(tmp_path),
        input=initialize,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"id":1' in done.stdout.replace(" ", "") and "serverInfo" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "memorch.serve._app" in imported and "memorch.tools" in imported
    assert not {"typer", "memorch.cli._main", "memorch.cli._options"} & imported
