"""The corpora for redaction (tests/test_redaction.py, bench/redaction.py).

``credentials(seed)``: one case per credential shape, each in its provider's documented format
with a random body drawn from a seeded RNG (never a real secret), told the way a person or a log
would tell it. Prefixes are assembled from pieces so no scanner mistakes this file for a leak.

``ordinary(seed)``: text that must come through unchanged: tests/data/redaction_ordinary.txt
(hand-written snippets: code, configs, logs, prose about passwords) and generated snippets with
hashes, git SHAs, UUIDs, base64 images, version strings, long numbers and URLs without passwords.
``conversation_turns()``: every turn of the LOCOMO and LongMemEval dev sets in ../shared/bench.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
SHARED_BENCH = Path(__file__).resolve().parents[3] / "shared" / "bench"


def shared_bench() -> Path:
    """../shared/bench (the LOCOMO and LongMemEval dev files, never copied into the repository),
    or skip: a clone without it beside runs every other test. ``MEMORCH_REQUIRE_SHARED_BENCH=1``
    (set by .ci/run) makes its absence a failure."""
    import pytest

    if not (SHARED_BENCH / "locomo_dev.json").is_file():
        message = f"the dev files are not at {SHARED_BENCH} (place ../shared beside the repository)"
        if os.environ.get("MEMORCH_REQUIRE_SHARED_BENCH") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_BENCH


UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UPPER + LOWER + DIGITS
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
BASE32 = UPPER + "234567"
BECH32 = "".join(c for c in UPPER + DIGITS if c not in "1BIO")  # age keys' alphabet
WORDS = ("hunter", "maple", "orbit", "river", "falcon", "cobalt", "velvet", "tiger", "lemon", "harbor")


@dataclass(frozen=True)
class Case:
    shape: str  # e.g. "github-fine-grained-pat"
    told: str  # the credential as said: "GH_TOKEN=github_pat_..."
    secret: str  # what must not survive


def _s(rng: random.Random, chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def password(rng: random.Random, url_safe: bool = False) -> str:
    """A person's password: words, digits and a symbol (``Maple47-orbit!``)."""
    symbols = "-_.~!*" if url_safe else "-_.!#%^&*+=?"
    word = rng.choice(WORDS)
    return (
        (word.capitalize() if rng.random() < 0.5 else word)
        + _s(rng, DIGITS, rng.randint(1, 4))
        + rng.choice(symbols)
        + rng.choice(WORDS).capitalize()
        + (rng.choice("!?#") if not url_safe else "")
    )


def _pem(rng: random.Random, label: str, body_lines: int, newline: str = "\n") -> tuple[str, str]:
    dashes = "-" * 5
    body = newline.join(_s(rng, B64, 64) for _ in range(body_lines))
    told = f"{dashes}BEGIN {label}{dashes}{newline}{body}{newline}{dashes}END {label}{dashes}"
    return told, body


