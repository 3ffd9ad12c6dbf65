"""The structure each endpoint enforces, probed (issue 26).

Each test server imitates one route's parameters (tests/fake_llm.py: llama-cpp-python's schema
extension and its HTTP 500 for ``json_schema``, llama-server's ``json_schema``, vLLM's
``guided_json``, Ollama's ``format``/``think``/``num_ctx``, and a server that accepts every form
and enforces none). memorch reaches each through LiteLLM's real HTTP path; the probe must pick
the form the server enforces, the add must carry it, the choice must be cached on disk and shown
by ``doctor``. Plus what small models need: reasoning stripped before parsing, the compact
prompt, a per-add timeout that leaves the messages pending, and a breaker that an answering
model never opens.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.inference._prompts import COMPACT_RULES, EXTRACTION_RULES, reply_schema
from memorch.models._wire import LOCAL_ONLY, fitted

from .fake_llm import Delay, Failure, FakeLLM

FACT = {"memory": [{"event": "ADD", "text": "User drinks tea"}]}


def _config(tmp_path: Path, fake: FakeLLM, **overrides: Any) -> MemoryConfig:
    ollama = fake.route == "ollama"
    settings: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        graph="off",
        embedder="static",
        llm_model="ollama_chat/fake-model" if ollama else "openai/fake-model",
        llm_api_base=fake.url.removesuffix("/v1") if ollama else fake.url,
        llm_max_retries=0,
    )
    settings.update(overrides)
    return MemoryConfig(**settings)


def _carried(body: dict[str, Any]) -> str:
    """The form a request carried its schema in (as tests/fake_llm.py reads it)."""
    from .fake_llm import Request, _carried_schema

    return _carried_schema(Request("/api/chat" if "options" in body else "/v1/chat/completions", body, None))[0]


async def _structure_line(memory: AsyncMemory) -> str:
    checks = {c["name"]: c for c in await memory.doctor()}
    assert checks["structured output"]["ok"], checks
    return checks["structured output"]["detail"]


@pytest.mark.parametrize(
    ("route", "form", "words"),
    [
        ("openai", "json_schema", "enforced (json_schema)"),
        ("llama-cpp-python", "schema_extension", "enforced (response_format json_object + schema"),
        ("llama-server", "json_schema", "enforced (json_schema)"),
        ("vllm", "guided_json", "enforced (guided_json)"),
        ("ollama", "ollama_format", "enforced (Ollama format = schema)"),
        ("unenforced", "json", "JSON mode only, schema in prompt"),
    ],
)
async def test_the_probe_picks_the_form_the_server_enforces(route: str, form: str, words: str, tmp_path: Path) -> None:
    fake = FakeLLM(route=route).start()
    try:
        fake.push(FACT, {"ok": True})
        memory = AsyncMemory(_config(tmp_path, fake, llm_num_ctx=8192))
        try:
            result = await memory.add("I drink tea every morning", user_id="u")
            assert [e["event"] for e in result["results"]] == ["ADD"], result
            assert not result.get("degraded")
            line = await _structure_line(memory)
        finally:
            await memory.close()
        assert words in line and "probed" in line, line
        (add, _ping) = fake.chat_requests()
        assert _carried(add.body) == form, add.body
        system = add.body["messages"][0]["content"]
        # Only a schema nothing enforces is written into the prompt.
        assert ('"additionalProperties":false' in system) == (form == "json"), system[-300:]
        if form != "json":
            sent = add.body.get("guided_json") or add.body.get("format") or add.body["response_format"]
            assert "anyOf" in json.dumps(sent) and '"additionalProperties": false' in json.dumps(sent)
        if route == "ollama":
            assert add.body["think"] is False and add.body["options"]["num_ctx"] == 8192
        # The probe's own requests are few and never took the scripted replies.
        assert 1 <= len(fake.probes) <= 4
    finally:
        fake.stop()


async def test_a_server_that_accepts_a_schema_without_enforcing_it_is_noticed(tmp_path: Path) -> None:
    fake = FakeLLM(route="unenforced").start()
    try:
        fake.push(FACT)
        memory = AsyncMemory(_config(tmp_path, fake))
        try:
            await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        # Every schema form was tried and found unenforced, then JSON mode was accepted.
        assert [_carried(p.body) for p in fake.probes] == ["json_schema", "schema_extension", "guided_json", "json"]
        (add,) = fake.chat_requests()
        assert add.body["response_format"] == {"type": "json_object"}
    finally:
        fake.stop()


async def test_the_decision_is_cached_on_disk_per_model_base_and_server_version(tmp_path: Path) -> None:
    fake = FakeLLM(route="llama-cpp-python").start()
    try:
        fake.push(FACT, FACT)
        for _ in range(2):  # two starts on one data directory
            memory = AsyncMemory(_config(tmp_path, fake))
            try:
                await memory.add("I drink tea every morning", user_id="u")
                line = memory.engine.components.llm.structure_report()
            finally:
                await memory.close()
        assert len(fake.probes) == 1 and "cached" in line, (len(fake.probes), line)
        cache = json.loads((tmp_path / "data" / "llm_structure.json").read_text())
        (key,) = cache
        assert key == f"openai/fake-model @ {fake.url} @ llama-cpp-python 0.3.36"
        assert cache[key]["form"] == "schema_extension"
        assert all(_carried(r.body) == "schema_extension" for r in fake.chat_requests())
    finally:
        fake.stop()
    # Another server at another base (or version) is probed again.
    other = FakeLLM(route="llama-server").start()
    try:
        other.push(FACT)
        memory = AsyncMemory(_config(tmp_path, other))
        try:
            await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        assert len(other.probes) == 1 and _carried(other.chat_requests()[0].body) == "json_schema"
    finally:
        other.stop()


@pytest.mark.parametrize(("setting", "form"), [("schema", "schema_extension"), ("json", "json"), ("prompt", "none")])
async def test_the_setting_overrides_the_probe(setting: str, form: str, tmp_path: Path) -> None:
    fake = FakeLLM(route="llama-cpp-python").start()
    try:
        fake.push(FACT)
        memory = AsyncMemory(_config(tmp_path, fake, llm_structured=setting))
        try:
            result = await memory.add("I drink tea every morning", user_id="u")
            line = memory.engine.components.llm.structure_report()
        finally:
            await memory.close()
        assert not result.get("degraded") and fake.probes == []
        assert _carried(fake.chat_requests()[0].body) == form and "setting" in line
    finally:
        fake.stop()


async def test_ollama_without_thinking_is_sent_no_think(tmp_path: Path) -> None:
    fake = FakeLLM(route="ollama", think_refused=True).start()
    try:
        fake.push(FACT)
        memory = AsyncMemory(_config(tmp_path, fake))
        try:
            result = await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        assert [e["event"] for e in result["results"]] == ["ADD"], result
        assert [("think" in p.body) for p in fake.probes] == [True, False]
        (add,) = fake.chat_requests()
        assert "think" not in add.body and _carried(add.body) == "ollama_format"
    finally:
        fake.stop()


async def test_a_server_refusing_every_form_decides_nothing_and_the_add_degrades(tmp_path: Path) -> None:
    fake = FakeLLM().start()
    try:
        fake.fail_models["fake-model"] = Failure(404, {"error": {"message": "model not found", "type": "x"}})
        memory = AsyncMemory(_config(tmp_path, fake))
        try:
            result = await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        assert result["degraded"] and "rejected the request (HTTP 404): model not found" in result["reason"], result
        assert "MEMORCH_LLM_API_BASE, which for an OpenAI-compatible server ends in /v1" in result["reason"]
        assert len(fake.probes) == 5 and len(fake.chat_requests()) == 1  # every form refused, then the add
        assert not (tmp_path / "data" / "llm_structure.json").exists()
    finally:
        fake.stop()


async def test_reasoning_is_stripped_before_parsing(tmp_path: Path) -> None:
    fake = FakeLLM().start()
    try:
        fake.push('<think>The user says {"tea": 1}; I should add it.</think>\n' + json.dumps(FACT))
        fake.push('{"memory": [{"event": "ADD", "text": "User drinks coffee"}]}</think>')  # template opened it
        memory = AsyncMemory(_config(tmp_path, fake))
        try:
            first = await memory.add("I drink tea every morning", user_id="u")
            stats = memory.engine.components.llm.stats
        finally:
            await memory.close()
        assert [e["memory"] for e in first["results"]] == ["User drinks tea"]
        assert stats.repairs == 0 and len(fake.chat_requests()) == 1
    finally:
        fake.stop()


async def test_off_shape_replies_from_an_answering_model_never_open_the_breaker(tmp_path: Path) -> None:
    fake = FakeLLM().start()
    try:
        fake.push(*(["Sure! Tea is nice."] * 6), FACT)
        memory = AsyncMemory(_config(tmp_path, fake, circuit_failure_threshold=2))
        try:
            for _ in range(3):
                assert (await memory.add("I drink tea every morning", user_id="u"))["degraded"]
            circuits = (await memory.stats())["circuits"]
            result = await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        assert set(circuits.values()) == {"closed"}, circuits
        assert not result.get("degraded") and len(fake.chat_requests()) == 7  # 3 x (ask + repair), then 1
    finally:
        fake.stop()


async def test_a_500_naming_an_invalid_field_is_a_rejection_not_an_outage(tmp_path: Path) -> None:
    fake = FakeLLM().start()
    try:
        # llama-cpp-python's answer to a response_format it does not know.
        message = "1 validation error: response_format.type Input should be 'text' or 'json_object'"
        fake.push(Failure(500, {"error": {"message": message, "type": "internal_server_error"}}))
        memory = AsyncMemory(_config(tmp_path, fake, llm_max_retries=3, circuit_failure_threshold=1))
        try:
            result = await memory.add("I drink tea every morning", user_id="u")
            circuits = (await memory.stats())["circuits"]
        finally:
            await memory.close()
        assert result["degraded"] and "rejected the request (HTTP 500)" in result["reason"], result
        assert len(fake.chat_requests()) == 1  # not retried
        assert set(circuits.values()) == {"closed"}, circuits
    finally:
        fake.stop()


@pytest.mark.parametrize(
    ("setting", "context", "compact"), [("compact", 32768, True), ("auto", 4096, True), ("auto", 32768, False)]
)
async def test_the_compact_prompt_for_small_context_windows(
    setting: str, context: int, compact: bool, tmp_path: Path
) -> None:
    fake = FakeLLM(route="llama-server", context=context).start()
    try:
        fake.push(FACT)
        memory = AsyncMemory(_config(tmp_path, fake, llm_prompt=setting))
        try:
            result = await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        assert [e["event"] for e in result["results"]] == ["ADD"]
        system = fake.chat_requests()[0].body["messages"][0]["content"]
        assert (COMPACT_RULES in system, EXTRACTION_RULES in system) == (compact, not compact)
        if compact:
            schema = fake.chat_requests()[0].body["response_format"]["json_schema"]["schema"]
            assert schema["properties"]["memory"]["maxItems"] == 8
    finally:
        fake.stop()


async def test_a_local_server_that_timed_out_is_not_sent_the_request_again(tmp_path: Path) -> None:
    """llama-cpp-python goes on computing a request its client gave up on: a retry would queue
    behind it. The add degrades after one request (an OpenAI-compatible server of unknown kind
    is still retried: tests/test_inference.py::test_timeout_is_retried)."""
    fake = FakeLLM(route="llama-cpp-python").start()
    try:
        memory = AsyncMemory(_config(tmp_path, fake, llm_timeout=0.5, llm_max_retries=2))
        memory.engine.components.resilience.sleep = lambda seconds: None
        try:
            fake.push(Delay(2.0, FACT), FACT, FACT)
            result = await memory.add("I drink tea every morning", user_id="u")
        finally:
            await memory.close()
        assert result["degraded"] is True and result["results"][0]["memory"] == "I drink tea every morning"
        assert len(fake.chat_requests()) == 1
    finally:
        fake.stop()


# A process that adds with MEMORCH_LLM_ADD_TIMEOUT (as `memorch add` does), prints, and ends.
# An add without the deadline first (LiteLLM's import, the first call's, the probe), so that the
# second add's 2 s go to its request alone.
ADD_THEN_EXIT = """
import json
from memorch import Memory, MemoryConfig
with Memory(MemoryConfig(llm_add_timeout=None)) as memory:
    memory.add("warm up", user_id="w")
