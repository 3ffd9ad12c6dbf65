"""add(infer=True) through the real LiteLLM HTTP path against a scripted fake server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memorch import AsyncMemory, AuthenticationError, MemoryConfig, NetworkError
from memorch.inference._plan import REASONS

from .conftest import fake_llm_config
from .fake_llm import Delay, Failure, FakeLLM


def llm_config(tmp_path: Path, fake: FakeLLM, **overrides) -> MemoryConfig:
    settings = dict(
        llm_max_retries=2, llm_backoff_base=0.01, llm_timeout=5, circuit_failure_threshold=3, circuit_cooldown=60
    )
    return fake_llm_config(tmp_path, fake, **{**settings, **overrides})


@pytest.fixture
async def memory(tmp_path: Path, fake: FakeLLM) -> AsyncIterator[AsyncMemory]:
    instance = AsyncMemory(llm_config(tmp_path, fake))
    instance.engine.components.resilience.sleep = lambda seconds: None  # keep backoff out of test time
    yield instance
    await instance.close()


def add(text: str) -> dict:
    return {"memory": [{"event": "ADD", "text": text}]}


async def test_add_uses_exactly_one_request(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(add("Alice is allergic to peanuts"), add("Alice lives in Lisbon"))
    first = await memory.add("Hi, I'm Alice and peanuts make me ill", user_id="alice")
    assert first["results"][0]["event"] == "ADD" and "degraded" not in first
    await memory.add([{"role": "user", "content": "I moved to Lisbon", "timestamp": "2026-03-01"}], user_id="alice")
    assert len(fake.chat_requests()) == 2  # one per add
    prompt = fake.chat_requests()[1].prompt
    assert "Alice is allergic to peanuts" in prompt  # candidates are shown to the model
    assert "[2026-03-01] user: I moved to Lisbon" in prompt  # message dates reach the model
    assert "Today's date:" in prompt
    found = await memory.search("what should Alice not eat?", user_id="alice", limit=1)
    assert found["results"][0]["memory"] == "Alice is allergic to peanuts"


async def test_update_delete_none_and_history(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push({"memory": [{"event": "ADD", "text": "Bob works at Acme"}, {"event": "ADD", "text": "Bob has a cat"}]})
    ids = {
        r["memory"]: r["id"]
        for r in (await memory.add("I'm Bob, I work at Acme and have a cat", user_id="bob"))["results"]
    }

    # Script the reply after seeing the numbering, by answering from the request itself.
    fake.responder = lambda request: {
        "memory": [
            {"event": "UPDATE", "id": _number(request.prompt, "Bob works at Acme"), "text": "Bob works at Globex"},
            {"event": "DELETE", "id": _number(request.prompt, "Bob has a cat"), "reason": "the cat was given away"},
        ]
    }
    result = await memory.add("I left Acme for Globex, and I gave my cat away", user_id="bob")
    events = {r["event"]: r for r in result["results"]}
    assert events["UPDATE"]["id"] == ids["Bob works at Acme"]
    assert events["UPDATE"]["previous_memory"] == "Bob works at Acme"
    assert events["DELETE"]["id"] == ids["Bob has a cat"]
    assert events["DELETE"]["memory"] == "Bob has a cat"  # the memory it touched, as it said
    assert events["DELETE"]["reason"] == "the cat was given away"  # the model's own reason
    assert events["UPDATE"]["reason"] == REASONS["UPDATE"]  # none given: the default
    history = await memory.history(ids["Bob works at Acme"])
    assert [(e["event"], e["old_memory"], e["new_memory"]) for e in history] == [
        ("ADD", None, "Bob works at Acme"),
        ("UPDATE", "Bob works at Acme", "Bob works at Globex"),
    ]
    assert [e["event"] for e in await memory.history(ids["Bob has a cat"])] == ["ADD", "DELETE"]

    fake.responder = lambda request: {
        "memory": [{"event": "NONE", "id": _number(request.prompt, "Bob works at Globex")}]
    }
    before = await memory.stats()
    none = await memory.add("As I said, I work at Globex", user_id="bob")
    assert none["results"] == [
        {"id": ids["Bob works at Acme"], "memory": "Bob works at Globex", "event": "NONE", "reason": REASONS["NONE"]}
    ]
    assert (await memory.stats())["history_events"] == before["history_events"]


async def test_a_none_naming_an_unrelated_memory_keeps_the_users_words(memory: AsyncMemory, fake: FakeLLM) -> None:
    """SmolLM2-135M answered "My sister Clara lives in Toronto" with NONE for "I'm allergic to
    peanuts": read as "already stored", the sister would be lost."""
    fake.push(add("User is allergic to peanuts"))
    await memory.add("I'm allergic to peanuts", user_id="clara")
    fake.responder = lambda request: {"memory": [{"event": "NONE", "id": _number(request.prompt, "peanuts")}]}
    said = "My sister Clara lives in Toronto"
    result = await memory.add(said, user_id="clara")
    assert result["degraded"] is True and "unrelated" in result["reason"]
    stored = await memory.get(result["results"][0]["id"])
    assert stored["memory"] == said and stored["metadata"]["_memorch"]["pending_inference"] is True
    # A NONE naming the memory that does say it is still "already stored" (above: Globex).
    fake.responder = lambda request: {"memory": [{"event": "NONE", "id": _number(request.prompt, "peanuts")}]}
    again = await memory.add("Remember, peanuts make me ill", user_id="clara")
    assert "degraded" not in again and [r["event"] for r in again["results"]] == ["NONE"]