def _cases(rng: random.Random) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    """(shape, () -> (told, secret)); a told string with {} puts the secret at {}."""
    r = rng

    def said(template: str, secret: str) -> tuple[str, str]:
        return template.format(secret), secret

    oai = "T3Blbk" + "FJ"
    sk = "s" + "k-"
    pw = password
    cases: list[tuple[str, Callable[[], tuple[str, str]]]] = [
        ("openai-legacy", lambda: said("my OpenAI key is {}", sk + _s(r, ALNUM, 20) + oai + _s(r, ALNUM, 20))),
        (
            "openai-project",
            lambda: said("OPENAI_API_KEY={}", sk + "proj-" + _s(r, URLSAFE, 74) + oai + _s(r, URLSAFE, 74)),
        ),
        (
            "openai-service-account",
            lambda: said("service account key: {}", sk + "svcacct-" + _s(r, URLSAFE, 58) + oai + _s(r, URLSAFE, 58)),
        ),
        ("anthropic-api", lambda: said("export ANTHROPIC_API_KEY={}", sk + "ant-api03-" + _s(r, URLSAFE, 93) + "AA")),
        (
            "anthropic-admin",
            lambda: said("the admin key {} is for billing", sk + "ant-admin01-" + _s(r, URLSAFE, 93) + "AA"),
        ),
        ("openrouter", lambda: said("OpenRouter: {}", sk + "or-v1-" + _s(r, HEX, 64))),
        ("deepseek", lambda: said("DeepSeek key {}", sk + _s(r, HEX, 32))),
        ("moonshot", lambda: said("my Kimi (Moonshot) API key is {}", sk + _s(r, ALNUM, 48))),
        ("gateway-virtual-key", lambda: said("the LiteLLM proxy gave me {}", sk + _s(r, URLSAFE, 22))),
        ("groq", lambda: said("GROQ_API_KEY={}", "gs" + "k_" + _s(r, ALNUM, 52))),
        ("xai", lambda: said("xAI key: {}", "xa" + "i-" + _s(r, ALNUM, 80))),
        ("perplexity", lambda: said("perplexity {}", "pp" + "lx-" + _s(r, ALNUM, 48))),
        ("replicate", lambda: said("REPLICATE_API_TOKEN={}", "r8" + "_" + _s(r, ALNUM, 37))),
        ("huggingface", lambda: said("huggingface-cli login --token {}", "hf" + "_" + _s(r, UPPER + LOWER, 34))),
        ("google-api-key", lambda: said("GOOGLE_API_KEY: {}", "AI" + "za" + "Sy" + _s(r, URLSAFE, 33))),
        ("google-oauth-client-secret", lambda: said('"client_secret": "{}"', "GOC" + "SPX-" + _s(r, URLSAFE, 28))),
        ("google-oauth-access-token", lambda: said("access token {}", "ya" + "29." + _s(r, URLSAFE, 150))),
        ("aws-access-key-id", lambda: said("aws_access_key_id = {}", "AK" + "IA" + _s(r, BASE32, 16))),
        ("aws-secret-access-key", lambda: said("aws_secret_access_key = {}", _s(r, B64, 40))),
        ("aws-secret-in-prose", lambda: said("my AWS secret access key is {}", _s(r, B64, 40))),
        ("github-classic-pat", lambda: said("git push with {}", "gh" + "p_" + _s(r, ALNUM, 36))),
        ("github-oauth", lambda: said("oauth token {}", "gh" + "o_" + _s(r, ALNUM, 36))),
        ("github-user-to-server", lambda: said("token {} expires soon", "gh" + "u_" + _s(r, ALNUM, 36))),
        ("github-server-to-server", lambda: said("installation token: {}", "gh" + "s_" + _s(r, ALNUM, 36))),
        ("github-refresh", lambda: said("refresh with {}", "gh" + "r_" + _s(r, ALNUM, 36))),
        (
            "github-fine-grained-pat",
            lambda: said("GH_TOKEN={}", "github" + "_pat_" + _s(r, ALNUM, 22) + "_" + _s(r, ALNUM, 59)),
        ),
        ("gitlab-pat", lambda: said("gitlab token {}", "gl" + "pat-" + _s(r, URLSAFE, 20))),
        (
            "slack-bot",
            lambda: said(
                "SLACK_BOT_TOKEN={}",
                "xo" + "xb-" + _s(r, DIGITS, 12) + "-" + _s(r, DIGITS, 13) + "-" + _s(r, ALNUM, 24),
            ),
        ),
        (
            "slack-user",
            lambda: said(
                "user token {}", "xo" + "xp-" + "-".join(_s(r, DIGITS, 12) for _ in range(3)) + "-" + _s(r, HEX, 32)
            ),
        ),
        (
            "slack-webhook",
            lambda: said(
                "post alerts to https://hooks.slack.com/services/{}",
                "T" + _s(r, UPPER + DIGITS, 8) + "/B" + _s(r, UPPER + DIGITS, 10) + "/" + _s(r, ALNUM, 24),
            ),
        ),
        ("stripe-secret", lambda: said("STRIPE_SECRET_KEY={}", "sk" + "_live_" + _s(r, ALNUM, 24))),
        ("stripe-restricted", lambda: said("restricted key {}", "rk" + "_live_" + _s(r, ALNUM, 99))),
        ("stripe-webhook-secret", lambda: said("webhook signing secret {}", "wh" + "sec_" + _s(r, ALNUM, 32))),
        ("twilio-api-key", lambda: said("TWILIO_API_KEY={}", "S" + "K" + _s(r, HEX, 32))),
        ("twilio-auth-token", lambda: said("TWILIO_AUTH_TOKEN={}", _s(r, HEX, 32))),
        ("sendgrid", lambda: said("SENDGRID_API_KEY={}", "S" + "G." + _s(r, URLSAFE, 22) + "." + _s(r, URLSAFE, 43))),
        ("mailgun-legacy", lambda: said("mailgun {}", "ke" + "y-" + _s(r, HEX, 32))),
        ("mailgun", lambda: said("MAILGUN_API_KEY={}", _s(r, HEX, 32) + "-" + _s(r, HEX, 8) + "-" + _s(r, HEX, 8))),
        ("mailchimp", lambda: said("mailchimp key {}", _s(r, HEX, 32) + "-us" + str(r.randint(1, 21)))),
        ("npm", lambda: said("//registry.npmjs.org/:_authToken={}", "np" + "m_" + _s(r, ALNUM, 36))),
        (
            "pypi",
            lambda: said(
                "[pypi]\nusername = __token__\npassword = {}", "pypi-" + "AgEI" + "cHlwaS5vcmc" + _s(r, URLSAFE, 150)
            ),
        ),
        (
            "azure-storage-connection-string",
            lambda: said(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={};EndpointSuffix=core.windows.net",
                _s(r, B64, 86) + "==",
            ),
        ),
        (
            "azure-service-bus",
            lambda: said(
                "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={}",
                _s(r, B64, 43) + "=",
            ),
        ),
        (
            "azure-sas-url",
            lambda: said(
                "https://acme.blob.core.windows.net/c/report.pdf?sv=2022-11-02&sp=r&se=2026-01-01T00:00:00Z&sig={}",
                _s(r, ALNUM, 40) + "%2B" + _s(r, ALNUM, 3) + "%3D",
            ),
        ),
        (
            "azure-ad-client-secret",
            lambda: said(
                "AZURE_CLIENT_SECRET={}", _s(r, ALNUM, 3) + r.choice(DIGITS) + "Q~" + _s(r, ALNUM + "_~.-", 34)
            ),
        ),
        ("gcp-service-account", lambda: _gcp(r)),
        ("pem-rsa", lambda: _pem_told(r, "RSA PRIVATE KEY", "my deploy key:\n{}\nkeep it safe")),
        ("pem-pkcs8", lambda: _pem_told(r, "PRIVATE KEY", "{}")),
        ("openssh", lambda: _pem_told(r, "OPENSSH PRIVATE KEY", "~/.ssh/id_ed25519:\n{}")),
        ("pem-ec", lambda: _pem_told(r, "EC PRIVATE KEY", "tls key {}")),
        ("pgp", lambda: _pem_told(r, "PGP PRIVATE KEY BLOCK", "gpg export: {}")),
        ("jwt", lambda: said("the session JWT is {}", _jwt(r))),
        (
            "bearer-header",
            lambda: said("curl -H 'Authorization: Bearer {}' https://api.example.com/v1/me", _s(r, URLSAFE, 40)),
        ),
        (
            "basic-auth-header",
            lambda: said("Authorization: Basic {}", base64.b64encode(f"bob:{pw(r)}".encode()).decode()),
        ),
        (
            "postgres-url",
            lambda: said("DATABASE_URL=postgresql://app_user:{}@db.internal:5432/app", pw(r, url_safe=True)),
        ),
        ("mysql-url", lambda: said("mysql://root:{}@127.0.0.1:3306/shop", pw(r, url_safe=True))),
        (
            "mongodb-srv-url",
            lambda: said("mongodb+srv://admin:{}@cluster0.ab1cd.mongodb.net/?retryWrites=true", pw(r, url_safe=True)),
        ),
        ("redis-url", lambda: said("REDIS_URL=redis://:{}@cache.internal:6379/0", pw(r, url_safe=True))),
        (
            "basic-auth-url",
            lambda: said("git clone https://deploy:{}@git.example.com/org/repo.git", pw(r, url_safe=True)),
        ),
        (
            "discord-bot",
            lambda: said(
                "DISCORD_TOKEN={}",
                _b64url(_s(r, DIGITS, 18).encode()) + "." + _s(r, URLSAFE, 6) + "." + _s(r, URLSAFE, 38),
            ),
        ),
        (
            "discord-webhook",
            lambda: said("https://discord.com/api/webhooks/" + _s(r, DIGITS, 18) + "/{}", _s(r, URLSAFE, 68)),
        ),
        ("telegram-bot", lambda: said("bot token {}", _s(r, DIGITS, 10) + ":AA" + _s(r, URLSAFE, 33))),
        ("shopify", lambda: said("shopify admin token {}", "shp" + "at_" + _s(r, HEX, 32))),
        ("digitalocean", lambda: said("DIGITALOCEAN_TOKEN={}", "do" + "p_v1_" + _s(r, HEX, 64))),
        ("heroku-v2", lambda: said("heroku auth {}", "HR" + "KU-AA" + _s(r, URLSAFE, 58))),
        ("heroku-legacy", lambda: said("HEROKU_API_KEY={}", str(uuid.UUID(int=r.getrandbits(128), version=4)))),
        ("databricks", lambda: said("DATABRICKS_TOKEN={}", "da" + "pi" + _s(r, HEX, 32))),
        ("docker-pat", lambda: said("docker login -u bob -p {}", "dc" + "kr_pat_" + _s(r, URLSAFE, 27))),
        ("vault", lambda: said("VAULT_TOKEN={}", "hv" + "s." + _s(r, URLSAFE, 90))),
        ("linear", lambda: said("linear {}", "lin" + "_api_" + _s(r, ALNUM, 40))),
        ("notion", lambda: said("NOTION_TOKEN={}", "nt" + "n_" + _s(r, DIGITS, 11) + _s(r, ALNUM, 35))),
        ("sentry", lambda: said("sentry auth token {}", "sntr" + "yu_" + _s(r, HEX, 64))),
        ("grafana", lambda: said("grafana service account {}", "gl" + "sa_" + _s(r, ALNUM, 32) + "_" + _s(r, HEX, 8))),
        ("postman", lambda: said("postman {}", "PM" + "AK-" + _s(r, HEX, 24) + "-" + _s(r, HEX, 34))),
        ("newrelic", lambda: said("NEW_RELIC_API_KEY={}", "NR" + "AK-" + _s(r, UPPER + DIGITS, 27))),
        ("supabase", lambda: said("supabase access token {}", "sb" + "p_" + _s(r, HEX, 40))),
        (
            "tailscale",
            lambda: said("tailscale up --authkey={}", "tskey" + "-auth-" + _s(r, ALNUM, 12) + "-" + _s(r, ALNUM, 33)),
        ),
        ("square", lambda: said("square {}", "EA" + "AA" + _s(r, URLSAFE, 60))),
        ("atlassian", lambda: said("jira api token {}", "ATA" + "TT3" + _s(r, URLSAFE, 180) + "=" + _s(r, HEX, 8))),
        ("age", lambda: said("age key {}", "AGE-" + "SECRET-KEY-1" + _s(r, BECH32, 58))),
        ("password-prose", lambda: said("my password is {}", pw(r))),
        ("password-prose-wifi", lambda: said("the wifi password for the cabin is {} btw", pw(r))),
        ("password-colon", lambda: said("Password: {}", pw(r))),
        ("password-env", lambda: said("DB_PASSWORD={}", pw(r))),
        ("password-json", lambda: said('{{"username": "bob", "password": "{}"}}', pw(r))),
        ("password-yaml", lambda: said("db:\n  user: app\n  password: {}\n", pw(r))),
        ("api-key-assignment", lambda: said('api_key = "{}"', _s(r, ALNUM, 32))),
        ("client-secret-yaml", lambda: said("client_secret: {}", _s(r, URLSAFE, 40))),
        ("api-key-in-prose", lambda: said("my Cohere API key is {}", _s(r, ALNUM, 40))),
        ("hex-api-key-in-prose", lambda: said("the OpenWeatherMap API key: {}", _s(r, HEX, 32))),
    ]
    return cases


