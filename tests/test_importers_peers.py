"""Moving in from a peer, with files shaped as the peers' own tools write them (a newcomer trial
made them with @modelcontextprotocol/server-memory 2026.8.31 and basic-memory 0.24.1, and checked
what basic-memory's own parser reads), and notes a review of that work found odd: YAML front
matter as basic-memory writes it (and front matter YAML cannot read), tags kept in the text,
relations of several words and inline links, an empty observation, a saved tool result, mem0's
expiry, text files in UTF-16, tables and code, and a file imported without ``--from``."""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from memorch import AsyncMemory, MemoryConfig
from memorch.cli._main import app
from memorch.errors import ValidationError
from memorch.importers import import_source
from memorch.importers._base import stable_id

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncMemory]:
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path_factory.mktemp("store"), graph="on", llm_model=""))
    yield memory
    await memory.close()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


async def texts(memory: AsyncMemory, user: str) -> dict[str, dict]:
    return {m["memory"]: m for m in (await memory.get_all(user_id=user))["results"]}


@module_loop
async def test_a_basic_memory_note_as_its_tools_write_it(store: AsyncMemory, tmp_path: Path) -> None:
    # basic-memory's write_note quotes a title holding ': ' the YAML way ('' is one quote).
    write(
        tmp_path,
        "Bob's plan- v2.md",
        "---\ntitle: 'Bob''s plan: v2'\ntype: note\npermalink: bobs-plan\n"
        "created: 2025-11-02T10:15:00+01:00\nstatus: draft\ntags:\n- planning\n---\n\n"
        "Some prose that links to [[Garden Planning]] in passing.\n\n"
        "- [tool] I use #python for scripting and #rust for speed\n"
        "- works at [[Brightline Robotics]]\n- leads [[Project Falcon]] (since May)\n",
    )
    write(tmp_path, "Thoughts.md", "---\ntitle: Thoughts\n---\n\nOnly prose here.\n")
    result = await import_source(store, "basic-memory", tmp_path, user_id="bm")
    assert result == {"imported": 4, "duplicates": 0, "skipped": {"prose-only note": 1}}
    stored = await texts(store, "bm")
    # The tags stay in the text, as basic-memory keeps them.
    tagged = stored["Bob's plan: v2: I use #python for scripting and #rust for speed"]
    assert tagged["metadata"]["tags"] == ["python", "rust"]
    assert tagged["metadata"]["note_tags"] == ["planning"]
    assert tagged["metadata"]["front_matter"] == {"status": "draft"}
    assert tagged["created_at"].startswith("2025-11-02T09:15:00")  # the note's date, in UTC
    # The id is the one an earlier memorch gave it (from the text without its tags): no duplicate.
    key = "I use for scripting and for speed"
    assert tagged["id"] == stable_id("basic-memory", "bm", None, None, "bobs-plan", "tool", key)
    assert {
        "Bob's plan: v2 works at Brightline Robotics",
        "Bob's plan: v2 leads Project Falcon",
        "Bob's plan: v2 links to Garden Planning",
    } <= set(stored)
    around = await store.graph("Brightline Robotics", user_id="bm")
    assert ("Bob's plan: v2", "works_at", "Brightline Robotics") in {
        (r["source"], r["relationship"], r["destination"]) for r in around["relations"]
    }


@module_loop
async def test_an_empty_observation_is_skipped_and_a_saved_tool_result_is_read(
    store: AsyncMemory, tmp_path: Path
) -> None:
    entity = {"type": "entity", "name": "Ana", "entityType": "person", "observations": ["", "Runs"]}
    graph = json.dumps({"entities": [entity]})
    wrapped = write(tmp_path, "read_graph.json", json.dumps({"content": [{"type": "text", "text": graph}]}))
    result = await import_source(store, "mcp-memory", wrapped, user_id="mcp")
    assert result == {"imported": 1, "duplicates": 0, "skipped": {"empty observation": 1}}
    assert list(await texts(store, "mcp")) == ["Ana: Runs"]


