"""Project layers: a memory belongs to one project's layer or to its owner's global layer.

Library and MCP (real client sessions, in process and over stdio with ``--project auto`` in a
real git repository): projects never see each other's memories, the global layer is seen from
every project, each result names its layer, another user sees none of it, and filters, as_of
and max_tokens work as before. A ledger and index made before layers are migrated on open.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._project import detect_project, normalize_remote
from memorch.errors import ConfigurationError, ValidationError
from memorch.serve._app import build_server

from .conftest import fake_llm_config
from .fake_llm import FakeLLM
from .mcp_helpers import memorch_command, server_env


def texts(result: dict) -> list[str]:
    return sorted(r["memory"] for r in result["results"])


def labels(result: dict) -> dict[str, tuple[str, str | None]]:
    return {r["memory"]: (r["layer"], r.get("project")) for r in result["results"]}  # MCP hits omit a None


async def _seed(amem: AsyncMemory) -> None:
    """User u: one global memory, one in project A, one in project B; user v: one in project A."""
    await amem.add("I prefer tabs over spaces", user_id="u", infer=False)
    await amem.add("This repository tests with pytest", user_id="u", project="A", infer=False)
    await amem.add("This repository tests with unittest", user_id="u", project="B", infer=False)
    await amem.add("This repository deploys to Fly.io", user_id="v", project="A", infer=False)


# -- library ---------------------------------------------------------------------------------


async def test_projects_see_their_layer_and_the_global_one_never_another(amem: AsyncMemory) -> None:
    await _seed(amem)
    in_a = await amem.get_all(user_id="u", project="A")
    assert labels(in_a) == {
        "I prefer tabs over spaces": ("global", None),
        "This repository tests with pytest": ("project", "A"),
    }
    in_b = await amem.get_all(user_id="u", project="B")
    assert texts(in_b) == ["I prefer tabs over spaces", "This repository tests with unittest"]
    found = await amem.search("which test framework does this repository use?", user_id="u", project="A", threshold=0)
    assert "This repository tests with unittest" not in texts(found)
    assert labels(found)["This repository tests with pytest"] == ("project", "A")
    found_b = await amem.search("which test framework does this repository use?", user_id="u", project="B")
    assert "This repository tests with unittest" in texts(found_b)  # B's, never A's
    assert "This repository tests with pytest" not in texts(found_b)
    # Without a project every layer is seen, each labelled (the scope rule: a part not given matches all).
    everything = await amem.get_all(user_id="u")
    assert labels(everything)["This repository tests with unittest"] == ("project", "B")
    assert len(everything["results"]) == 3


async def test_another_user_never_sees_a_project_memory(amem: AsyncMemory) -> None:
    await _seed(amem)
    assert "This repository deploys to Fly.io" not in texts(await amem.get_all(user_id="u", project="A"))
    found = await amem.search("where does this repository deploy?", user_id="u", project="A", threshold=0)
    assert "This repository deploys to Fly.io" not in texts(found)
    assert texts(await amem.get_all(user_id="v", project="A")) == ["This repository deploys to Fly.io"]
    assert "I prefer tabs over spaces" not in texts(await amem.search("tabs or spaces?", user_id="v", project="A"))


async def test_configured_project_is_the_default_and_global_is_asked_for(config: MemoryConfig) -> None:
    memory = AsyncMemory(config, project="github.com/acme/app")
    try:
        added = await memory.add("The API server listens on port 8080", user_id="u", infer=False)
        mine = await memory.add("I write commit messages in English", user_id="u", infer=False, layer="global")
        seen = await memory.get_all(user_id="u")
        assert labels(seen) == {
            "The API server listens on port 8080": ("project", "github.com/acme/app"),
            "I write commit messages in English": ("global", None),
        }
        other = await memory.get_all(user_id="u", project="github.com/acme/other")
        assert texts(other) == ["I write commit messages in English"]
        # Id-level operations follow the id rule: the id names the memory, and it keeps its layer.
        memory_id = added["results"][0]["id"]
        await memory.update(memory_id, "The API server listens on port 9090")
        assert (await memory.get(memory_id))["layer"] == "project"
        await memory.delete(memory_id)
        await memory.restore(memory_id)
        restored = await memory.get(memory_id)
        assert (restored["project"], restored["memory"]) == (
            "github.com/acme/app",
            "The API server listens on port 9090",
        )
        assert mine["results"][0]["event"] == "ADD"
    finally:
        await memory.close()


@pytest.mark.parametrize("purge", [False, True])
async def test_delete_all_of_a_project_takes_that_layer_alone(amem: AsyncMemory, purge: bool) -> None:
    """The global layer is every project's: "forget project a" took it too (a newcomer's trial).
    With a project, delete_all reaches that layer alone; without one, every layer."""
    a = (await amem.add("A1", user_id="u", project="a", infer=False))["results"][0]["id"]
    await amem.add("B1", user_id="u", project="b", infer=False)
    await amem.add("G1", user_id="u", project="a", layer="global", infer=False)
    if purge:  # a memory of project a deleted before: a purge of the project takes its history too
        old = (await amem.add("A0", user_id="u", project="a", infer=False))["results"][0]["id"]
        await amem.delete(old)
    done = await amem.delete_all(user_id="u", project="a", purge=purge)
    assert done["ids"] == [a]
    left = {m["memory"] for m in (await amem.get_all(user_id="u"))["results"]}
    assert left == {"B1", "G1"}
    if purge:
        assert [e["event"] for e in await amem.history(old)] == ["PURGE"]  # gone for good, with project a
    everything = await amem.delete_all(user_id="u", purge=purge)
    assert everything["deleted"] == 2 and (await amem.get_all(user_id="u"))["results"] == []


async def test_layer_argument_is_checked(amem: AsyncMemory) -> None:
    with pytest.raises(ValidationError) as no_project:
        await amem.add("x", user_id="u", layer="project", infer=False)
    assert no_project.value.error_code == "PROJECT_REQUIRED" and "--project" in no_project.value.suggestion
    with pytest.raises(ValidationError) as bad:
        await amem.add("x", user_id="u", project="A", layer="team", infer=False)
    assert bad.value.error_code == "INVALID_LAYER"
    with pytest.raises(ValidationError) as bad_name:
        await amem.search("x", user_id="u", project="a\x01b")
    assert bad_name.value.error_code == "INVALID_SCOPE"
    assert (await amem.get_all(user_id="u"))["results"] == []  # nothing was stored


async def test_duplicates_are_found_in_the_layers_a_project_sees_only(amem: AsyncMemory) -> None:
    await _seed(amem)
    # A fact already global is not copied into the project: NONE names the global memory.
    repeat = await amem.add("I prefer tabs over spaces.", user_id="u", project="A", infer=False)
    assert repeat["results"][0]["event"] == "NONE"
    assert (await amem.get(repeat["results"][0]["id"]))["layer"] == "global"
    # The same text in another project is that project's own memory, not a duplicate of B's,
    # and no hint points at B's memory (which A must not see).
    again = await amem.add("This repository tests with unittest", user_id="u", project="A", infer=False)
    assert again["results"][0]["event"] == "ADD" and "similar" not in again["results"][0]
    assert labels(await amem.get_all(user_id="u", project="A"))["This repository tests with unittest"] == (
        "project",
        "A",
    )
    # A global add from project A is checked against A's and the global layer, not B's.
    made_global = await amem.add(
        "This repository tests with unittest", user_id="u", project="C", layer="global", infer=False
    )
    assert made_global["results"][0]["event"] == "ADD"
    assert "This repository tests with unittest" in texts(await amem.get_all(user_id="u", project="Z"))


async def test_the_model_reconciles_within_the_layers_a_project_sees(tmp_path: Path, fake: FakeLLM) -> None:
    """With an LLM, the candidates it is shown are the project's and the global memories only;
    a model's ADD lands in the project, and its UPDATE of a global memory keeps that one global."""
    memory = AsyncMemory(fake_llm_config(tmp_path, fake))
    try:
        await memory.add("The service is written in Go", user_id="u", project="B", infer=False)
        await memory.add("The service is written in Rust", user_id="u", project="A", infer=False)
        home = await memory.add("I live in Berlin", user_id="u", infer=False)
        fake.push({"memory": [{"event": "ADD", "text": "The service uses Postgres"}]})
        await memory.add("The service keeps its data in Postgres", user_id="u", project="A")
        prompt = fake.chat_requests()[-1].prompt
        assert "The service is written in Rust" in prompt and "The service is written in Go" not in prompt
        fake.responder = lambda request: {
            "memory": [{"event": "UPDATE", "id": _number(request.prompt, "Berlin"), "text": "I live in Hamburg"}]
        }
        moved = await memory.add("I moved to Hamburg", user_id="u", project="A")
        assert moved["results"][0]["event"] == "UPDATE"
        assert "The service is written in Go" not in fake.chat_requests()[-1].prompt
        assert labels(await memory.get_all(user_id="u", project="B")) == {
            "The service is written in Go": ("project", "B"),
            "I live in Hamburg": ("global", None),
        }
        assert (await memory.get(home["results"][0]["id"]))["memory"] == "I live in Hamburg"
        assert labels(await memory.get_all(user_id="u", project="A"))["The service uses Postgres"] == ("project", "A")
    finally:
        await memory.close()


