"""The credential shapes ``_redaction`` recognises: providers' documented token formats, and values
given a credential's name (``password = ...``, ``API key: ...``, ``my password is ...``).

Written for memorch from the providers' documentation, with gitleaks' and detect-secrets' rule
sets as the list of formats to cover. Each ``Rule`` has a ``kind`` (what ``[REDACTED:<kind>]``
says), a regular expression and the group whose span is redacted (0: the whole match). Speed
comes from Python's literal-prefix search: each pattern starts with its provider's fixed prefix
(``ghp_``, ``sk-``, ``AKIA``), so a scan costs ~1 ns a character; the token's left edge, and the
random part some formats put before a fixed one (``lead``), are checked only where it matched.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    kind: str | Callable[[str], str]  # or a function of the matched value
    regex: re.Pattern[str]
    group: int = 0
    check: Callable[[str], bool] | None = None  # on the redacted value; False: not a credential
    lead: re.Pattern[str] | None = None  # must end where the match starts; the span starts with it
    edge: bool = True  # the span may not start right after a token character
    needle: str = ""  # the pattern's fixed start: a text without it is not scanned


TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/-")
_R = r"(?![\w+/=-])"  # a token's right edge
_TOKEN = re.compile(r"[\w+/=.~%!#$&*@^:-]+")


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def entropy(value: str) -> float:
    """Shannon entropy, bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def token_like(value: str) -> bool:
    """Random-looking: 16+ token characters (no spaces, brackets or quotes: not code), letters and
    digits, 3+ bits of entropy a character, not a placeholder."""
    return (
        len(value) >= 16
        and _TOKEN.fullmatch(value) is not None
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and entropy(value) >= 3.0
        and not _PLACEHOLDER.search(value)
    )


def _mixed(value: str) -> bool:
    """Two of lower case, upper case and digits (``sk-`` keys; not ``sk-learn-style-pipelines``)."""
    classes = (any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value))
    return sum(classes) >= 2 and entropy(value) >= 3.0


def _jwt(value: str) -> bool:
    """A JWT's first part decodes to a JSON object (its header)."""
    head = value.split(".", 1)[0]
    try:
        return isinstance(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))), dict)
    except (ValueError, binascii.Error):
        return False


def _sk_kind(value: str) -> str:
    if value.startswith("sk-ant-"):
        return "anthropic-api-key"
    if value.startswith("sk-or-"):
        return "openrouter-api-key"
    if value.startswith(("sk-proj-", "sk-svcacct-", "sk-admin-")) or "T3BlbkFJ" in value:
        return "openai-api-key"
    return "api-key"  # DeepSeek, Moonshot, gateways and other OpenAI-compatible services


# -- values given a credential's name -----------------------------------------------------------