@module_loop
async def test_mem0_expiry_and_platform_fields_are_kept(store: AsyncMemory, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mem0.json",
        """[
      {"id": "8e4f6b7d-0a2c-4d3e-8f5a-6b7c8d9e0f1b", "memory": "Works nights", "user_id": "m0",
       "expiration_date": "2030-01-01", "immutable": true, "structured_attributes": {"year": 2024}},
      {"id": "8e4f6b7d-0a2c-4d3e-8f5a-6b7c8d9e0f1c", "memory": "Lived in Leeds", "user_id": "m0",
       "expiration_date": "2020-01-01"}]""",
    )
    assert (await import_source(store, "mem0", path))["imported"] == 2
    [live] = (await texts(store, "m0")).values()  # the one that expired in 2020 is not shown
    assert live["memory"] == "Works nights" and live["expires_at"].startswith("2030-01-01T00:00:00")
    assert live["metadata"]["immutable"] is True and live["metadata"]["structured_attributes"] == {"year": 2024}


@module_loop
async def test_text_in_utf16_tables_quotes_and_code(store: AsyncMemory, tmp_path: Path) -> None:
    (tmp_path / "win.txt").write_bytes(codecs.BOM_UTF16_LE + "naïve café\r\n".encode("utf-16-le"))
    write(
        tmp_path,
        "notes.md",
        "> A quote about tea\n\n| name | role |\n|---|---|\n| Ana | lead |\n\n```\nprint('no')\n```\n",
    )
    result = await import_source(store, "text", tmp_path, user_id="txt")
    assert result == {"imported": 3, "duplicates": 0, "skipped": {"code block": 1}}
    assert set(await texts(store, "txt")) == {"naïve café", "A quote about tea", "name: Ana, role: lead"}
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValidationError) as empty:
        await import_source(store, "text", tmp_path / "empty.txt", user_id="txt")
    assert empty.value.error_code == "EMPTY_IMPORT"


@module_loop
async def test_a_text_line_of_invisible_characters_is_a_blank_line(store: AsyncMemory, tmp_path: Path) -> None:
    path = write(
        tmp_path, "pasted.txt", "The boiler was serviced in May\n\u200b\n \u2060 \nThe gutter needs cleaning\n"
    )
    result = await import_source(store, "text", path, user_id="blank")
    assert result == {"imported": 2, "duplicates": 0}
    assert set(await texts(store, "blank")) == {"The boiler was serviced in May", "The gutter needs cleaning"}
    by_paragraph = write(tmp_path, "pasted.md", "First paragraph\ngoes on\n\u200b\nSecond one\n- \u200b\n> \u200b\n")
    await import_source(store, "text", by_paragraph, user_id="blank-md")
    assert set(await texts(store, "blank-md")) == {"First paragraph goes on", "Second one"}


@module_loop
async def test_importing_text_again_embeds_nothing(store: AsyncMemory, tmp_path: Path) -> None:
    path = write(tmp_path, "facts.txt", "".join(f"Fact number {n} about the garden\n" for n in range(40)))
    assert (await import_source(store, "text", path, user_id="again"))["imported"] == 40
    embedder = store.engine.components.embedder
    embedded: list[int] = []
    original = embedder.embed
    embedder.embed = lambda texts: embedded.append(len(texts)) or original(texts)  # type: ignore[method-assign]
    try:
        assert await import_source(store, "text", path, user_id="again") == {"imported": 0, "duplicates": 40}
    finally:
        del embedder.embed
    assert sum(embedded) == 0