def _number(prompt: str, text: str) -> int:
    """The small integer the prompt numbers the candidate ending in ``text`` with (as in test_inference)."""
    block = prompt.split("EXISTING MEMORIES:\n")[1].split("\n\n")[0]
    return next(int(line.split(":")[0]) for line in block.splitlines() if line.endswith(text))


async def test_filters_as_of_and_max_tokens_keep_to_the_layers(amem: AsyncMemory) -> None:
    await amem.add("Lint with ruff", user_id="u", project="A", metadata={"kind": "tooling"}, infer=False)
    await amem.add("Lint with flake8", user_id="u", project="B", metadata={"kind": "tooling"}, infer=False)
    await amem.add("I like short answers", user_id="u", metadata={"kind": "style"}, infer=False)
    await amem.add("Format with black", user_id="u", metadata={"kind": "tooling"}, infer=False)
    tooling = {"kind": "tooling"}
    assert texts(await amem.get_all(user_id="u", project="A", filters=tooling)) == [
        "Format with black",
        "Lint with ruff",
    ]
    found = await amem.search("which linter?", user_id="u", project="A", filters=tooling, threshold=0)
    assert texts(found) == ["Format with black", "Lint with ruff"]
    now = "2999-01-01"
    past = await amem.get_all(user_id="u", project="A", as_of=now)
    assert labels(past) == {
        "Lint with ruff": ("project", "A"),
        "I like short answers": ("global", None),
        "Format with black": ("global", None),
    }
    past_search = await amem.search("which linter?", user_id="u", project="B", as_of=now, threshold=0)
    assert "Lint with ruff" not in texts(past_search) and "Lint with flake8" in texts(past_search)
    assert labels(past_search)["Lint with flake8"] == ("project", "B")
    budget = await amem.get_all(user_id="u", project="A", max_tokens=5)
    assert len(budget["results"]) == 1 and budget["omitted"] == 2


