"""Bad input gets a clear typed error and changes nothing."""

from __future__ import annotations

import pytest

from memorch import AsyncMemory, MemoryConfig, MemoryNotFoundError, ValidationError

HOSTILE = ["' OR 1=1 --", "x'; DROP TABLE memories; --", '"quoted"', "a\\'b", "1) OR (1=1", "*/ OR /*"]


async def _snapshot(amem: AsyncMemory) -> dict:
    stats = await amem.stats()
    return {"memories": stats["memories"], "history": stats["history_events"]}


@pytest.fixture
async def seeded(amem: AsyncMemory) -> AsyncMemory:
    await amem.add("I am allergic to peanuts", user_id="v", metadata={"category": "health"})
    await amem.add("Secret of someone else", user_id="w", metadata={"category": "health"})
    return amem


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t ", "\u200b\u200b", "\ufeff \u2060", "\uffff", "\u2065", "\U000e0002"]
)
async def test_empty_text_is_refused(seeded: AsyncMemory, text: str) -> None:
    before = await _snapshot(seeded)
    with pytest.raises(ValidationError) as info:
        await seeded.add(text, user_id="v")
    assert info.value.error_code == "EMPTY_TEXT" and info.value.suggestion
    assert await _snapshot(seeded) == before


async def test_huge_text_names_the_limit(tmp_path) -> None:
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path, graph="off", max_text_bytes=1000))
    with pytest.raises(ValidationError) as info:
        await memory.add("x" * 1001, user_id="v")
    assert info.value.error_code == "TEXT_TOO_LONG"
    assert "1000 bytes" in info.value.message and "MEMORCH_MAX_TEXT_BYTES" in info.value.message
    assert (await memory.stats())["memories"] == 0
    default = AsyncMemory(MemoryConfig(data_dir=tmp_path / "d", graph="off"))
    with pytest.raises(ValidationError, match="100000 bytes"):
        await default.add("y" * 100_001, user_id="v")
    await memory.close()
    await default.close()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "1' OR '1'='1", "../../etc/passwd", 42, None])
async def test_malformed_ids(seeded: AsyncMemory, bad_id) -> None:
    before = await _snapshot(seeded)
    for call in (seeded.get(bad_id), seeded.delete(bad_id), seeded.update(bad_id, "x"), seeded.history(bad_id)):
        with pytest.raises(ValidationError) as info:
            await call
        assert info.value.error_code == "INVALID_MEMORY_ID"
        assert info.value.suggestion == "use search() or get_all() to find the id"
    assert await _snapshot(seeded) == before


async def test_unknown_id_is_not_found(seeded: AsyncMemory) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    before = await _snapshot(seeded)
    for call in (seeded.get(unknown), seeded.delete(unknown), seeded.update(unknown, "x"), seeded.history(unknown)):
        with pytest.raises(MemoryNotFoundError) as info:
            await call
        assert info.value.error_code == "MEMORY_NOT_FOUND" and "search() or get_all()" in info.value.suggestion
    assert await _snapshot(seeded) == before
    with pytest.raises(MemoryNotFoundError) as info:  # history keeps deleted memories: no pointing back at it
        await seeded.history(unknown)
    assert "was ever stored" in info.value.message and "history()" not in info.value.suggestion


@pytest.mark.parametrize("metadata", [["a"], "text", 3, {"_memorch": {"x": 1}}, {"bad": float("nan")}, {"o": object()}])
async def test_bad_metadata(seeded: AsyncMemory, metadata) -> None:
    before = await _snapshot(seeded)
    with pytest.raises(ValidationError) as info:
        await seeded.add("fine text", user_id="v", metadata=metadata)
    assert info.value.error_code == "INVALID_METADATA"
    assert await _snapshot(seeded) == before


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_filter_values_are_plain_strings(seeded: AsyncMemory, value: str) -> None:
    before = await _snapshot(seeded)
    for filters in (
        {"category": value},
        {"category": {"in": [value, "x"]}},
        {"category": {"contains": value}},
        {"OR": [{"category": value}, {"category": {"ne": "health"}}]},
    ):
        assert (await seeded.get_all(user_id="v", filters=filters))["results"] == []
        assert (await seeded.search("peanuts", user_id="v", filters=filters))["results"] == []
    assert await _snapshot(seeded) == before


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_scope_ids_stay_isolated(amem: AsyncMemory, value: str) -> None:
    await amem.add("hostile scope memory", user_id=value)
    await amem.add("victim memory", user_id="victim")
    results = (await amem.search("memory", user_id=value))["results"]
    assert [r["memory"] for r in results] == ["hostile scope memory"]
    assert (await amem.delete_all(user_id=value))["deleted"] == 1
    assert len((await amem.get_all(user_id="victim"))["results"]) == 1