def test_an_indented_json_document_is_one_error_not_one_per_line(tmp_path: Path) -> None:
    """A newcomer's trial: mem0's get_all saved with indent=2 and given without --from was read as
    JSON Lines, 997 error lines for 50,000 memories, and past the sniffer's 64 KB no format named."""
    items = [{"memory": f"fact number {n}", "user_id": "sam"} for n in range(3000)]  # ~150 KB
    pretty = write(tmp_path, "get_all.json", json.dumps({"results": items}, indent=2))
    env = {"MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_GRAPH": "off"}
    refused = CliRunner().invoke(app, ["import", str(pretty)], env=env)
    assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "is one JSON document over several lines" in refused.stderr
    assert "this looks like mem0 data: import it with --from mem0" in refused.stderr


def test_a_peers_file_without_from_names_the_format(tmp_path: Path) -> None:
    entity = {"type": "entity", "name": "Ana", "entityType": "person", "observations": []}
    graph = write(tmp_path, "memory.jsonl", json.dumps(entity) + "\n")
    env = {"MEMORCH_DATA_DIR": str(tmp_path / "data"), "MEMORCH_GRAPH": "off"}
    refused = CliRunner().invoke(app, ["import", str(graph)], env=env)
    assert refused.exit_code == 1
    assert "this looks like mcp-memory data: import it with --from mcp-memory" in refused.stderr
    # Named with the wrong --from, its items fail to read as mem0's: the hint comes after them.
    wrong = CliRunner().invoke(app, ["import", "--from", "mem0", str(graph)], env=env)
    assert wrong.exit_code == 1 and "'memory' is missing" in wrong.stderr
    assert "or, this looks like mcp-memory data: import it with --from mcp-memory" in wrong.stderr


def test_list_says_when_filters_match_nothing(tmp_path: Path) -> None:
    env = {"MEMORCH_DATA_DIR": str(tmp_path), "MEMORCH_GRAPH": "off", "MEMORCH_USER_ID": "f"}
    runner = CliRunner()
    assert runner.invoke(app, ["add", "I like tea"], env=env).exit_code == 0
    shown = runner.invoke(app, ["list", "--filters", '{"app": "none"}'], env=env)
    assert shown.stdout.strip() == "user_id 'f' has memories, none whose metadata matches the filters"


@module_loop
async def test_odd_notes_are_read_not_refused(store: AsyncMemory, tmp_path: Path) -> None:
    """What a review found refusing a whole folder, or worse: front matter YAML cannot read, a
    date in words, aliases that expand to gigabytes, a note opening with a rule, an empty link."""
    write(tmp_path, "meeting.md", "---\ntitle: Meeting: notes\ncreated: May 1, 2024\n---\n- [fact] Budget approved\n")
    bomb = "".join(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 8))
    write(tmp_path, "bomb.md", f"---\ntitle: Bomb\nl0: &l0 [lol]\n{bomb}---\n- [fact] Still here\n")
    write(tmp_path, "rule.md", "---\nIntro prose, then a rule.\n\n---\n- [fact] After the rule\n")
    write(
        tmp_path,
        "links.md",
        "---\ntitle: Links\n---\nSee [[ ]] and [[|x]].\n- Meeting with [[Ana]]\n"
        '- **Owner**: [[Dana]]\n- "works at" [[Acme]]\n',
    )
    await import_source(store, "basic-memory", tmp_path, user_id="odd")
    stored = await texts(store, "odd")
    meeting = stored["Meeting: notes: Budget approved"]
    assert meeting["metadata"]["front_matter"] == {"created": "May 1, 2024"}  # kept as written, not a date
    assert "Bomb: Still here" in stored and "rule: After the rule" in stored
    assert {"Links links to Ana", "Links links to Dana", "Links works at Acme"} <= set(stored)
    # A quoted type is kept as written, so the relation keeps the id an earlier memorch gave it.
    acme = stored["Links works at Acme"]
    assert acme["id"] == stable_id("basic-memory", "relation", "odd", None, None, "Links", "works at", "Acme")