async def test_a_store_made_before_layers_is_migrated(config: MemoryConfig) -> None:
    """An existing ledger and LanceDB table without the layer column: every memory in them is
    in its owner's global layer, found from any project; new project memories work alongside."""
    memory = AsyncMemory(config)
    await memory.add("I am allergic to peanuts", user_id="u", infer=False)
    await memory.search("peanuts", user_id="u")  # the vector table exists
    await memory.close()
    _drop_layer_columns(config.data_dir)

    memory = AsyncMemory(config)
    try:
        await memory.add("This repository uses Poetry", user_id="u", project="A", infer=False)
        found = await memory.search("what am I allergic to?", user_id="u", project="A")
        assert labels(found)["I am allergic to peanuts"] == ("global", None)
        assert labels(await memory.get_all(user_id="u", project="A")) == {
            "I am allergic to peanuts": ("global", None),
            "This repository uses Poetry": ("project", "A"),
        }
        assert texts(await memory.get_all(user_id="u", project="B")) == ["I am allergic to peanuts"]
        assert "This repository uses Poetry" not in texts(await memory.search("Poetry", user_id="u", project="B"))
    finally:
        await memory.close()


def _drop_layer_columns(data_dir: Path) -> None:
    """Make the store look as an earlier version left it (no ``project`` column anywhere)."""
    import lancedb

    with sqlite3.connect(data_dir / "memorch.db") as conn:
        conn.execute("DROP INDEX IF EXISTS memories_layer")
        for table in ("memories", "history", "relations"):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN project")
    table = lancedb.connect(str(data_dir / "lance")).open_table("memories")
    for index in table.list_indices():
        if index.columns == ["project"]:
            table.drop_index(index.name)
    table.drop_columns(["project"])
    assert "project" not in table.schema.names


# -- --project auto ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/app.git",
        "https://alice:ghp_secret@GitHub.com/acme/app",
        "http://github.com/acme/app/",
        "git@github.com:acme/app.git",
        "ssh://git@github.com:22/acme/app.git",
        "git+ssh://github.com/acme/app",
    ],
)
def test_one_repository_one_name_however_its_remote_is_written(url: str) -> None:
    assert normalize_remote(url) == "github.com/acme/app"


def test_the_path_keeps_its_case() -> None:
    """Memories stored under a project's name keep that name: a path lower-cased after the fact
    would hide them (a review of a change that did so)."""
    assert normalize_remote("https://GitHub.com/Acme/App.git") == "github.com/Acme/App"


