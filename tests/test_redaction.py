"""Credentials are replaced before they are stored, embedded or sent to a model (server/domain/_redaction.py).

The corpora (tests/data/redaction_corpus.py): ~90 credential shapes in their providers' formats
with seeded random bodies, each said in sentences, in a message list given to ``add`` and in
metadata values; and ordinary text (every LOCOMO and LongMemEval dev turn from ../shared/bench,
code and config snippets, hashes, UUIDs, base64 images) that must come through unchanged.
Goals: >= 95 % of the credentials redacted in each carrier, <= 0.1 % of ordinary texts changed.
bench/redaction.py prints the same figures per shape, and the cost.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._redaction import redact, redact_metadata

from .conftest import fake_llm_config
from .data.redaction_corpus import (
    SENTENCES,
    conversation_turns,
    credentials,
    in_metadata,
    in_sentence,
    leaks,
    ordinary,
)
from .fake_llm import FakeLLM


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# Fake credentials of the real formats, assembled here so no scanner mistakes this file for a leak.
KEY_BODY = "MIIEowIBAAKCAQEA7fakeKEYbodyQWERTYuiopASDFGHjklZXCVBNM0123456789"
SECRETS = {
    "openai-api-key": "sk-proj-" + "abcdEFGH1234ijklMNOP" + "T3Blbk" + "FJ" + "qrstUVWX5678yzabCDEF",
    "anthropic-api-key": "sk-ant-" + "api03-" + "Ab1_-Cd2" * 12,
    "aws-access-key": "AKIA" + "Z7QWERTYUIOPASDF",
    "github-token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6q7R8",
    "slack-token": "xoxb-" + "123456789012-1234567890123-" + "abcdefghijklmnopqrstuvwx",
    "google-api-key": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "password": "Tr0ub4dor-horse",  # in postgres://bob:...@db
    "jwt": _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64({"sub": "1234567890", "name": "Bob"}) + ".c2lnbmF0dXJl",
    "private-key": KEY_BODY,
}
SAY = {
    "password": "the app uses postgres://bob:{}@db.internal:5432/app",
    "private-key": "my deploy key:\n-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\nkeep it safe",
}


def sentence(kind: str) -> str:
    return SAY.get(kind, "my token for the build is {} so use it").format(SECRETS[kind])


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_is_redacted(kind: str) -> None:
    text = sentence(kind)
    result = redact(text)
    assert SECRETS[kind] not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert [f.kind for f in result.findings] == [kind]
    finding = result.findings[0]
    assert SECRETS[kind] in text[finding.start : finding.end]  # where, in the given text
    assert SECRETS[kind] not in json.dumps([f.public() for f in result.findings])  # never the value


def test_connection_string_keeps_everything_but_the_password() -> None:
    assert redact(sentence("password")).text == "the app uses postgres://bob:[REDACTED:password]@db.internal:5432/app"
    assert redact(sentence("private-key")).text == "my deploy key:\n[REDACTED:private-key]\nkeep it safe"


@pytest.mark.parametrize(
    "text",
    [
        "memory 3f1c2d4e-5a6b-4c8d-9e0f-1a2b3c4d5e6f was updated",  # a UUID
        "fixed in commit 9fceb02d0ae598e95dc970b74767f19372d61af8 yesterday",  # a git SHA in prose
        'the release tag is "9fceb02d0ae598e95dc970b74767f19372d61af8"',  # quoted: no entropy plugin
        "my password is a secret and the API key lives in the vault",
        "I use scikit-learn and sk-learn style pipelines",
        "the docs are at https://example.com/a/b?x=1 and mail me at bob@example.com",
        "connect with postgres://localhost:5432/app",
        "I'm learning APACHESPARK and ACCESSIBILITY guidelines",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text).text == text


def test_known_miss_a_password_said_in_prose() -> None:
    """The rule for passwords (docs/security.md): after a password's name ("my password is",
    "password:", ``db_password =``) the value goes unless it is a placeholder or identifier, or,
    said bare, ordinary words: letters only, each word lower case, Capitalised or upper case. So a
    bare dictionary word is kept (no format tells "my password is swordfish" from "my password
    is strong"): a known miss. A digit, symbol or inner capital, or quotes, make it a password."""
    kept = [
        "my password is swordfish",
        "my password is strong",
        "Your password is case-sensitive.",
        "Password: required",
        "password = user_password",
        "ALTER USER app WITH PASSWORD :'new_password';",
        "the password is <your password>",
    ]
    for text in kept:
        assert redact(text).text == text
    gone = {
        "my password is hunter2": "my password is [REDACTED:password]",
        "my password is hunter2-Blue!": "my password is [REDACTED:password]",
        "my password is 'swordfish'": "my password is '[REDACTED:password]'",
        "the password to my laptop is CorrectHorse-42.": "the password to my laptop is [REDACTED:password].",
        "Password: Tr0ub4dor&3": "Password: [REDACTED:password]",
        'db_password = "hunter2x"': 'db_password = "[REDACTED:password]"',
    }
    for text, expected in gone.items():
        assert redact(text).text == expected


# -- the corpora ------------------------------------------------------------------------------

CASES = credentials()
RECALL_GOAL = 0.95
CHANGED_GOAL = 0.001


def _recall(missed: list[str], total: int, carrier: str) -> None:
    recall = 1 - len(missed) / total
    assert recall >= RECALL_GOAL, f"{carrier}: {recall:.1%} of {total} redacted; missed: {', '.join(missed)}"


def test_the_credential_corpus_covers_the_common_shapes() -> None:
    shapes = [case.shape for case in CASES]
    assert len(shapes) == len(set(shapes)) >= 40
    for case in CASES:
        assert case.secret in case.told


def test_credentials_in_sentences_are_redacted() -> None:
    missed = []
    for case in CASES:
        for i in range(len(SENTENCES)):
            said = in_sentence(case, i)
            result = redact(said)
            if leaks(result.text, case.secret) or not result.findings:
                missed.append(f"{case.shape} in {said!r}"[:200])
            for finding in result.findings:  # offsets name the secret in the given text
                assert said[finding.start : finding.end] and "[REDACTED" in result.text
    _recall(missed, len(CASES) * len(SENTENCES), "sentences")


def test_credentials_in_metadata_values_are_redacted() -> None:
    missed = []
    for case in CASES:
        given = in_metadata(case)
        value, findings = redact_metadata(given)
        assert given == in_metadata(case)  # the caller's object is not changed
        assert value["source"] == "chat" and value["details"]["n"] == 1
        if leaks(json.dumps(value), case.secret) or not findings:
            missed.append(case.shape)
    _recall(missed, len(CASES), "metadata")


def test_metadata_under_a_credential_name_goes_whole() -> None:
    value, findings = redact_metadata(
        {"db_password": "swordfish", "api_key": "Zq81vK0aLr5TnB2xWc9s", "tags": ["ops"], "retries": 3, "key": "a1b2"}
    )
    assert value == {
        "db_password": "[REDACTED:password]",
        "api_key": "[REDACTED:secret]",
        "tags": ["ops"],
        "retries": 3,
        "key": "a1b2",
    }
    assert [f.kind for f in findings] == ["password", "secret"]


async def test_credentials_in_a_message_list_are_redacted_by_add(tmp_path: Path) -> None:
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="static"))
    said = [{"role": "user", "content": in_sentence(case, i)} for i, case in enumerate(CASES)]
    try:
        result = await memory.add(said, user_id="bob")
        events = result["results"]
        assert [e["event"] for e in events] == ["ADD"] * len(CASES)
        stored = [(await memory.get(e["id"]))["memory"] for e in events]
    finally:
        await memory.close()
    files = _data_bytes(tmp_path / "data")  # the ledger, its WAL, the vector index
    missed = [
        case.shape
        for case, text in zip(CASES, stored, strict=True)
        if leaks(text, case.secret) or case.secret.encode() in files or "[REDACTED:" not in text
    ]
    _recall(missed, len(CASES), "messages given to add")