with Memory(MemoryConfig()) as memory:
    result = memory.add("I drink tea every morning", user_id="u")
print(json.dumps(result), flush=True)
"""


def test_a_process_ends_once_it_answers_even_while_the_model_is_still_thinking(tmp_path: Path) -> None:
    """A newcomer's trial: `memorch add` with MEMORCH_LLM_ADD_TIMEOUT printed its answer, then
    the process lived until the abandoned model request ended (19.6 s): interpreter exit joined
    the model call's pool thread. The reply, 150 s late here, is not waited for."""
    fake = FakeLLM().start()
    try:
        fake.push(FACT, Delay(150.0, FACT))
        env = {
            **os.environ,
            "MEMORCH_DATA_DIR": str(tmp_path / "data"),
            "MEMORCH_GRAPH": "off",
            "MEMORCH_EMBEDDER": "static",
            "MEMORCH_LLM_MODEL": "openai/fake-model",
            "MEMORCH_LLM_API_BASE": fake.url,
            "MEMORCH_LLM_MAX_RETRIES": "0",
            "MEMORCH_LLM_API_KEY": "k",
            "MEMORCH_LLM_ADD_TIMEOUT": "2",
            "MEMORCH_LLM_TIMEOUT": "120",
        }
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", ADD_THEN_EXIT], env=env, capture_output=True, text=True, timeout=220, check=False
        )
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["pending"] is True
        assert len(fake.chat_requests()) == 2, "the add's request was not sent: the test shows nothing"
        assert elapsed < 90, elapsed  # before: 120 s and more, the model call's thread was joined at exit
    finally:
        fake.stop()


