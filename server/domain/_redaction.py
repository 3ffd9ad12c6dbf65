"""Credentials out of text before it is stored, embedded or shown to a model.

Detection is Yelp's ``detect-secrets`` (offline; its plugins are regular expressions plus
checks such as a JWT's base64 JSON header; verification, which would call the providers, is
never used). Two provider formats it does not know yet, Anthropic and Google API keys, are added
as plugins of its own ``RegexBasedDetector`` kind. Its high-entropy-string plugins are left out
(they flag quoted UUIDs and git SHAs), as are its public-IP plugin (an address is not a secret)
and the Artifactory one (it matches words such as ``APACHESPARK``).

``redact(text)`` returns the text with each secret replaced by ``[REDACTED:<kind>]`` and the
findings (kind and span in the given text, never the value).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

PRIVATE_KEY = "private-key"
# A private key's header is what the detector finds; the whole block goes, up to its END line
# (or the end of the text when the END line is missing: a truncated key is still a key).
_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?(?:-----END [A-Z0-9 ]*-----|\Z)", re.DOTALL)
_JWT_TAIL = re.compile(r"[A-Za-z0-9_\-.+/=]*")
_PUTTY_BLOCK = re.compile(r"PuTTY-User-Key-File-\d.*?(?:Private-MAC: \S+|\Z)", re.DOTALL)


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


def _kind_of(plugin: Any, value: str) -> str:
    name = type(plugin).__name__
    if name == "AWSKeyDetector":
        return "aws-access-key" if plugin.denylist[0].fullmatch(value) else "aws-secret-key"
    return _KINDS[name]


_KINDS = {
    "OpenAIDetector": "openai-api-key",
    "AnthropicDetector": "anthropic-api-key",
    "GoogleApiKeyDetector": "google-api-key",
    "GitHubTokenDetector": "github-token",
    "GitLabTokenDetector": "gitlab-token",
    "SlackDetector": "slack-token",
    "StripeDetector": "stripe-key",
    "SendGridDetector": "sendgrid-key",
    "TwilioKeyDetector": "twilio-key",
    "MailchimpDetector": "mailchimp-key",
    "SquareOAuthDetector": "square-oauth-secret",
    "NpmDetector": "npm-token",
    "PypiTokenDetector": "pypi-token",
    "DiscordBotTokenDetector": "discord-token",
    "TelegramBotTokenDetector": "telegram-token",
    "AzureStorageKeyDetector": "azure-storage-key",
    "IbmCloudIamDetector": "ibm-cloud-key",
    "IbmCosHmacDetector": "ibm-cloud-key",
    "CloudantDetector": "cloudant-password",
    "SoftlayerDetector": "softlayer-key",
    "JwtTokenDetector": "jwt",
    "BasicAuthDetector": "password",  # the password of scheme://user:password@host
    "KeywordDetector": "password",  # password = "...", api_key = '...' (quoted assignments)
    "PrivateKeyDetector": PRIVATE_KEY,
}


# The plugins yield a regex's groups when it has any: the secret itself for most (the password of
# a URL, the value of `password = "..."`), but only the prefix (``ghp``) for these two, whose
# tokens are therefore taken as the whole match.
_WHOLE_MATCH = {"GitHubTokenDetector", "GitLabTokenDetector"}


@lru_cache(maxsize=1)
def _plugins() -> tuple[Any, ...]:
    """The detectors, built once (importing detect-secrets costs ~0.1 s; only the first add pays)."""
    from detect_secrets.plugins import (
        aws,
        azure_storage_key,
        basic_auth,
        cloudant,
        discord,
        github_token,
        gitlab_token,
        ibm_cloud_iam,
        ibm_cos_hmac,
        jwt,
        keyword,
        mailchimp,
        npm,
        openai,
        private_key,
        pypi_token,
        sendgrid,
        slack,
        softlayer,
        square_oauth,
        stripe,
        telegram_token,
        twilio,
    )
    from detect_secrets.plugins.base import RegexBasedDetector

    class AnthropicDetector(RegexBasedDetector):
        secret_type = "Anthropic API Key"
        denylist = (re.compile(r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}"),)

    class GoogleApiKeyDetector(RegexBasedDetector):
        secret_type = "Google API Key"
        denylist = (re.compile(r"AIza[0-9A-Za-z_-]{35}"),)

    return (
        AnthropicDetector(),  # before OpenAI's: both start with sk-
        openai.OpenAIDetector(),
        GoogleApiKeyDetector(),
        aws.AWSKeyDetector(),
        github_token.GitHubTokenDetector(),
        gitlab_token.GitLabTokenDetector(),
        slack.SlackDetector(),
        stripe.StripeDetector(),
        sendgrid.SendGridDetector(),
        twilio.TwilioKeyDetector(),
        mailchimp.MailchimpDetector(),
        square_oauth.SquareOAuthDetector(),
        npm.NpmDetector(),
        pypi_token.PypiTokenDetector(),
        discord.DiscordBotTokenDetector(),
        telegram_token.TelegramBotTokenDetector(),
        azure_storage_key.AzureStorageKeyDetector(),
        ibm_cloud_iam.IbmCloudIamDetector(),
        ibm_cos_hmac.IbmCosHmacDetector(),
        cloudant.CloudantDetector(),
        softlayer.SoftlayerDetector(),
        jwt.JwtTokenDetector(),
        basic_auth.BasicAuthDetector(),
        private_key.PrivateKeyDetector(),
        keyword.KeywordDetector(),
    )


def _spans(text: str) -> list[Finding]:
    found: list[Finding] = []
    for plugin in _plugins():
        if type(plugin).__name__ in _WHOLE_MATCH:
            for regex in plugin.denylist:
                found.extend(Finding(_kind_of(plugin, ""), m.start(), m.end()) for m in regex.finditer(text))
            continue
        for value in set(plugin.analyze_string(text)):
            if not value:
                continue
            kind = _kind_of(plugin, value)
            if kind == PRIVATE_KEY:
                for block in (*_KEY_BLOCK.finditer(text), *_PUTTY_BLOCK.finditer(text)):
                    found.append(Finding(kind, block.start(), block.end()))
                continue
            for match in re.finditer(re.escape(value), text):
                end = match.end()
                if kind == "jwt":  # the detector's pattern stops before the signature (a lazy *?)
                    end = _JWT_TAIL.match(text, end).end()  # type: ignore[union-attr]
                found.append(Finding(kind, match.start(), end))
    # Overlaps (a JWT inside a URL password, a key named by two plugins): the earliest, then the
    # longest span wins and whatever it covers goes with it.
    found.sort(key=lambda f: (f.start, -f.end))
    kept: list[Finding] = []
    for finding in found:
        if kept and finding.start < kept[-1].end:
            if finding.end > kept[-1].end:
                kept[-1] = Finding(kept[-1].kind, kept[-1].start, finding.end)
            continue
        kept.append(finding)
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