async def test_credentials_in_metadata_given_to_add_are_redacted(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.shape == "github-classic-pat")
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off", embedder="static"))
    try:
        result = await memory.add("the CI token is in the metadata", user_id="bob", metadata=in_metadata(case))
        memory_id = result["results"][0]["id"]
        stored = await memory.get(memory_id)
        updated = await memory.update(memory_id, "the CI token moved", metadata=in_metadata(case))
        restated = await memory.get(memory_id)
        kept = await memory.update(memory_id, "the CI token moved again")  # metadata not given: kept
    finally:
        await memory.close()
    assert not leaks(json.dumps(stored["metadata"]), case.secret)
    assert result["redacted"] and updated["redacted"] and "redacted" not in kept
    assert not leaks(json.dumps(restated["metadata"]), case.secret)


def test_ordinary_text_is_not_changed() -> None:
    """Every LOCOMO and LongMemEval dev turn (~39,000 texts, 35 MB) plus ~2,000 snippets."""
    corpora = {**conversation_turns(), "snippets": ordinary()}
    total = sum(len(texts) for texts in corpora.values())
    assert total > 38_000
    changed = []
    for name, texts in corpora.items():
        for text in texts:
            result = redact(text)
            if result.text != text:
                at = result.text.find("[REDACTED:")
                changed.append(f"{name}: {result.text[max(0, at - 60) : at + 30]!r}")
    assert len(changed) / total <= CHANGED_GOAL, f"{len(changed)} of {total} changed:\n" + "\n".join(changed)