# The name: a keyword at a word edge (``db_password``, ``dbPassword``, ``AWS_SECRET_ACCESS_KEY``,
# ``api-key``; not ``monkey``, ``tokenizer`` or ``max_tokens``), the rest of an identifier, a
# closing quote, bracket or ``**``. Then ``=``, ``:``, ``:=``, ``=>``, or prose: ``is``, ``was``, ``to``
# (after an optional "for the wifi", "to my laptop"). Then the value, quoted or bare.
PASSWORD_WORDS = r"passw(?:or)?d|passwort|passphrase|passcode|pwd"
NAME = (
    r"(?:(?<![A-Za-z])(?i:" + PASSWORD_WORDS + r"|api[_-]?key|apikey|secret|token|credentials?|key)"
    r"|(?:Passw(?:or)?d|Passwort|Passphrase|Passcode|Pwd|Key|Secret|Token|Credentials?))(?![a-z])"
)
# Ordinary words: letters only (hyphenated words too), each all lower case, Capitalised or all
# upper case; and identifiers with ``_`` or ``.`` (``user_password``, ``config.db_pass``: code naming
# a variable). A bare value that is one of these is kept (docs/security.md: passwords in prose).
_WORDS = r"(?:[a-z]+|[A-Z][a-z]*|[A-Z]+)(?:-(?:[a-z]+|[A-Z][a-z]*|[A-Z]+))*|_?[A-Za-z]+(?:[_.][A-Za-z]+)+"
_BARE = r"[^\s\"'`,;<>(){}\[\]]"
NAMED = _rx(
    r"(?P<ident>(?P<name>" + NAME + r")[\w.-]{0,40}?)[\"'\]*]{0,3}"
    r"(?:\s+(?:for|to|of|on|at|in|with)(?:\s+[^\s.,;:!?\"'=]+){1,3}?)?"
    r"(?:\s*(?P<code>:=|=>|=)|\s*:|\s+(?:is|was|are|to|became)(?:\s+(?:now|still|just|also|set\s+to))?:?)"
    r"[ \t]*(?:\*\*[ \t]*)?(?:(?P<q>[\"'`])(?P<quoted>[^\"'`\n]{1,200})(?P=q)"
    r"|(?P<bare>(?!(?:" + _WORDS + r")[.:!?]*(?!" + _BARE + r"))" + _BARE + r"+))"
)
_PLAIN = re.compile(r"(?:" + _WORDS + r")[.:!?]*")
_IDENTIFIER = re.compile(r"_?[A-Za-z]+(?:[_.][A-Za-z]+)+")
_PLACEHOLDER = re.compile(
    r"(?i)your|xxxx|\*\*\*|\.\.\.|\u2026|<|>|\{|\}|^\$|%\(|example|placeholder|redacted|changeme|dummy|"
    r"^(?:none|null|nil|true|false|undefined|string|str|password|secret|token|hidden)$"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_TRAILING = ".,;:)]}"
_MORE_CODE = re.compile(r"[ \t]+[\w\"'$(-]")
_NAME_BEFORE = re.compile(r"[\w.-]{0,40}\Z")
_PATH = re.compile(r"\.{0,2}/|~/|[a-z][\w+.-]*://")
# Words that make a bare "key" a credential's name ("API key: ...", "the secret key is ...").
_KEY_QUALIFIED = re.compile(
    r"\b(?:api|secret|access|private|auth|client|account|master|licen[cs]e|encryption|signing|app|service|admin)\W*\Z"
)


def password_value(value: str, quoted: bool) -> bool:
    """The value given a password's name is one: not a placeholder (``<password>``, ``${DB_PASS}``,
    ``your-password``), at least 4 characters, not an identifier (``'new_password'``,
    ``config.db_pass``: code naming a variable) nor a path or URL (``PWD=/home/bob``) and, when
    not quoted, not ordinary words (prose: "my password is strong", "password: required")."""
    if len(value) < 4 or _PLACEHOLDER.search(value) or _IDENTIFIER.fullmatch(value) or _PATH.match(value):
        return False
    return quoted or not _PLAIN.fullmatch(value)


def secret_kind(name: str, value: str, said: str = "") -> str | None:
    """The kind of credential ``value`` is, given under ``name`` (lower case: ``aws_secret_access_key``,
    ``api key``) after the words ``said`` (lower case), or None: not random-looking (``token_like``),
    a public key, an id (a UUID, unless Heroku's: its API keys were UUIDs), or a hex digest under a
    bare "key" (a cache or sort key; not after "API", "secret", ...)."""
    if "public" in name or "publishable" in name:
        return None
    if _UUID.fullmatch(value):
        return "heroku-key" if "heroku" in name or "heroku" in said else None
    if not token_like(value):
        return None
    if name.strip("\"'") in ("key", "keys") and _HEX.fullmatch(value) and not _KEY_QUALIFIED.search(said):
        return None
    if "aws" in name or "aws" in said:
        return "aws-secret-key"
    if "accountkey" in name or "sharedaccesskey" in name:
        return "azure-key"
    return "secret"


def named_value(match: re.Match[str], text: str) -> tuple[str, int, int] | None:
    """(kind, start, end) of the value of a ``NAMED`` match that is a credential, else None."""
    group = "quoted" if match.group("quoted") is not None else "bare"
    start, end = match.span(group)
    value = match.group(group)
    if group == "bare":
        if text.startswith("(", end):
            return None  # password = make_password(...): a call
        stripped = value.rstrip(_TRAILING)
        end -= len(value) - len(stripped)
        value = stripped
    if re.match(PASSWORD_WORDS, match.group("name").lower()):
        if (
            group == "bare"
            and match.group("code")
            and _MORE_CODE.match(text, match.end())
            and not any(c.isdigit() for c in value)
        ):
            return None  # password = ConvertTo-SecureString "..." -AsPlainText: an expression
        return ("password", start, end) if password_value(value, group == "quoted") else None
    # The whole name: what precedes the keyword too (``cache_key``, ``AWS_SECRET_ACCESS_KEY``).
    prefix = _NAME_BEFORE.search(text, max(0, match.start() - 40), match.start())
    name = ((prefix.group(0) if prefix else "") + match.group("ident")).lower()
    said = text[max(0, match.start() - 40) : match.start()].lower()  # "my AWS secret access key is"
    kind = secret_kind(name, value, said)
    return (kind, start, end) if kind else None


# -- provider formats ---------------------------------------------------------------------------


def _needle(pattern: str) -> str:
    """The literal characters a pattern starts with (``ghp_`` of ``ghp_[A-Za-z0-9]{36}``)."""
    start = re.match(r"(?:[\w~:-]|\\[.:~-])*", pattern)
    return start.group(0).replace("\\", "") if start else ""


def _p(kind: str | Callable[[str], str], pattern: str, **options: object) -> Rule:
    """A provider token: ``pattern`` (starting with the fixed prefix) up to the token's right edge."""
    return Rule(kind, _rx(pattern + _R), needle=_needle(pattern), **options)  # type: ignore[arg-type]


_HEX32_BEFORE = _rx(r"(?<![\w-])[0-9a-f]{32}\Z")
RULES: tuple[Rule, ...] = (
    # LLM providers
    _p(_sk_kind, r"sk-[A-Za-z0-9][\w-]{19,}", check=_mixed),
    _p("groq-api-key", r"gsk_[A-Za-z0-9]{40,}"),
    _p("xai-api-key", r"xai-[A-Za-z0-9]{60,}"),
    _p("perplexity-api-key", r"pplx-[A-Za-z0-9]{40,}"),
    _p("replicate-token", r"r8_[A-Za-z0-9]{30,}"),
    _p("huggingface-token", r"hf_[A-Za-z0-9]{30,}"),
    _p("huggingface-token", r"api_org_[A-Za-z0-9]{30,}"),
    # Clouds
    _p("aws-access-key", r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}"),
    _p("google-api-key", r"AIza[\w-]{35}"),
    _p("google-oauth-secret", r"GOCSPX-[\w-]{24,}"),
    _p("google-oauth-token", r"ya29\.[\w-]{30,}"),
    Rule("azure-key", _rx(r"sig=([\w%+/=-]{30,})"), 1, lead=_rx(r"[?&]\Z"), edge=False, needle="sig="),  # SAS URL
    _p("azure-key", r"Q~[\w~.-]{31,34}", lead=_rx(r"(?<![\w~.])[\w~.]{3}\d\Z")),  # Entra client secret
    _p("digitalocean-token", r"do[opr]_v1_[a-f0-9]{64}"),
    _p("heroku-key", r"HRKU-[\w-]{40,}"),
    _p("databricks-token", r"dapi[a-f0-9]{32}(?:-\d)?"),
    _p("docker-token", r"dckr_(?:pat|oat)_[\w-]{20,}"),
    _p("vault-token", r"hv[sbr]\.[\w-]{24,}"),
    _p("doppler-token", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
    _p("supabase-token", r"sbp_[a-f0-9]{40}"),
    _p("pulumi-token", r"pul-[a-f0-9]{40}"),
    _p("tailscale-key", r"tskey-[a-z]+-[\w-]{20,}"),
    _p("age-secret-key", r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}"),
    # Code hosting and packages
    _p("github-token", r"gh[pousr]_[A-Za-z0-9]{36,}"),
    _p("github-token", r"github_pat_\w{50,}"),
    _p("gitlab-token", r"gl(?:pat|dt|rt|ptt|ft|imt|oas|soat|cbt|ffct|agent)-[\w-]{20,}"),
    _p("npm-token", r"npm_[A-Za-z0-9]{36}"),
    _p("pypi-token", r"pypi-Ag[\w-]{50,}"),
    # Messaging, payments, mail, other services
    _p("slack-token", r"xox[abposer]-[A-Za-z0-9-]{10,}"),
    _p("slack-token", r"xapp-\d-[A-Za-z0-9-]{10,}"),
    Rule(
        "slack-webhook",
        _rx(r"hooks\.slack\.com/(?:services|workflows|triggers)/([\w/+-]{20,})"),
        1,
        edge=False,
        needle="hooks.slack",
    ),
    Rule(
        "discord-webhook",
        _rx(r"discord(?:app)?\.com/api/webhooks/\d+/([\w-]{40,})"),
        1,
        edge=False,
        needle="/api/webhooks/",
    ),
    _p("discord-token", r"\.[\w-]{6}\.[\w-]{27,40}", lead=_rx(r"(?<![\w-])[MNO][\w-]{23,25}\Z")),
    _p("telegram-token", r":[\w-]{35}", lead=_rx(r"(?<![\w:])\d{8,10}\Z")),
    _p("stripe-key", r"sk_(?:live|test|prod)_[A-Za-z0-9]{10,}"),
    _p("stripe-key", r"rk_(?:live|test|prod)_[A-Za-z0-9]{10,}"),
    _p("stripe-key", r"whsec_[A-Za-z0-9]{24,}"),
    _p("square-token", r"EAAA[\w-]{60}"),
    _p("square-token", r"sq0(?:csp|atp)-[\w-]{22,43}"),
    _p("twilio-key", r"SK[0-9a-fA-F]{32}"),
    _p("sendgrid-key", r"SG\.[\w-]{16,32}\.[\w-]{30,50}"),
    _p("mailgun-key", r"key-[0-9a-f]{32}"),
    _p("mailgun-key", r"-[0-9a-f]{8}-[0-9a-f]{8}", lead=_HEX32_BEFORE),
    _p("mailchimp-key", r"-us\d{1,2}", lead=_HEX32_BEFORE),
    _p("shopify-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    _p("linear-key", r"lin_(?:api|oauth)_[A-Za-z0-9]{40}"),
    _p("notion-token", r"ntn_[A-Za-z0-9]{40,}"),
    _p("notion-token", r"secret_[A-Za-z0-9]{43}"),
    _p("sentry-token", r"sntry[su]_[\w+/=]{40,}"),
    _p("grafana-token", r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}"),
    _p("grafana-token", r"glc_[A-Za-z0-9+/]{32,}={0,2}"),
    _p("postman-key", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    _p("newrelic-key", r"NRAK-[A-Z0-9]{27}"),
    _p("atlassian-token", r"ATATT3[\w=-]{100,}"),
    _p("airtable-token", r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    _p("1password-token", r"ops_eyJ[\w+/]{100,}={0,3}"),
    # Formats of any provider
    Rule("jwt", _rx(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*"), check=_jwt, needle="eyJ"),
    # Authorization headers. The patterns start after the first letter, whose case varies (a literal
    # start is what makes a scan fast); ``lead`` checks that letter.
    Rule(
        "bearer-token", _rx(r"earer\s+([\w.~+/-]{16,}=*)"), 1, token_like, _rx(r"(?<![A-Za-z])[Bb]\Z"), needle="earer"
    ),
    Rule(
        "basic-auth",
        _rx(r"uthorization[\"']?\s*[:=]\s*[\"']?[Bb]asic\s+([A-Za-z0-9+/]{8,}={0,2})"),
        1,
        lead=_rx(r"(?<![A-Za-z])[Aa]\Z"),
        needle="uthorization",
    ),
    # The password of a URL with credentials (database URLs, basic auth in a URL): user, then password
    Rule(
        "password",
        _rx(
            r"://[^\s:/@?#\"'<>]*:"
            r"([^\s/@?#\"'<>]+)@[\w\[]"
        ),
        group=1,
        check=lambda value: password_value(value, quoted=False),
        edge=False,
        needle="://",
    ),
)
