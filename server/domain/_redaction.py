"""Credentials out of text before it is stored, embedded or shown to a model.

Detection is memorch's own set of regular expressions (``_secret_patterns``): the providers'
documented token formats (OpenAI, Anthropic, AWS, GitHub, Slack, Stripe, ... ~50 of them),
private key blocks, JWTs, passwords in URLs, and values given a credential's name
(``password = ...``, ``"api_key": ...``, "my password is ..."). All offline; nothing is verified
with a provider. A rule runs only on a text holding its fixed start (``ghp_``, ``sk-``, ``://``),
and a credential's name is looked for only where one of its words is (``pass``, ``key``, ...).

``redact(text)`` returns the text with each secret replaced by ``[REDACTED:<kind>]`` and the
findings (kind and span in the given text, never the value). ``redact_metadata(value)`` does the
same over a metadata object's strings (and a string given a credential's name is one).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from memorch.domain._secret_patterns import (
    NAME,
    NAMED,
    PASSWORD_WORDS,
    RULES,
    TOKEN_CHARS,
    Rule,
    named_value,
    password_value,
    secret_kind,
)

PRIVATE_KEY = "private-key"
# A private key block goes whole, from its BEGIN line to its END line (or to the end of the text
# when the END line is missing: a truncated key is still a key). JSON's "\n" escapes included.
_KEY_BLOCKS = (
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?(?:-----END [A-Z0-9 ]*-----|\Z)", re.DOTALL),
    re.compile(r"PuTTY-User-Key-File-\d.*?(?:Private-MAC: \S+|\Z)", re.DOTALL),
)
# Where a credential's name may start (lower case): ``NAMED`` is tried at each place these are.
_NAME_STARTS = ("pass", "pwd", "key", "secret", "token", "credential", "apikey")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int  # offsets in the text given to ``redact``
    end: int

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Redacted:
    text: str
    findings: list[Finding] = field(default_factory=list)


def summarize(findings: list[Finding]) -> list[Any]:
    """``[{"kind", "count"}]``, what the add result and ``_memorch.redacted`` say."""
    counts = Counter(f.kind for f in findings)
    return [{"kind": kind, "count": n} for kind, n in sorted(counts.items())]


def _lower(text: str) -> str:
    """``text`` in lower case, offsets unchanged (``str.lower`` lengthens a few characters: İ)."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)


def _rule_spans(rule: Rule, text: str) -> Iterator[tuple[str, int, int]]:
    for match in rule.regex.finditer(text):
        start, end = match.span(rule.group)
        if rule.lead is not None:
            lead = rule.lead.search(text, max(0, match.start() - 64), match.start())
            if lead is None:
                continue
            start = lead.start() if rule.group == 0 else start
        elif rule.edge and start and text[start - 1] in TOKEN_CHARS:
            continue  # inside a longer token (a base64 blob, a hex run)
        value = text[start:end]
        if rule.check is None or rule.check(value):
            yield (rule.kind if isinstance(rule.kind, str) else rule.kind(value)), start, end


def _named_spans(text: str, low: str) -> Iterator[tuple[str, int, int]]:
    for word in _NAME_STARTS:
        at = low.find(word)
        while at != -1:
            match = NAMED.match(text, at)
            if match is not None and (named := named_value(match, text)) is not None:
                yield named
            at = low.find(word, at + 1)


def _spans(text: str) -> list[Finding]:
    low = _lower(text)
    # (start, -end, rank, kind): on the same span a provider's format names it before a name does.
    found: list[tuple[int, int, int, str]] = []
    for rule in RULES:
        if rule.needle in text:
            found.extend((start, -end, 0, kind) for kind, start, end in _rule_spans(rule, text))
    for block in _KEY_BLOCKS:
        found.extend((m.start(), -m.end(), 0, PRIVATE_KEY) for m in block.finditer(text))
    found.extend((start, -end, 1, kind) for kind, start, end in _named_spans(text, low))
    # Overlaps (a JWT inside a URL password, a key under a name): the earliest, then the longest
    # span wins and whatever it covers goes with it.
    found.sort()
    kept: list[Finding] = []
    for start, neg_end, _, kind in found:
        end = -neg_end
        if kept and start < kept[-1].end:
            if end > kept[-1].end:
                kept[-1] = Finding(kept[-1].kind, kept[-1].start, end)
            continue
        kept.append(Finding(kind, start, end))
    return kept


def redact(text: str) -> Redacted:
    """``text`` with every credential replaced by ``[REDACTED:<kind>]``."""
    findings = _spans(text)
    if not findings:
        return Redacted(text)
    parts, last = [], 0
    for finding in findings:
        parts.append(text[last : finding.start])
        parts.append(f"[REDACTED:{finding.kind}]")
        last = finding.end
    parts.append(text[last:])
    return Redacted("".join(parts), findings)


_NAME_IN_KEY = re.compile(NAME)


def _named_field(name: str, value: str) -> str | None:
    """The kind of credential a metadata string is by its key's name (``{"db_password": ...}``,
    ``{"openai_api_key": ...}``), or None. A value given a name is treated as quoted."""
    keyword = _NAME_IN_KEY.search(name)
    if keyword is None:
        return None
    if re.match(PASSWORD_WORDS, keyword.group(0).lower()):
        return "password" if password_value(value, quoted=True) else None
    return secret_kind(name.lower(), value)


def redact_metadata(value: Any, name: str = "") -> tuple[Any, list[Finding]]:
    """``value`` (a metadata object: dicts, lists, strings, numbers) with every string redacted,
    and the findings (their offsets are in the string each was found in). A string under a
    credential's name goes whole. ``value`` itself is not changed."""
    if isinstance(value, str):
        # A value with spaces is prose ({"password_hint": "my dog's name"}): the text rules decide.
        kind = _named_field(name, value) if name and not any(c.isspace() for c in value) else None
        if kind is not None:
            return f"[REDACTED:{kind}]", [Finding(kind, 0, len(value))]
        done = redact(value)
        return done.text, done.findings
    findings: list[Finding] = []
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            out[key], more = redact_metadata(item, key if isinstance(key, str) else "")
            findings.extend(more)
        return out, findings
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            new, more = redact_metadata(item, name)
            items.append(new)
            findings.extend(more)
        return type(value)(items), findings
    return value, findings