def test_local_remotes_stay_paths() -> None:
    assert normalize_remote("/srv/git/app.git") == "/srv/git/app"
    assert normalize_remote("file:///srv/git/app.git/") == "/srv/git/app"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _repo(path: Path, remote: str | None = None) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "init")
    if remote:
        _git(path, "remote", "add", "origin", remote)
    return path


def test_auto_names_the_repository(tmp_path: Path) -> None:
    with_remote = _repo(tmp_path / "app", "https://bob:token@github.com/acme/app.git")
    (with_remote / "src" / "deep").mkdir(parents=True)
    assert detect_project(with_remote / "src" / "deep") == "github.com/acme/app"
    # No credentials reach the name, and an ssh clone elsewhere is the same project.
    ssh_clone = _repo(tmp_path / "elsewhere" / "app", "git@github.com:acme/app.git")
    assert detect_project(ssh_clone) == detect_project(with_remote)

    local = _repo(tmp_path / "local")
    assert detect_project(local) == str(local.resolve())
    worktree = tmp_path / "local-feature"
    _git(local, "worktree", "add", "-q", "-b", "feature", str(worktree))
    assert detect_project(worktree) == str(local.resolve())  # worktrees of one repository: one project
    assert MemoryConfig(data_dir=tmp_path / "d", project=" explicit/name ").project == "explicit/name"
    with pytest.raises(ConfigurationError) as bad:
        MemoryConfig(data_dir=tmp_path / "d", project="x" * 300)
    assert bad.value.error_code == "INVALID_SETTING" and "project" in bad.value.message


def test_auto_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    with pytest.raises(ConfigurationError) as error:
        detect_project(plain)
    assert error.value.error_code == "PROJECT_NOT_DETECTED" and "--project NAME" in error.value.suggestion

    def serve(project: str) -> subprocess.CompletedProcess[str]:  # stdin closed: it ends at once
        command = [*memorch_command(), "serve", "--project", project]
        env = server_env(tmp_path / "data")
        return subprocess.run(
            command, cwd=plain, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )

    started = serve("auto")
    assert started.returncode == 1
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1 and "[PROJECT_NOT_DETECTED]" in lines[0] and "Traceback" not in started.stderr
    named = serve("acme/app")
    # The start line says which project's layer this server writes to (a client's log shows it).
    started = f"data directory {tmp_path / 'data'}, user_id 'default' by default, project acme/app, no LLM"
    assert started in named.stderr, named.stderr


def test_auto_in_memorchs_own_clone_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer's trial: the README's `uv run --directory /path/to/memorch` entry starts the
    server in the clone, and `auto` named every workspace after memorch's own repository."""
    import memorch.domain._project as project

    real = project.MEMORCH_CLONE  # a clone's top (its server/ is the package) or site-packages
    assert any((real / package / "domain" / "_project.py").is_file() for package in ("server", "memorch"))
    clone = _repo(tmp_path / "memorch", "https://github.com/someone/memorch.git")
    (clone / "server").mkdir()
    monkeypatch.setattr(project, "MEMORCH_CLONE", clone.resolve())
    with pytest.raises(ConfigurationError) as error:
        detect_project(clone / "server")
    assert error.value.error_code == "PROJECT_NOT_DETECTED" and "uv run --project" in error.value.suggestion
    # A project whose virtualenv holds memorch is still the project.
    monkeypatch.setattr(project, "MEMORCH_CLONE", (clone / ".venv" / "lib" / "site-packages").resolve())
    assert detect_project(clone) == "github.com/someone/memorch"


# -- MCP -------------------------------------------------------------------------------------