def _pem_told(rng: random.Random, label: str, template: str) -> tuple[str, str]:
    told, body = _pem(rng, label, 6)
    return template.format(told), body


def _gcp(rng: random.Random) -> tuple[str, str]:
    key, body = _pem(rng, "PRIVATE KEY", 8, newline="\\n")
    told = (
        json.dumps(
            {
                "type": "service_account",
                "project_id": "demo-project",
                "private_key_id": _s(rng, HEX, 40),
                "client_email": "ci@demo-project.iam.gserviceaccount.com",
            }
        )[:-1]
        + f', "private_key": "{key}\\n"}}'
    )
    return told, body


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": _s(rng, DIGITS, 10), "name": rng.choice(WORDS), "iat": rng.randint(1_600_000_000, 1_800_000_000)}
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_s(rng, URLSAFE, 43)}"


def credentials(seed: int = 27) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for shape, make in _cases(rng):
        told, secret = make()
        cases.append(Case(shape, told, secret))
    return cases


SENTENCES = (
    "Note to self: {}. Don't lose it.",
    "here it is - {} - thanks for helping",
    "For the deploy tomorrow, {} (from the ops doc)",
    "ok so {}\nlet me know if that works",
    "Pasting it here (`{}`) so I remember.",
    'He wrote "{}" on the whiteboard!',
)