@pytest.mark.parametrize(
    "filters",
    [
        {"category": {"regex": ".*"}},
        {"category": {"$where": "1"}},
        {"bad key; drop": "x"},
        {"AND": "not a list"},
        {"k": {"in": "not a list"}},
        {"k": {"gt": None}},
        {"k": {"eq": {"nested": 1}}},
        "category = 'x'",
        {},  # empty is fine: no filter
    ],
)
async def test_bad_filters_are_rejected(seeded: AsyncMemory, filters) -> None:
    if filters == {}:
        assert len((await seeded.get_all(user_id="v", filters=filters))["results"]) == 1
        return
    with pytest.raises(ValidationError) as info:
        await seeded.get_all(user_id="v", filters=filters)
    assert info.value.error_code == "INVALID_FILTER" and "operators" in info.value.suggestion


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 10_000}, {"limit": "5"}, {"threshold": 1.5}, {"threshold": -1}]
)
async def test_bad_search_arguments(seeded: AsyncMemory, kwargs) -> None:
    with pytest.raises(ValidationError):
        await seeded.search("peanuts", user_id="v", **kwargs)


async def test_scope_is_required_for_add_and_search(amem: AsyncMemory) -> None:
    with pytest.raises(ValidationError) as info:
        await amem.add("no owner")
    assert info.value.error_code == "SCOPE_REQUIRED"
    with pytest.raises(ValidationError):
        await amem.search("x")
    with pytest.raises(ValidationError):
        await amem.add("bad scope", user_id="  ")


async def test_text_parts_are_one_message(amem: AsyncMemory) -> None:
    """OpenAI-style content parts (chat clients and SDKs send them) were refused as "must be a
    string" (a newcomer's trial); text parts are now one text, a part that is not text refused."""
    parts = [{"type": "text", "text": "I love climbing"}, "and swimming on Sundays"]
    added = await amem.add([{"role": "user", "content": parts}], user_id="m", infer=False)
    assert added["results"][0]["memory"] == "I love climbing\nand swimming on Sundays"
    image = [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    with pytest.raises(ValidationError) as info:
        await amem.add([{"role": "user", "content": image}], user_id="m")
    assert info.value.error_code == "INVALID_MESSAGES" and "content[1] is not a text part ('image_url')" in str(
        info.value
    )
    with pytest.raises(ValidationError) as info:
        await amem.add([{"role": "user", "content": []}], user_id="m")
    assert info.value.error_code == "EMPTY_TEXT"
    assert (await amem.stats())["memories"] == 1


async def test_bad_messages(amem: AsyncMemory) -> None:
    for messages in ([], [{"role": "wizard", "content": "x"}], [{"role": "user"}], [42], {"content": ""}):
        with pytest.raises(ValidationError):
            await amem.add(messages, user_id="m")
    assert (await amem.stats())["memories"] == 0
    with pytest.raises(ValidationError) as info:  # over MCP `messages` is a list: say what is wrong with it
        await amem.add([], user_id="m")
    assert info.value.error_code == "INVALID_MESSAGES" and "empty" in info.value.message
    assert "string" not in info.value.message


async def test_a_misspelt_scope_keyword_is_refused_as_python_refuses_one(seeded: AsyncMemory) -> None:
    """The scope keywords arrive as ``**scope_args``: a name outside them must not be ignored
    (a silently dropped ``user=`` would widen a delete to every user)."""
    before = await _snapshot(seeded)
    with pytest.raises(TypeError, match="unexpected keyword argument 'user'"):
        await seeded.delete_all(user="v", user_id="v")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'usr_id'"):
        await seeded.search("peanuts", usr_id="v")  # type: ignore[call-arg]
    assert await _snapshot(seeded) == before


async def test_methods_of_the_three_ids_refuse_project_and_a_misspelt_one(seeded: AsyncMemory, tmp_path) -> None:
    from memorch.importers import import_source

    with pytest.raises(TypeError, match="unexpected keyword argument 'project'"):
        await seeded.export_memories(tmp_path / "out.jsonl", project="p")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'project'"):
        await seeded.import_memories([{"memory": "x"}], user_id="v", project="p")  # type: ignore[call-arg]
    source = tmp_path / "notes.txt"
    source.write_text("one note\n")
    with pytest.raises(TypeError, match="unexpected keyword argument 'usr_id'"):  # even a dry run
        await import_source(seeded, "text", source, usr_id="zz", dry_run=True)  # type: ignore[call-arg]
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("text", ["\U0001fa77", "\uf8ff", "👍"])
async def test_a_sign_python_does_not_know_yet_is_visible_text(amem: AsyncMemory, text: str) -> None:
    """An emoji newer than Python's Unicode tables is unassigned there, a private-use sign is
    private: both show, and are stored (only spaces and invisible format characters are empty)."""
    added = await amem.add(text, user_id="v", infer=False)
    assert added["results"][0]["memory"] == text


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda m: m.add("I like tea", user_id="v", infer="no"), "INVALID_ARGUMENT"),  # "no" is truthy
        (lambda m: m.add("I like tea", user_id="v", dry_run="yes"), "INVALID_ARGUMENT"),
        (lambda m: m.add("I like tea", user_id="v", memory_type="x"), "INVALID_MEMORY_TYPE"),
        (lambda m: m.import_memories([None], user_id="v"), "INVALID_ITEM"),
        (lambda m: m.search("tea", user_id="v", explain="yes"), "INVALID_ARGUMENT"),
        (lambda m: m.search("tea", user_id="v", as_of=5), "INVALID_AS_OF"),
        (lambda m: m.reindex(force="yes"), "INVALID_ARGUMENT"),
    ],
)
async def test_a_switch_is_a_real_boolean_and_every_refusal_says_what_to_do(seeded: AsyncMemory, call, code) -> None:
    """``infer="no"`` was taken as true (and would ask the model), ``explain="yes"`` too, while
    ``dry_run="yes"`` was refused; some refusals had no suggestion (a newcomer's trial)."""
    before = await _snapshot(seeded)
    with pytest.raises(ValidationError) as info:
        await call(seeded)
    assert info.value.error_code == code and info.value.suggestion
    assert await _snapshot(seeded) == before