async def test_a_slow_model_leaves_the_messages_pending_instead_of_blocking(tmp_path: Path) -> None:
    fake = FakeLLM().start()
    try:
        warm = AsyncMemory(_config(tmp_path, fake))  # the probe, cached on disk, and LiteLLM's import
        try:
            await warm.add("warm up", user_id="w")
        finally:
            await warm.close()
        memory = AsyncMemory(_config(tmp_path, fake, llm_add_timeout=2.0))
        try:
            fake.push(Delay(6.0, FACT))
            started = time.monotonic()
            result = await memory.add("I drink tea every morning", user_id="u")
            elapsed = time.monotonic() - started
            (kept,) = result["results"]
            stored = await memory.get(kept["id"])
            fake.push(FACT)
            await asyncio.sleep(4.5)  # the late reply arrives and is dropped
            done = await memory.reprocess()
            after = await memory.get_all(user_id="u")
        finally:
            await memory.close()
        assert elapsed < 5.0 and result["pending"] and "MEMORCH_LLM_ADD_TIMEOUT" in result["reason"], result
        # No background inference here: the add says what does come back to it (it said
        # "background inference", which was off: a trial).
        assert "`memorch reprocess` extracts" in result["reason"] and "background" not in result["reason"]
        assert "`memorch reprocess` replaces it" in kept["reason"], kept
        assert stored["memory"] == "I drink tea every morning"
        assert stored["metadata"]["_memorch"]["pending_inference"]
        assert done["processed"] == 1
        assert [m["memory"] for m in after["results"]] == ["User drinks tea"]
    finally:
        fake.stop()