def in_sentence(case: Case, index: int) -> str:
    return SENTENCES[index % len(SENTENCES)].format(case.told)


def in_metadata(case: Case) -> dict[str, object]:
    return {"source": "chat", "details": {"note": case.told, "n": 1}}


def leaks(output: str, secret: str) -> bool:
    """The secret, or a 16-character piece of a long one, is still in ``output``."""
    if secret in output:
        return True
    return len(secret) >= 24 and any(secret[i : i + 16] in output for i in range(0, len(secret) - 15, 8))


# -- ordinary text ------------------------------------------------------------------------------


def handwritten() -> list[str]:
    """tests/data/redaction_ordinary.txt: snippets separated by lines holding only ``%%``."""
    text = (HERE / "redaction_ordinary.txt").read_text(encoding="utf-8")
    return [s.strip("\n") for s in text.split("\n%%\n") if s.strip()]


def generated(seed: int = 27, n: int = 2000) -> list[str]:
    """Hashes, SHAs, UUIDs, base64 images, versions, long numbers, URLs without a password."""
    rng = random.Random(seed)

    def num(low: int, high: int) -> int:
        return rng.randint(low, high)

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    def image(low: int, high: int) -> str:
        return base64.b64encode(rng.randbytes(num(low, high))).decode()

    def word() -> str:
        return rng.choice(WORDS)

    makers: list[Callable[[], str]] = [
        lambda: f"fixed in commit {_s(rng, HEX, 40)} yesterday",
        lambda: f"git cherry-pick {_s(rng, HEX, 7)} {_s(rng, HEX, 12)}",
        lambda: f'the release tag is "{_s(rng, HEX, 40)}"',
        lambda: f"sha256:{_s(rng, HEX, 64)}  dist/memorch-0.{num(1, 9)}.{num(0, 20)}.tar.gz",
        lambda: f"docker pull ghcr.io/acme/api@sha256:{_s(rng, HEX, 64)}",
        lambda: f"md5sum: {_s(rng, HEX, 32)}  backup.tar",
        lambda: f"sha1 = '{_s(rng, HEX, 40)}'",
        lambda: f"memory {uid()} was updated",
        lambda: f'{{"id": "{uid()}", "key": "{uid()}"}}',
        lambda: f"request_id={uid()} status=200 took={num(1, 900)}ms",
        lambda: f"![chart](data:image/png;base64,{image(300, 3000)})",
        lambda: f'<img src="data:image/jpeg;base64,{image(300, 2000)}">',
        lambda: f"numpy=={num(1, 2)}.{num(0, 26)}.{num(0, 9)} and torch {num(1, 2)}.{num(0, 9)}.{num(0, 9)}+cu121",
        lambda: f"v{num(0, 9)}.{num(0, 99)}.{num(0, 99)}-rc.{num(1, 9)}+build.{num(1, 9999)}",
        lambda: f"order #{_s(rng, DIGITS, 16)} shipped; tracking {_s(rng, UPPER + DIGITS, 18)}",
        lambda: f"call me at +1 {_s(rng, DIGITS, 3)} {_s(rng, DIGITS, 3)} {_s(rng, DIGITS, 4)}",
        lambda: f"the account number ends in {_s(rng, DIGITS, 4)}; IBAN DE{_s(rng, DIGITS, 20)}",
        lambda: f"https://example.com/search?q={word()}&page={num(1, 50)}&session={_s(rng, DIGITS, 8)}",
        lambda: f"https://www.youtube.com/watch?v={_s(rng, URLSAFE, 11)}&t={num(1, 900)}s",
        lambda: f"ssh bob@{num(10, 250)}.{num(0, 255)}.{num(0, 255)}.{num(1, 254)} -p {num(1024, 65535)}",
        lambda: f"git@github.com:{word()}/{word()}.git",
        lambda: f"https://{word()}@bitbucket.org/team/{word()}.git",
        lambda: f"postgres://localhost:{num(5000, 6000)}/{word()}",
        lambda: f"timestamp {num(1_600_000_000_000, 1_800_000_000_000)} offset {num(0, 10**9)}",
        lambda: f"Built {_s(rng, HEX, 8)}-{_s(rng, HEX, 4)} in {rng.random():.3f}s ({num(1, 999)} modules)",
        lambda: f"max_tokens={num(64, 8192)}, temperature={rng.random():.2f}, top_p=0.9",
        lambda: f'cache_key = f"{{user_id}}:{{hash}}"  # e.g. 42:{_s(rng, HEX, 16)}',
        lambda: f"the coordinates are {rng.uniform(-90, 90):.6f}, {rng.uniform(-180, 180):.6f}",
        lambda: f"ISBN 978-{_s(rng, DIGITS, 1)}-{_s(rng, DIGITS, 4)}-{_s(rng, DIGITS, 4)}-{_s(rng, DIGITS, 1)}",
        lambda: f"pip install 'memorch[postgres]>=0.{num(1, 9)}' --index-url https://pypi.org/simple",
        lambda: f"Ticket {_s(rng, UPPER, 3)}-{num(100, 9999)}: key rotation scheduled for {num(1, 28)} May",
        lambda: f"export PATH=$HOME/.local/bin:$PATH; cd /srv/{word()}-{_s(rng, HEX, 6)}",
    ]
    return [rng.choice(makers)() for _ in range(n)]


def ordinary(seed: int = 27) -> list[str]:
    return handwritten() + generated(seed)


def conversation_turns() -> dict[str, list[str]]:
    """Every turn of ../shared/bench's LOCOMO and LongMemEval dev sets (and LOCOMO's image captions)."""
    bench = shared_bench()
    locomo: list[str] = []
    for item in json.loads((bench / "locomo_dev.json").read_text(encoding="utf-8")):
        for key, session in item["conversation"].items():
            if key.startswith("session_") and isinstance(session, list):
                for turn in session:
                    locomo.append(turn["text"])
                    if turn.get("blip_caption"):
                        locomo.append(turn["blip_caption"])
    with gzip.open(bench / "longmemeval_s_dev.json.gz", "rt", encoding="utf-8") as f:
        longmemeval = [turn["content"] for item in json.load(f) for s in item["haystack_sessions"] for turn in s]
    return {"locomo": locomo, "longmemeval": longmemeval}