async def test_an_update_rewriting_an_unrelated_memory_to_itself_keeps_the_users_words(
    memory: AsyncMemory, fake: FakeLLM
) -> None:
    """With its grammar tightened, SmolLM2-135M answered the sister with NONE for the peanuts and
    an UPDATE writing the peanuts again: nothing new, nothing about the sister."""
    fake.push(add("User is allergic to peanuts"))
    peanuts = (await memory.add("I'm allergic to peanuts", user_id="clara"))["results"][0]["id"]
    fake.responder = lambda request: {
        "memory": [
            {"event": "UPDATE", "id": _number(request.prompt, "peanuts"), "text": "User is allergic to peanuts!"}
        ]
    }
    said = "My sister Clara lives in Toronto"
    result = await memory.add(said, user_id="clara")
    assert result["degraded"] is True and "unrelated" in result["reason"]
    assert (await memory.get(result["results"][0]["id"]))["memory"] == said
    assert [e["event"] for e in await memory.history(peanuts)] == ["ADD"]  # the copy changed nothing
    # An UPDATE that says something new is the model's judgement, related or not by the scale.
    fake.responder = lambda request: {
        "memory": [{"event": "UPDATE", "id": _number(request.prompt, "peanuts"), "text": "User is allergic to cashews"}]
    }
    changed = await memory.add("Actually it's cashews, not peanuts", user_id="clara")
    assert "degraded" not in changed and [r["event"] for r in changed["results"]] == ["UPDATE"]


def _number(prompt: str, text: str) -> int:
    block = prompt.split("EXISTING MEMORIES:\n")[1].split("\n\n")[0]
    return next(int(line.split(":")[0]) for line in block.splitlines() if line.endswith(text))