def _data_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


async def test_verbatim_add_and_update_store_no_secret(tmp_path: Path) -> None:
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off"))
    try:
        text = "\n".join(sentence(kind) for kind in sorted(SECRETS))
        result = await memory.add(text, user_id="bob", metadata={"topic": "ops"})
        assert {r["kind"] for r in result["redacted"]} == set(SECRETS)
        stored = await memory.get(result["results"][0]["id"])
        assert stored["metadata"]["topic"] == "ops"
        assert {r["kind"] for r in stored["metadata"]["_memorch"]["redacted"]} == set(SECRETS)
        assert "[REDACTED:aws-access-key]" in stored["memory"]

        updated = await memory.update(stored["id"], "rotated: " + sentence("github-token"))
        assert updated["redacted"] == [{"kind": "github-token", "count": 1}]
        history = json.dumps(await memory.history(stored["id"]))
        assert "[REDACTED:github-token]" in history
        found = await memory.search("which token does the build use", user_id="bob")
        assert found["results"] and "[REDACTED:github-token]" in found["results"][0]["memory"]
    finally:
        await memory.close()
    files = _data_bytes(tmp_path / "data")  # the SQLite ledger (and its WAL), LanceDB, caches
    assert b"REDACTED" in files
    for secret in SECRETS.values():
        assert secret.encode() not in files


async def test_redact_off_keeps_text_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORCH_REDACT", "off")
    memory = AsyncMemory(MemoryConfig(data_dir=tmp_path / "data", graph="off"))
    try:
        result = await memory.add(sentence("aws-access-key"), user_id="bob")
        assert "redacted" not in result
        assert (await memory.get(result["results"][0]["id"]))["memory"] == sentence("aws-access-key")
    finally:
        await memory.close()


async def test_inference_never_sends_a_secret(tmp_path: Path, fake: FakeLLM) -> None:
    memory = AsyncMemory(fake_llm_config(tmp_path, fake))
    try:
        fake.push({"memory": [{"event": "ADD", "text": "Bob's app database is db.internal"}]})
        said = [{"role": "user", "content": sentence(kind)} for kind in sorted(SECRETS)]
        result = await memory.add(said, user_id="bob")
        assert result["results"][0]["event"] == "ADD"
        assert {r["kind"] for r in result["redacted"]} == set(SECRETS)
        sent = json.dumps([r.body for r in fake.requests])
        assert "[REDACTED:" in sent
        for secret in SECRETS.values():
            assert secret not in sent
    finally:
        await memory.close()
    files = _data_bytes(tmp_path / "data")
    for secret in SECRETS.values():
        assert secret.encode() not in files