@module_loop
async def test_a_file_the_format_guess_cannot_read_keeps_the_readers_error(store: AsyncMemory, tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()  # a folder named like a note
    write(tmp_path, "facts.json", '{"not": "mem0"}')
    with pytest.raises(ValidationError) as refused:
        await import_source(store, "mem0", tmp_path / "facts.json", user_id="guess")
    assert refused.value.error_code == "UNKNOWN_IMPORT_FORMAT"
    with pytest.raises(ValidationError) as unreadable:
        await import_source(store, "mem0", tmp_path, user_id="guess")
    assert unreadable.value.error_code == "IMPORT_FILE_UNREADABLE"


def service_db(path: Path, rows: list[tuple]) -> Path:
    """A database as mcp-memory-service's sqlite_vec backend writes it: its memories table, and the
    vec0 table of its vectors in the schema (a module this SQLite does not have, as on a user's
    machine without sqlite-vec: its rows are never read)."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE memories (id INTEGER PRIMARY KEY AUTOINCREMENT, content_hash TEXT UNIQUE NOT NULL, "
            "content TEXT NOT NULL, tags TEXT, memory_type TEXT, metadata TEXT, created_at REAL, updated_at REAL, "
            "created_at_iso TEXT, updated_at_iso TEXT, deleted_at REAL DEFAULT NULL)"
        )
        db.executemany(
            "INSERT INTO memories (content_hash, content, tags, memory_type, metadata, created_at, updated_at, "
            "deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("PRAGMA writable_schema = ON")
        db.execute(
            "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', 'memory_embeddings', "
            "'memory_embeddings', 0, 'CREATE VIRTUAL TABLE memory_embeddings USING vec0(content_embedding FLOAT[384])')"
        )
    return path


@module_loop
async def test_an_mcp_memory_service_database(store: AsyncMemory, tmp_path: Path) -> None:
    may = 1_746_000_000.0  # 2025-04-30
    db = service_db(
        tmp_path / "sqlite_vec.db",
        [
            ("h1", "Deploys go out on Tuesdays", "ops,release", "decision", '{"source": "chat"}', may, may + 60, None),
            ("h2", "The staging key rotated", '["ops"]', "note", "NOT JSON", may, may, None),
            ("h3", "An old fact", "", "note", "{}", may, may, may + 3600),  # deleted in the service
            ("h4", "No tags here", "untagged", "note", "{}", may, may, None),  # the service's "none"
        ],
    )
    result = await import_source(store, "mcp-memory-service", tmp_path, user_id="svc")
    assert result == {"imported": 3, "duplicates": 0, "skipped": {"deleted memory": 1}}
    stored = await texts(store, "svc")
    assert "tags" not in stored["No tags here"]["metadata"]
    deploys = stored["Deploys go out on Tuesdays"]
    assert {k: deploys["metadata"][k] for k in ("tags", "memory_type", "content_hash", "source")} == {
        "tags": ["ops", "release"],
        "memory_type": "decision",
        "content_hash": "h1",
        "source": "chat",
    }
    assert deploys["created_at"].startswith("2025-04-30T08:00:00") and deploys["updated_at"].startswith(
        "2025-04-30T08:01"
    )
    assert stored["The staging key rotated"]["metadata"]["source_metadata"] == "NOT JSON"
    assert await import_source(store, "mcp-memory-service", db, user_id="svc") == {
        "imported": 0,
        "duplicates": 3,
        "known_ids": 3,
        "skipped": {"deleted memory": 1},
    }
    # Without --from, the file is named for what it is; a file that is no database says so.
    with pytest.raises(ValidationError) as unnamed:
        await import_source(store, "memorch", db, user_id="svc")
    assert unnamed.value.details["looks_like"] == "mcp-memory-service"
    with pytest.raises(ValidationError) as not_db:
        await import_source(store, "mcp-memory-service", write(tmp_path, "notes.db", "hello"), user_id="svc")
    assert not_db.value.error_code == "UNKNOWN_IMPORT_FORMAT" and "not a SQLite database" in not_db.value.message