async def test_invented_ids_are_ignored(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(add("Carol plays chess"))
    memory_id = (await memory.add("I play chess", user_id="carol"))["results"][0]["id"]
    fake.push(
        {
            "memory": [
                {"event": "UPDATE", "id": 42, "text": "hijacked"},
                {"event": "DELETE", "id": -1},
                {"event": "ADD", "text": "Carol plays the piano"},
            ]
        }
    )
    result = await memory.add("I also play the piano", user_id="carol")
    assert [r["event"] for r in result["results"]] == ["ADD"]
    assert (await memory.get(memory_id))["memory"] == "Carol plays chess"


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"memory": [{"event": "ADD", "text": "Dan likes tea"}]}\n```',
        'Here is the result:\n{"memory": [{"event": "ADD", "text": "Dan likes tea"}]}\nLet me know if you need more.',
    ],
)
async def test_fenced_and_prose_wrapped_json(memory: AsyncMemory, fake: FakeLLM, reply: str) -> None:
    fake.push(reply)
    result = await memory.add("I like tea", user_id="dan")
    assert result["results"][0]["memory"] == "Dan likes tea"
    assert len(fake.chat_requests()) == 1


async def test_invalid_json_gets_one_repair_then_degrades(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push("not json at all", add("Eve runs marathons"))
    repaired = await memory.add("I run marathons", user_id="eve")
    assert repaired["results"][0]["memory"] == "Eve runs marathons"
    assert len(fake.chat_requests()) == 2
    assert "could not be used" in fake.chat_requests()[1].prompt  # the repair shows the error

    fake.push('{"memory": [{"event": "MAYBE"}]}', "still not json")
    degraded = await memory.add("I swim on Mondays", user_id="eve")
    assert len(fake.chat_requests()) == 4  # exactly one repair attempt
    assert degraded["degraded"] is True and "LLM_OUTPUT_INVALID" in degraded["reason"]
    assert "did not return valid JSON" in degraded["reason"]  # the last reply was no JSON at all
    stored = await memory.get(degraded["results"][0]["id"])
    assert stored["memory"] == "I swim on Mondays"
    assert stored["metadata"]["_memorch"]["pending_inference"] is True


async def test_server_errors_retry_then_circuit_opens_and_recovers(tmp_path: Path, fake: FakeLLM) -> None:
    # The cool-down must outlast two adds on a loaded machine, or the second gets a trial call.
    memory = AsyncMemory(llm_config(tmp_path, fake, circuit_cooldown=2.0))
    memory.engine.components.resilience.sleep = lambda seconds: None
    fake.push(*[Failure(500)] * 3)
    first = await memory.add("I like hiking", user_id="f")
    assert len(fake.chat_requests()) == 3  # 1 try + 2 retries, then give up
    assert first["degraded"] is True and "NETWORK_ERROR" in first["reason"]
    assert (await memory.stats())["circuits"]["openai/fake-model"] == "open"

    second = await memory.add("I like climbing", user_id="f")
    assert len(fake.chat_requests()) == 3  # fail fast: no request while open
    assert "CIRCUIT_OPEN" in second["reason"]
    # With the failure that opened it, not only "wait" (a newcomer's mistyped API base was hidden).
    assert "after failing 3 times in a row: openai/fake-model could not be reached" in second["reason"]
    assert "check MEMORCH_LLM_API_BASE" in second["reason"]

    time.sleep(2.1)  # cool-down passes: one trial call is allowed and succeeds
    fake.push(add("F likes kayaking"))
    third = await memory.add("I like kayaking", user_id="f")
    assert "degraded" not in third and len(fake.chat_requests()) == 4
    assert (await memory.stats())["circuits"]["openai/fake-model"] == "closed"
    await memory.close()


async def test_401_is_not_retried_and_names_the_setting(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(Failure(401, body={"error": {"message": "bad key", "type": "invalid_request_error"}}))
    with pytest.raises(AuthenticationError) as info:
        memory.engine.components.llm.structured([{"role": "user", "content": "hi"}], _Ping)
    assert len(fake.chat_requests()) == 1
    assert "MEMORCH_LLM_API_KEY" in info.value.suggestion
    fake.push(Failure(401))
    result = await memory.add("I like jazz", user_id="g")
    assert len(fake.chat_requests()) == 2 and "AUTHENTICATION_ERROR" in result["reason"]


async def test_429_honours_retry_after(memory: AsyncMemory, fake: FakeLLM) -> None:
    waits: list[float] = []
    memory.engine.components.resilience.sleep = waits.append
    fake.push(Failure(429, headers={"Retry-After": "7"}), add("Hal reads poetry"))
    result = await memory.add("I read poetry", user_id="h")
    assert result["results"][0]["memory"] == "Hal reads poetry"
    assert waits == [7.0] and len(fake.chat_requests()) == 2


async def test_timeout_is_retried(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(llm_config(tmp_path, fake, llm_timeout=0.5))
    memory.engine.components.resilience.sleep = lambda seconds: None
    fake.push(Delay(2.0, add("too late")), add("Ivy paints"))
    result = await memory.add("I paint", user_id="i")
    assert [r["memory"] for r in result["results"]] == ["Ivy paints"]
    assert len(fake.chat_requests()) == 2
    await memory.close()


async def test_fallback_model_answers_when_primary_fails(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(llm_config(tmp_path, fake, llm_fallbacks="openai/backup-model", llm_max_retries=0))
    fake.fail_models["fake-model"] = Failure(503)
    fake.push(add("Jo speaks Portuguese"))
    result = await memory.add("Falo português", user_id="j")
    assert result["results"][0]["memory"] == "Jo speaks Portuguese" and "degraded" not in result
    assert [r.model for r in fake.chat_requests()] == ["fake-model", "backup-model"]
    assert memory.engine.components.llm.stats.fallbacks_used == 1
    await memory.close()


async def test_a_server_without_the_endpoint_rejects_the_request_it_is_not_unreachable(
    memory: AsyncMemory, fake: FakeLLM
) -> None:
    fake.push(Failure(501, body={"error": {"message": "Not Implemented", "type": "x"}}))
    result = await memory.add("I was born in Porto", user_id="k")
    assert result["degraded"] is True and "[MODEL_REJECTED]" in result["reason"] and "HTTP 501" in result["reason"]
    assert len(fake.chat_requests()) == 1  # not retried: waiting cannot mend it


async def test_reprocess_drains_pending_exactly_once(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push(Failure(400), Failure(400))
    sisters = (await memory.add("I have two sisters", user_id="k", metadata={"source": "chat"}))["results"][0]["id"]
    await memory.add("I was born in Porto", user_id="k")
    assert (await memory.stats())["pending_inference"] == 2
    requests_before = len(fake.chat_requests())

    def responder(request):
        said = request.prompt.split("CONVERSATION:")[1]
        return add("K has two sisters") if "sisters" in said else add("K was born in Porto")

    fake.responder = responder
    report = await memory.reprocess()
    assert report["processed"] == 2 and report["remaining"] == 0
    assert len(fake.chat_requests()) == requests_before + 2
    memories = {r["memory"]: r for r in (await memory.get_all(user_id="k"))["results"]}
    assert set(memories) == {"K has two sisters", "K was born in Porto"}
    assert memories["K has two sisters"]["metadata"] == {"source": "chat", "_memorch": {"from": [sisters]}}

    again = await memory.reprocess()
    assert again["processed"] == 0 and len(fake.chat_requests()) == requests_before + 2


async def test_a_message_found_to_hold_nothing_comes_back_as_the_users_text(memory: AsyncMemory, fake: FakeLLM) -> None:
    """reprocess deletes a message the model finds nothing in and names it; restored, it is the
    user's text again (its metadata back, no longer waiting for the model): a second reprocess
    leaves it alone."""
    fake.push(Failure(400))
    said = (await memory.add("Hello there", user_id="k", metadata={"source": "chat"}))["results"][0]["id"]
    fake.push({"memory": []})
    report = await memory.reprocess()
    assert report["processed"] == 1 and report["found_nothing"] == [said]
    assert (await memory.get_all(user_id="k"))["results"] == []
    await memory.restore(said)
    back = await memory.get(said)
    assert back["memory"] == "Hello there" and back["metadata"]["source"] == "chat"
    assert "pending_inference" not in back["metadata"].get("_memorch", {})
    requests = len(fake.chat_requests())
    assert (await memory.reprocess())["processed"] == 0 and len(fake.chat_requests()) == requests
    assert [r["id"] for r in (await memory.get_all(user_id="k"))["results"]] == [said]


async def test_procedural_memory_summarizes_a_run(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push({"summary": "Task: deploy. Ran tests (pass), built image v2, deploy pending."})
    run = [{"role": "user", "content": "Deploy the app"}, {"role": "assistant", "content": "Tests pass; built v2"}]
    result = await memory.add(run, agent_id="deployer", memory_type="procedural_memory")
    stored = await memory.get(result["results"][0]["id"])
    assert stored["metadata"]["memory_type"] == "procedural_memory"
    assert stored["memory"].startswith("Task: deploy")
    assert len(fake.chat_requests()) == 1 and "AGENT RUN" in fake.chat_requests()[0].prompt


async def test_infer_false_never_calls_the_model(memory: AsyncMemory, fake: FakeLLM) -> None:
    result = await memory.add("store me as is", user_id="l", infer=False)
    assert result["results"][0]["memory"] == "store me as is"
    assert fake.chat_requests() == []


async def test_remote_embedder_through_litellm(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(
        MemoryConfig(
            data_dir=tmp_path / "e",
            graph="off",
            embedder="openai/fake-embed",
            embedder_api_base=fake.url,
            embedder_api_key="k",
        )
    )
    added = await memory.add("remote embeddings work", user_id="m")
    found = await memory.search("remote embeddings work", user_id="m")
    assert found["results"][0]["id"] == added["results"][0]["id"]
    assert any(r.path.endswith("/embeddings") for r in fake.requests)
    fake_embed_failure = Failure(500)
    fake.fail_models["fake-embed"] = fake_embed_failure
    memory.engine.components.resilience.sleep = lambda seconds: None
    with pytest.raises(NetworkError):
        await memory.search("a query never embedded before", user_id="m")
    await memory.close()


class _Ping(__import__("pydantic").BaseModel):
    ok: bool = True


def test_cli_doctor_stats_and_reprocess(tmp_path: Path, fake: FakeLLM) -> None:
    import json

    from typer.testing import CliRunner

    from memorch.cli._main import app

    env = {
        "MEMORCH_DATA_DIR": str(tmp_path),
        "MEMORCH_GRAPH": "off",
        "MEMORCH_LLM_MODEL": "openai/fake-model",
        "MEMORCH_LLM_API_BASE": fake.url,
        "MEMORCH_LLM_API_KEY": "k",
        "MEMORCH_LLM_MAX_RETRIES": "0",
        "MEMORCH_USER_ID": "cli",
    }
    runner = CliRunner()
    fake.push({"ok": True})
    result = runner.invoke(app, ["doctor", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert {c["name"]: c["ok"] for c in json.loads(result.stdout)}["LLM"] is True
    # A reply out of shape names the question doctor asked ("missing 'ok'" named one not shown).
    fake.push({"memory": []}, {"memory": []})
    shapeless = {c["name"]: c for c in json.loads(runner.invoke(app, ["doctor", "--json"], env=env).stdout)}["LLM"]
    assert shapeless["error"]["error_code"] == "LLM_OUTPUT_INVALID"
    assert shapeless["detail"].startswith('[LLM_OUTPUT_INVALID] asked to reply with the JSON object {"ok": true}: ')

    fake.push(Failure(500))
    added = json.loads(runner.invoke(app, ["add", "I collect vinyl", "--json"], env=env).stdout)
    assert added["degraded"] is True
    stats = json.loads(runner.invoke(app, ["stats", "--json"], env=env).stdout)
    assert stats["pending_inference"] == 1

    fake.push(Failure(401))
    failing = runner.invoke(app, ["doctor", "--json"], env=env)
    assert failing.exit_code == 1 and "AUTHENTICATION_ERROR" in failing.stdout
    checks = {c["name"]: c for c in json.loads(failing.stdout)}
    # The failure's typed fields beside its text (a monitoring script had to read "[CODE]" out of it).
    llm = next(c for name, c in checks.items() if name.startswith("LLM"))
    assert llm["ok"] is False and llm["error"]["error_code"] == "AUTHENTICATION_ERROR" and llm["error"]["suggestion"]
    assert checks["ledger (SQLite)"]["error"] is None
    form = checks["structured output"]
    assert form["detail"].endswith("(unconfirmed: the LLM check failed)")

    fake.push(add("Cli collects vinyl records"))
    report = json.loads(runner.invoke(app, ["reprocess", "--json"], env=env).stdout)
    assert report["processed"] == 1 and report["remaining"] == 0
    listed = json.loads(runner.invoke(app, ["list", "--json"], env=env).stdout)["results"]
    assert [r["memory"] for r in listed] == ["Cli collects vinyl records"]


async def test_mcp_add_memory_reports_events_and_degraded_state(tmp_path: Path, fake: FakeLLM) -> None:
    from mcp import Client

    from memorch.serve._app import build_server

    config = llm_config(tmp_path, fake, llm_max_retries=0)
    async with Client(build_server(config)) as client:
        fake.push(add("User drinks oat milk"))
        ok = await client.call_tool("add_memory", {"text": "I only drink oat milk"})
        assert ok.structured_content["results"][0]["event"] == "ADD"
        assert not ok.structured_content.get("degraded")
        fake.push(Failure(503))
        degraded = await client.call_tool("add_memory", {"text": "I started learning Dutch"})
        assert not degraded.is_error
        assert degraded.structured_content["degraded"] is True
        assert "NETWORK_ERROR" in degraded.structured_content["reason"]
        verbatim = await client.call_tool("add_memory", {"text": "raw note", "infer": False})
        assert verbatim.structured_content["results"][0]["memory"] == "raw note"
        fake.push({"memory": []})
        small_talk = await client.call_tool("add_memory", {"text": "Thanks, that's all for today!"})
        assert small_talk.structured_content["results"] == []
        assert "nothing worth remembering" in small_talk.structured_content["reason"]
    assert len(fake.chat_requests()) == 3


# -- a bug is never a provider outage ---------------------------------------------------------


async def test_a_bug_in_the_llm_call_propagates_and_is_not_degraded(
    memory: AsyncMemory, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memorch.models._llm import import_litellm

    calls: list[dict] = []

    def broken_completion(**kwargs):
        calls.append(kwargs)
        raise TypeError("completion() got an unexpected keyword argument 'x'")

    monkeypatch.setattr(import_litellm(), "completion", broken_completion)
    with pytest.raises(TypeError, match="unexpected keyword"):
        await memory.add("I'm allergic to peanuts", user_id="bug")
    assert len(calls) == 1  # a bug is not retried
    stats = await memory.stats()
    assert stats["pending_inference"] == 0 and stats["memories"] == 0  # nothing stored as "degraded"
    assert stats["circuits"].get("openai/fake-model", "closed") == "closed"  # nor counted as an outage
    assert fake.chat_requests() == []


async def test_a_validation_error_that_is_not_the_model_propagates(
    memory: AsyncMemory, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    import memorch.inference._plan as inference
    from memorch import ValidationError

    def bad_filter(*args, **kwargs):
        raise ValidationError("filter too wide", error_code="INVALID_FILTER")

    monkeypatch.setattr(inference, "candidates_for", bad_filter)
    with pytest.raises(ValidationError) as info:
        await memory.add("I moved to Lisbon", user_id="val")
    assert info.value.error_code == "INVALID_FILTER"
    assert (await memory.stats())["pending_inference"] == 0


def test_resilience_retries_provider_failures_only() -> None:
    import httpx

    from memorch.models._resilience import ModelRejectedError, Resilience, RetryPolicy

    resilience = Resilience(RetryPolicy(max_retries=2, backoff_base=0), threshold=10, cooldown=60)
    resilience.sleep = lambda seconds: None
    attempts: list[str] = []

    def fail(exc: Exception):
        def fn() -> None:
            attempts.append(type(exc).__name__)
            raise exc

        return fn

    with pytest.raises(KeyError):  # a bug: once, unchanged, not counted
        resilience.call("m", fail(KeyError("choices")), "MEMORCH_LLM")
    assert attempts == ["KeyError"] and resilience.breaker("m").failures == 0

    attempts.clear()
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    with pytest.raises(NetworkError):  # a transport failure: retried, then a NetworkError
        resilience.call("m", fail(httpx.ConnectError("refused", request=request)), "MEMORCH_LLM")
    assert attempts == ["ConnectError"] * 3 and resilience.breaker("m").failures == 3

    attempts.clear()
    response = httpx.Response(503, request=request)
    with pytest.raises(NetworkError):  # the status of an httpx error is on its response
        resilience.call("m", fail(httpx.HTTPStatusError("busy", request=request, response=response)), "MEMORCH_LLM")
    assert len(attempts) == 3

    attempts.clear()
    response = httpx.Response(404, request=request)
    with pytest.raises(ModelRejectedError):  # the request is wrong: no retry
        resilience.call("m", fail(httpx.HTTPStatusError("nope", request=request, response=response)), "MEMORCH_LLM")
    assert len(attempts) == 1


# -- a reply is never read as "nothing to remember" by accident -------------------------------


@pytest.mark.parametrize(
    "wrong",
    [
        {"facts": [{"event": "ADD", "text": "User is allergic to peanuts"}]},
        {"memories": [{"event": "ADD", "text": "User is allergic to peanuts"}]},
        {"memory": [{"event": "ADD", "text": "User is allergic to peanuts"}], "notes": "extra key"},
        {},
        {"memory": [{"event": "ADD", "fact": "User is allergic to peanuts"}]},  # no "text"
        {"memory": [{"event": "NONE"}]},  # NONE names no memory
        {"memory": [{"event": "ADD", "text": "..."}]},  # a text that says nothing
    ],
    ids=["facts", "memories", "unknown-key", "empty-object", "add-without-text", "none-without-id", "add-dots"],
)
async def test_a_reply_of_the_wrong_shape_is_repaired_then_degraded(
    memory: AsyncMemory, fake: FakeLLM, wrong: dict
) -> None:
    said = "I'm allergic to peanuts, so please never suggest peanut recipes."
    fake.push(wrong, wrong)
    result = await memory.add(said, user_id="strict")
    assert len(fake.chat_requests()) == 2  # the one repair request was made
    assert "could not be used" in fake.chat_requests()[1].prompt
    assert result["degraded"] is True and "LLM_OUTPUT_INVALID" in result["reason"]
    assert "returned JSON that does not have the reply's shape (" in result["reason"]  # JSON, of another shape
    stored = await memory.get(result["results"][0]["id"])
    assert stored["memory"] == said  # the user's words, verbatim
    assert stored["metadata"]["_memorch"]["pending_inference"] is True


async def test_a_wrong_shape_fixed_by_the_repair_is_used(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push({"facts": ["User moved to Porto"]}, add("User moved to Porto"))
    result = await memory.add("I just moved to Porto", user_id="repair")
    assert [r["memory"] for r in result["results"]] == ["User moved to Porto"]
    assert "degraded" not in result and len(fake.chat_requests()) == 2
    assert "memory" in fake.chat_requests()[1].prompt.split("could not be used")[1]  # the error names the key


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"event": "ADD", "text": "User is allergic to peanuts"}, ["User is allergic to peanuts"]),
        (
            [{"event": "ADD", "text": "User works at Acme"}, {"event": "ADD", "text": "User lives in Lyon"}],
            ["User works at Acme", "User lives in Lyon"],
        ),
        (
            'Sure:\n```json\n[{"event": "ADD", "text": "User works at Acme"},\n'
            ' {"event": "ADD", "text": "User has a cat"}]\n```',
            ["User works at Acme", "User has a cat"],
        ),
    ],
    ids=["bare-decision", "bare-list", "fenced-bare-list"],
)
async def test_unambiguous_near_misses_are_accepted_and_logged(
    memory: AsyncMemory, fake: FakeLLM, caplog: pytest.LogCaptureFixture, reply: object, expected: list[str]
) -> None:
    fake.push(reply)
    with caplog.at_level("WARNING", logger="memorch"):
        result = await memory.add("Some facts about me", user_id="near")
    assert [r["memory"] for r in result["results"]] == expected
    assert all(r["event"] == "ADD" for r in result["results"]) and "degraded" not in result
    assert len(fake.chat_requests()) == 1  # no repair needed
    assert any("bare" in r.getMessage() for r in caplog.records)
    listed = {m["memory"] for m in (await memory.get_all(user_id="near"))["results"]}
    assert listed == set(expected)