def _nodes(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _nodes(value)
    elif isinstance(node, list):
        for value in node:
            found += _nodes(value)
    return found


def test_the_reply_schema_is_strict_and_small() -> None:
    for graph in (False, True):
        schema = fitted(reply_schema(graph, offered=3), local=False)  # as a hosted model or a prompt gets it
        for node in (n for n in _nodes(schema) if n.get("type") == "object"):
            assert node["additionalProperties"] is False and node["required"] == list(node["properties"])
        events = [v["properties"]["event"]["enum"] for v in schema["properties"]["memory"]["items"]["anyOf"]]
        assert events == [["ADD"], ["UPDATE"], ["DELETE"], ["NONE"]]
        # Small: about 200 tokens without the graph, 350 with it (compact JSON as the prompt shows it).
        assert len(json.dumps(schema, separators=(",", ":"))) < (1400 if graph else 900)


def test_a_local_grammar_gets_each_fields_bounds_and_a_hosted_provider_none_of_them() -> None:
    schema = reply_schema(graph=True, offered=2)
    hosted, local = fitted(schema, local=False), fitted(schema, local=True)
    for fitted_schema in (hosted, local):
        assert all(LOCAL_ONLY not in node for node in _nodes(fitted_schema))
    # Hosted dialects get plain types: no patterns, lengths or integer enums (Gemini has none).
    assert not [
        n for n in _nodes(hosted) if {"pattern", "maxLength"} & set(n) or (n.get("type") == "integer" and "enum" in n)
    ]
    variants = {
        v["properties"]["event"]["enum"][0]: v["properties"] for v in local["properties"]["memory"]["items"]["anyOf"]
    }
    assert variants["UPDATE"]["id"]["enum"] == [0, 1] == variants["NONE"]["id"]["enum"]
    assert "pattern" in variants["ADD"]["text"] and variants["DELETE"]["reason"]["maxLength"] == 120
    relations = local["properties"]["relations"]
    assert relations["maxItems"] == 8 and relations["items"]["properties"]["fact"]["enum"] == list(range(12))
    assert all("maxItems" in n for n in _nodes(local) if n.get("type") == "array")
    # With no EXISTING MEMORIES there is nothing to update, delete or keep: only ADD is allowed.
    events = [
        v["properties"]["event"]["enum"]
        for v in reply_schema(graph=False, offered=0)["properties"]["memory"]["items"]["anyOf"]
    ]
    assert events == [["ADD"]]


def test_the_local_patterns_refuse_what_a_small_model_wrote_and_keep_real_text() -> None:
    import re

    from memorch.inference._prompts import NAME_PATTERN, RELATIONSHIP_PATTERN, TEXT_PATTERN

    # Written by SmolLM2-135M under the old grammar, and stored or sent to repair.
    assert not any(re.match(TEXT_PATTERN, t) for t in ("...", "-", " User", '"'))
    assert all(
        re.match(TEXT_PATTERN, t) for t in ("4th of July is User's birthday", "Émile vit à Paris", "東京に住んでいる")
    )
    assert not re.match(TEXT_PATTERN, "x" * 241) and re.match(TEXT_PATTERN, "x" * 240)
    assert not re.match(NAME_PATTERN, 'Tofu is my favourite cat}, {"') and re.match(NAME_PATTERN, "St. Mary's hospital")
    assert not re.match(RELATIONSHIP_PATTERN, "lives in") and re.match(RELATIONSHIP_PATTERN, "wohnt_in")


def test_the_local_schema_compiles_to_a_grammar_llama_cpp_parses() -> None:
    """The patterns are written for llama.cpp's JSON-schema-to-grammar converter (the dev extra
    installs it): the fitted schema must convert and parse, or every local add would fail."""
    from llama_cpp.llama_grammar import LlamaGrammar

    for offered, graph, compact in ((0, False, False), (10, True, True), (30, True, False)):
        grammar = LlamaGrammar.from_json_schema(json.dumps(fitted(reply_schema(graph, offered, compact), local=True)))
        assert grammar is not None


async def test_an_add_to_a_local_server_allows_only_the_ids_it_offered(tmp_path: Path) -> None:
    fake = FakeLLM(route="llama-server").start()
    try:
        memory = AsyncMemory(_config(tmp_path, fake))
        try:
            fake.push(FACT, {"memory": [{"event": "NONE", "id": 0}]})
            await memory.add("I drink tea every morning", user_id="u")
            await memory.add("Tea in the morning, every day", user_id="u")
        finally:
            await memory.close()
        first, second = (r.body["response_format"]["json_schema"]["schema"] for r in fake.chat_requests())
        assert [v["properties"]["event"]["enum"] for v in first["properties"]["memory"]["items"]["anyOf"]] == [["ADD"]]
        ids = [
            v["properties"]["id"]["enum"]
            for v in second["properties"]["memory"]["items"]["anyOf"]
            if "id" in v["properties"]
        ]
        assert ids == [[0], [0], [0]]
        assert all(LOCAL_ONLY not in json.dumps(s) for s in (first, second))
    finally:
        fake.stop()


def test_a_provider_message_is_cut_at_a_word() -> None:
    """LiteLLM's long messages were cut at 200 characters mid-word ("... pass in `com"), read as
    the provider's own words (a trial): now at a word, with "…"."""
    from memorch.models._resilience import _short

    said = "LLM Provider NOT provided. Pass in the LLM provider you are trying to call. " * 5
    short = _short(said)
    assert len(short) <= 202 and short.endswith(" …") and said.startswith(short[:-2].rstrip())
    assert _short("a short message") == "a short message"


def test_the_probe_reads_an_escaped_character_as_the_grammar_wrote_it() -> None:
    """The probe's pattern is the grammar's, over the reply as encoded (``\\n`` is one character
    of it); checked against the decoded string, an enforced reply with an escaped newline was
    judged unenforced and the server sent JSON mode only."""
    from memorch.models._structured import probe_schema

    schema, conforms = probe_schema()
    outer = next(iter(schema["properties"]))
    said = next(iter(schema["properties"][outer]["items"]["anyOf"][2]["properties"]))

    def reply(text: str) -> Any:
        return json.loads(json.dumps({outer: [{said: text}]}))

    assert conforms(reply("sunny\nand mild"))  # 14 characters encoded, as the grammar counts
    assert conforms(reply('a "warm" day'))
    assert not conforms(reply("sunny and mild, with a breeze"))  # over the pattern's 16
    assert not conforms(reply(" sunny"))  # the pattern's first character is not a space
