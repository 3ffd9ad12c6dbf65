"""Credentials are replaced before they are stored, embedded or sent to a model (server/redaction.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from memorch import AsyncMemory, MemoryConfig
from memorch.domain._redaction import redact

from .conftest import fake_llm_config
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
    """A bare word after "my password is" has no format to recognise: it is kept (docs/security.md)."""
    assert redact("my password is hunter2").text == "my password is hunter2"
    assert redact('db_password = "hunter2x"').text == 'db_password = "[REDACTED:password]"'


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