async def test_an_empty_decision_list_is_reported_with_a_reason(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push({"memory": []})
    result = await memory.add("Thanks, that's all for today!", user_id="chat")
    assert result["results"] == [] and "degraded" not in result
    assert "nothing worth remembering" in result["reason"]
    assert len(fake.chat_requests()) == 1
    assert (await memory.stats())["memories"] == 0


async def test_decisions_that_all_name_unoffered_ids_degrade(memory: AsyncMemory, fake: FakeLLM) -> None:
    fake.push({"memory": [{"event": "UPDATE", "id": 7, "text": "User lives in Oslo"}, {"event": "NONE", "id": 3}]})
    result = await memory.add("I live in Oslo now", user_id="ids")
    assert result["degraded"] is True and "LLM_OUTPUT_INVALID" in result["reason"]
    assert (await memory.get(result["results"][0]["id"]))["memory"] == "I live in Oslo now"


async def test_restoring_a_message_still_waiting_for_the_model_keeps_it_waiting(
    memory: AsyncMemory, fake: FakeLLM
) -> None:
    """Restore gives back the metadata from before an update, but whether a message still waits
    for inference is now's: the marks stay (a review found a restore taking them, so the message
    was never inferred)."""
    fake.responder = lambda request: Failure(500)
    added = await memory.add("I moved to Lisbon last monht", user_id="u")
    memory_id = added["results"][0]["id"]
    assert (await memory.stats())["pending_inference"] == 1
    await memory.update(memory_id, "I moved to Lisbon last month")
    assert (await memory.restore(memory_id))["event"] == "RESTORE"
    assert (await memory.get(memory_id))["memory"] == "I moved to Lisbon last monht"
    assert (await memory.stats())["pending_inference"] == 1


async def test_a_no_op_naming_a_memory_only_alike_keeps_the_users_words(memory: AsyncMemory, fake: FakeLLM) -> None:
    """SmolLM2 answered "I moved to Berlin" with NONE for "I am living in Paris" and an UPDATE
    rewriting "Paris is my home" to itself; both are related (over the search threshold), so the
    reply was read as "already stored" and Berlin was stored nowhere (a trial)."""
    fake.push(add("I am living in Paris"))
    paris = (await memory.add("I live in Paris", user_id="me"))["results"][0]["id"]
    fake.responder = lambda request: {"memory": [{"event": "NONE", "id": _number(request.prompt, "Paris")}]}
    result = await memory.add("I moved to Berlin", user_id="me")
    assert result["degraded"] is True and "unrelated" in result["reason"]
    assert (await memory.get(result["results"][0]["id"]))["memory"] == "I moved to Berlin"
    assert [e["event"] for e in await memory.history(paris)] == ["ADD"]


async def test_one_reply_decides_each_memory_once(memory: AsyncMemory, fake: FakeLLM) -> None:
    """SmolLM2 answered one add with NONE for a memory and then UPDATE of it: the first decision
    about a memory counts, so each memory is in the result once and as stored; a later UPDATE's
    text is added beside it (nothing the model drew from the messages is dropped), a later DELETE
    of a memory holding a repeated fact is ignored, and a fact repeated in one reply is said once."""
    fake.push(add("Erin is allergic to peanuts"), add("Erin likes hiking"))
    allergy = (await memory.add("I'm allergic to peanuts", user_id="erin"))["results"][0]["id"]
    hiking = (await memory.add("I like hiking", user_id="erin"))["results"][0]["id"]
    fake.responder = lambda request: {
        "memory": [
            {"event": "ADD", "text": "Erin is allergic to peanuts"},
            {"event": "DELETE", "id": _number(request.prompt, "Erin is allergic to peanuts")},
            {"event": "NONE", "id": _number(request.prompt, "Erin likes hiking")},
            {"event": "UPDATE", "id": _number(request.prompt, "Erin likes hiking"), "text": "Erin hikes in the Alps"},
            {"event": "ADD", "text": "Erin moved to Porto"},
            {"event": "ADD", "text": "Erin moved to Porto"},
        ]
    }
    result = await memory.add("Peanuts are still a no. I hike in the Alps. I moved to Porto.", user_id="erin")
    events = [(r["event"], r["memory"]) for r in result["results"]]
    assert events == [
        ("NONE", "Erin is allergic to peanuts"),
        ("NONE", "Erin likes hiking"),
        ("ADD", "Erin hikes in the Alps"),
        ("ADD", "Erin moved to Porto"),
    ], events
    assert "already decided memory" in result["results"][2]["reason"]
    assert len({r["id"] for r in result["results"]}) == 4
    assert (await memory.get(allergy))["memory"] == "Erin is allergic to peanuts"
    assert (await memory.get(hiking))["memory"] == "Erin likes hiking"
    for r in result["results"]:
        assert (await memory.get(r["id"]))["memory"] == r["memory"]


async def test_a_fact_a_reply_deletes_and_repeats_is_kept(memory: AsyncMemory, fake: FakeLLM) -> None:
    """A reply that deletes a memory and then adds its very text: the text is added anew (it
    used to be matched to the memory being deleted, and went with it)."""
    fake.push(add("Finn plays the cello"))
    cello = (await memory.add("I play the cello", user_id="finn"))["results"][0]["id"]
    fake.responder = lambda request: {
        "memory": [
            {"event": "DELETE", "id": _number(request.prompt, "Finn plays the cello")},
            {"event": "ADD", "text": "Finn plays the cello"},
        ]
    }
    result = await memory.add("Still playing the cello every day", user_id="finn")
    assert [r["event"] for r in result["results"]] == ["DELETE", "ADD"], result
    kept = [m["memory"] for m in (await memory.get_all(user_id="finn"))["results"]]
    assert kept == ["Finn plays the cello"]
    assert result["results"][1]["id"] != cello