def test_every_typed_error_the_source_raises_names_a_next_step() -> None:
    """Each ``...Error(..., error_code=...)`` written in the package passes a ``suggestion``
    (helpers that supply one, such as ``engine_errors``, are named here)."""
    import ast
    from pathlib import Path

    helpers = {"engine_errors", "_marked"}  # a default suggestion of its own; metadata marks, no error
    root = Path(__file__).resolve().parents[1]
    missing = []
    for folder in ("server", "storage", "tools"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                keywords = {k.arg for k in node.keywords}
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                unguided = "error_code" in keywords and not keywords & {"suggestion", None}
                if unguided and name not in helpers:
                    missing.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert missing == []


@pytest.mark.parametrize(
    "bad",
    ["alice ", " alice", "\u200b", "x\u202ey", "a\u200bb", "\ufeffalice", "a\u0085b", "alice\u200d", "\u200calice"],
)
async def test_an_id_that_looks_like_another_is_refused(seeded: AsyncMemory, bad: str) -> None:
    """ "alice " was a scope of its own beside "alice" (quietly empty answers), and invisible or
    reordering characters made ids that look alike (a newcomer's trial)."""
    before = await _snapshot(seeded)
    for call in (lambda: seeded.add("I like tea", user_id=bad), lambda: seeded.search("tea", agent_id=bad)):
        with pytest.raises(ValidationError) as info:
            await call()
        assert info.value.error_code == "INVALID_SCOPE" and "no space at either end" in str(info.value)
    assert await _snapshot(seeded) == before


@pytest.mark.parametrize(
    "good",
    [
        "Zoë",
        "東京",
        "user@example.com",
        "team/app",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: joiners between emoji
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # a Persian word with its non-joiner
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland's flag: tags
    ],
)
async def test_ids_of_any_script_and_emoji_are_fine(seeded: AsyncMemory, good: str) -> None:
    await seeded.add("I like tea", user_id=good)
    assert [r["memory"] for r in (await seeded.get_all(user_id=good))["results"]] == ["I like tea"]


async def test_a_deleted_memory_says_it_was_deleted_and_how_to_restore_it(amem: AsyncMemory) -> None:
    """get or update of a deleted memory said only "no memory with id … in this scope" (a
    newcomer's trial): the history knows it was deleted, so the error says so and names the way
    back. A purged one has no way back: it is not found."""
    added = (await amem.add("I live in Lisbon", user_id="m", infer=False))["results"][0]["id"]
    await amem.delete(added)
    deleted_at = (await amem.history(added))[-1]["updated_at"]  # not the memory's created_at (a trial)
    for call in (amem.get(added), amem.update(added, "I live in Porto")):
        with pytest.raises(MemoryNotFoundError) as info:
            await call
        assert info.value.error_code == "MEMORY_NOT_FOUND" and f"was deleted at {deleted_at}" in info.value.message
        assert info.value.details["deleted_at"] == deleted_at
        assert info.value.suggestion is not None and info.value.suggestion.startswith("bring it back with restore()")
    with pytest.raises(MemoryNotFoundError) as info:
        await amem.get(added, user_id="someone-else")  # another scope learns nothing of it
    assert "was deleted" not in info.value.message
    await amem.restore(added)
    assert (await amem.update(added, "I live in Porto"))["event"] == "UPDATE"
    await amem.delete(added, purge=True)
    with pytest.raises(MemoryNotFoundError) as info:
        await amem.get(added)
    assert "was deleted" not in info.value.message


async def test_a_deleted_memory_whose_expiry_passed_is_not_offered_for_restore(amem: AsyncMemory) -> None:
    """restore_memory refuses it (MEMORY_EXPIRED), so the error does not point there (a review)."""
    import asyncio

    added = (await amem.add("Parked on level 3", user_id="m", infer=False, expires_at="1s"))["results"][0]["id"]
    await amem.delete(added)
    await asyncio.sleep(1.3)
    with pytest.raises(MemoryNotFoundError) as info:
        await amem.get(added)
    assert "was deleted" not in info.value.message