async def test_mcp_session_of_a_project_server(config: MemoryConfig) -> None:
    project_config = config.model_copy(update={"project": "github.com/acme/app"})
    other_config = config.model_copy(update={"project": "github.com/acme/other"})
    async with Client(build_server(project_config)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["add_memory"].input_schema["properties"]["layer"]["enum"] == ["project", "global"]
        assert "github.com/acme/app" in tools["search_memories"].description
        # Without `project` it reaches layers no reading tool shows here: its description says so.
        assert "other projects' too, unless `project`" in tools["delete_all_memories"].description
        here = await client.call_tool("add_memory", {"text": "Run the tests with make check", "infer": False})
        assert here.structured_content["results"][0]["event"] == "ADD"
        everywhere = {"text": "I want answers in British English", "layer": "global", "infer": False}
        assert not (await client.call_tool("add_memory", everywhere)).is_error
        found = await client.call_tool("search_memories", {"query": "how do I run the tests?", "threshold": 0})
        assert labels(found.structured_content)["Run the tests with make check"] == ("project", "github.com/acme/app")
        listed = await client.call_tool("list_memories", {"max_tokens": 1000})
        assert labels(listed.structured_content)["I want answers in British English"] == ("global", None)
        bad = await client.call_tool("add_memory", {"text": "x", "layer": "team"})
        assert bad.is_error and bad.content[0].text.startswith("[INVALID_LAYER]") and "'global'" in bad.content[0].text
    async with Client(build_server(other_config)) as client:
        found = await client.call_tool("search_memories", {"query": "how do I run the tests?", "threshold": 0})
        assert texts(found.structured_content) == ["I want answers in British English"]
        listed = await client.call_tool("list_memories", {})
        assert texts(listed.structured_content) == ["I want answers in British English"]
        other_user = await client.call_tool("list_memories", {"user_id": "someone-else"})
        assert other_user.structured_content["results"] == []
    async with Client(build_server(config)) as client:  # no project: the layer argument has nowhere to go
        refused = await client.call_tool("add_memory", {"text": "x", "layer": "project"})
        assert refused.is_error and "[PROJECT_REQUIRED]" in refused.content[0].text


async def test_stdio_server_with_project_auto_in_a_worktree(tmp_path: Path) -> None:
    """A real ``memorch serve --project auto`` launched in a worktree of a repository with a
    remote, and a second one launched through MEMORCH_PROJECT in the main checkout."""
    main = _repo(tmp_path / "app", "git@github.com:acme/app.git")
    worktree = tmp_path / "app-feature"
    _git(main, "worktree", "add", "-q", "-b", "feature", str(worktree))
    command = memorch_command()
    data = tmp_path / "data"
    params = StdioServerParameters(
        command=command[0], args=[*command[1:], "serve", "--project", "auto"], env=server_env(data), cwd=str(worktree)
    )
    async with Client(params, mode="legacy") as client:
        added = await client.call_tool("add_memory", {"text": "The feature branch adds OAuth", "infer": False})
        assert added.structured_content["results"][0]["event"] == "ADD"
    env = server_env(data, MEMORCH_PROJECT="auto")
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=env, cwd=str(main))
    async with Client(params, mode="legacy") as client:
        found = await client.call_tool("search_memories", {"query": "what does the branch add?", "threshold": 0})
        assert labels(found.structured_content) == {"The feature branch adds OAuth": ("project", "github.com/acme/app")}


async def test_export_and_import_keep_the_layer(config: MemoryConfig, tmp_path: Path) -> None:
    import json

    source = AsyncMemory(config)
    target = AsyncMemory(config.model_copy(update={"data_dir": tmp_path / "restored"}))
    try:
        await source.add("Deploy with make release", user_id="u", project="A", infer=False)
        await source.add("I use vim keybindings", user_id="u", infer=False)
        export = tmp_path / "backup.jsonl"
        await source.export_memories(export)
        lines = [json.loads(line) for line in export.read_text().splitlines()]
        assert {line["memory"]: line["project"] for line in lines} == {
            "Deploy with make release": "A",
            "I use vim keybindings": None,
        }
        assert (await target.import_memories(lines))["imported"] == 2
        assert labels(await target.get_all(user_id="u", project="A")) == {
            "Deploy with make release": ("project", "A"),
            "I use vim keybindings": ("global", None),
        }
        assert texts(await target.search("how do I deploy?", user_id="u", project="B")) == []
    finally:
        await source.close()
        await target.close()


def test_the_cli_adds_to_the_global_layer_with_layer_global(tmp_path: Path) -> None:
    from .test_cli import invoke

    added = invoke(tmp_path, "add", "I prefer British English", "--layer", "global", MEMORCH_PROJECT="p/app")
    assert added.exit_code == 0, added.output
    invoke(tmp_path, "add", "Run the tests with make check", MEMORCH_PROJECT="p/app")
    elsewhere = invoke(tmp_path, "list", MEMORCH_PROJECT="p/other").stdout
    assert "British English" in elsewhere and "make check" not in elsewhere
    refused = invoke(tmp_path, "add", "x", "--layer", "nope", MEMORCH_PROJECT="p/app")
    assert refused.exit_code == 1 and "[INVALID_LAYER]" in refused.stderr


async def test_a_call_cannot_name_the_project_auto(amem: AsyncMemory) -> None:
    """``auto`` is detected where the process starts (the setting); a call naming it stored a
    project literally called "auto" (a newcomer's trial)."""
    with pytest.raises(ValidationError) as refused:
        await amem.add("x", user_id="me", project="auto", infer=False)
    assert refused.value.error_code == "INVALID_SCOPE" and "MEMORCH_PROJECT=auto" in refused.value.suggestion
    assert (await amem.get_all(user_id="me"))["results"] == []
