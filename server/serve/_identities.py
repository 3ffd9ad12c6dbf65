"""Per-caller identities on the HTTP transports: bearer tokens bound to a user (and optionally to
agents and projects), kept hashed in a tokens file.

The tokens file (``MEMORCH_TOKENS_FILE``, written by ``memorch token add|revoke``) is JSON::

    {"version": 1, "tokens": [{"name": "alice-laptop", "user_id": "alice", "agent_id": ["bot"],
      "project": [], "prefix": "memorch_AbC123", "sha256": "<hex>", "created_at": "..."}]}

Only the SHA-256 of each token is stored (a token is 256 random bits, so a plain hash is enough;
nothing to salt or stretch) plus a short prefix to recognise it by; the file is written
atomically with mode 0600. The server re-reads it when its size, mtime or inode changes, so a
revocation takes effect on the caller's next request without a restart.

Authentication uses the MCP SDK's own hooks: ``TokenVerifier`` checks the bearer token, the SDK's
middleware answers 401 and puts the ``AccessToken`` in the request context, and
``tools._common.MemorchServer.call_tool`` reads it (``caller_identity``) to bind every tool call
to the token's scope (``Identity.bind``). ``MEMORCH_AUTH_TOKEN`` stays the simple case: one
token, not bound to any user (an admin token, also accepted next to a tokens file).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memorch._atomic import replace_file
from memorch.domain._identity import IDENTITY_CLAIM, LIMITED_ARGUMENTS, Identity
from memorch.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken

    from memorch.config import MemoryConfig

log = logging.getLogger("memorch.identities")
TOKEN_PREFIX = "memorch_"
SHOWN_CHARS = 6  # random characters of a token kept in clear, to tell tokens apart in `token list`
FILE_VERSION = 1
# Tool arguments a token may restrict, besides user_id: argument name → record field.


# --- records and the file ----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    """One line of the tokens file: who a token speaks for; the token itself is only hashed."""

    name: str
    user_id: str
    sha256: str
    prefix: str
    created_at: str
    agent_id: tuple[str, ...] = ()
    project: tuple[str, ...] = ()

    def identity(self) -> Identity:
        return Identity(self.name, self.user_id, {"agent_id": self.agent_id, "project": self.project})

    def public(self) -> dict[str, Any]:
        """What ``memorch token list`` may show: everything but the hash."""
        data = asdict(self)
        data.pop("sha256")
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _invalid_file(path: Path, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"the tokens file {path} (MEMORCH_TOKENS_FILE) {problem}",
        error_code="TOKENS_FILE_INVALID",
        details={"variable": "MEMORCH_TOKENS_FILE", "path": str(path)},
        suggestion="fix or remove the file, then add tokens with `memorch token add USER`",
    )


def _record(path: Path, item: Any) -> TokenRecord:
    if not isinstance(item, dict):
        raise _invalid_file(path, "holds an entry that is not an object")
    try:
        lists = {key: tuple(str(v) for v in item.get(key) or ()) for key in LIMITED_ARGUMENTS}
        fields = {key: str(item[key]) for key in ("name", "user_id", "sha256", "prefix", "created_at")}
    except (KeyError, TypeError) as exc:
        raise _invalid_file(path, f"holds an entry without {exc}") from None
    return TokenRecord(**fields, **lists)


def read_tokens(path: Path) -> list[TokenRecord]:
    """The records of a tokens file; a missing file has none; an unreadable one is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _invalid_file(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise _invalid_file(path, "is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise _invalid_file(path, 'is not {"version": 1, "tokens": [...]}')
    return [_record(path, item) for item in data["tokens"]]


def write_tokens(path: Path, records: list[TokenRecord]) -> None:
    """Replace the file atomically (a reader sees the old or the new file, never half of one), 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"version": FILE_VERSION, "tokens": [{**asdict(r)} for r in records]}
    replace_file(path, json.dumps(body, indent=2), mode=0o600)


def _locked(path: Path) -> Any:
    """A lock around read-modify-write, so two `memorch token add` at once both land."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=30)


def add_token(
    path: Path, user_id: str, agents: list[str], projects: list[str], name: str | None = None
) -> tuple[TokenRecord, str]:
    """A new token for ``user_id``, recorded (hashed) in ``path``; the token is returned once."""
    user_id = _non_empty(user_id, "USER")
    agents = [_non_empty(a, "--agent") for a in agents]
    projects = [_non_empty(p, "--project") for p in projects]
    token = new_token()
    with _locked(path):
        records = read_tokens(path)
        names = {r.name for r in records}
        if name is not None and _non_empty(name, "--name") in names:
            raise ValidationError(
                f"a token named {name!r} exists already",
                error_code="TOKEN_NAME_TAKEN",
                suggestion="choose another --name, or revoke the old token with `memorch token revoke NAME`",
            )
        record = TokenRecord(
            name=name or _free_name(user_id, names),
            user_id=user_id,
            sha256=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + SHOWN_CHARS],
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            agent_id=tuple(dict.fromkeys(agents)),
            project=tuple(dict.fromkeys(projects)),
        )
        write_tokens(path, [*records, record])
    return record, token


def revoke_token(path: Path, which: str) -> TokenRecord:
    """Remove the token named ``which``, or whose prefix (or whole token) ``which`` is."""
    which = which.strip().removesuffix("…").removesuffix("...")  # the prefix as `token list` shows it
    with _locked(path):
        records = read_tokens(path)
        found = [r for r in records if r.name == which] or [
            r for r in records if r.prefix == which or hmac.compare_digest(r.sha256, hash_token(which))
        ]
        if len(found) != 1:
            problem = "matches no token" if not found else f"matches {len(found)} tokens"
            raise ValidationError(
                f"{which!r} {problem} in {path}",
                error_code="TOKEN_NOT_FOUND" if not found else "TOKEN_AMBIGUOUS",
                details={"tokens": [r.name for r in found]},
                suggestion="run `memorch token list` and pass a NAME or PREFIX exactly as it shows",
            )
        write_tokens(path, [r for r in records if r is not found[0]])
    return found[0]


def _free_name(user_id: str, taken: set[str]) -> str:
    candidate, n = user_id, 1
    while candidate in taken:
        n += 1
        candidate = f"{user_id}-{n}"
    return candidate


def _non_empty(value: str, option: str) -> str:
    value = value.strip()
    if not value:
        raise ValidationError(
            f"{option} is empty", error_code="INVALID_ARGUMENT", suggestion=f"give {option} a non-empty value"
        )
    return value


# --- the verifier the SDK calls on every HTTP request ------------------------------------------


@dataclass
class TokenFile:
    """The tokens file, re-read whenever it changes on disk (a cheap ``stat`` per request)."""

    path: Path
    _signature: tuple[int, int, int] | None = field(default=None, init=False)
    _records: list[TokenRecord] = field(default_factory=list, init=False)

    def records(self) -> list[TokenRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._signature, self._records = None, []  # deleting the file revokes every token
            return []
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature != self._signature:
            try:
                self._records = read_tokens(self.path)
            except ConfigurationError as exc:
                # Fail closed: a broken file must not keep a revoked token alive.
                log.error("%s; refusing every token of the file until it is fixed", exc)
                self._records = []
            self._signature = signature
        return self._records

    def find(self, token: str) -> TokenRecord | None:
        digest = hash_token(token)
        match = None
        for record in self.records():  # every record compared, in constant time
            if hmac.compare_digest(record.sha256, digest):
                match = record
        return match


class MemorchTokenVerifier:
    """The SDK's ``TokenVerifier``: ``MEMORCH_AUTH_TOKEN`` (unbound) or a token of the tokens file."""

    def __init__(self, admin_token: str | None, tokens_file: Path | None) -> None:
        self.admin = admin_token.encode() if admin_token else None
        self.file = TokenFile(tokens_file) if tokens_file else None

    async def verify_token(self, token: str) -> AccessToken | None:
        from mcp.server.auth.provider import AccessToken

        token = token.strip()  # the SDK passes what follows "Bearer ", extra spaces included
        if not token:
            return None
        if self.admin is not None and hmac.compare_digest(token.encode(), self.admin):
            return AccessToken(token="admin", client_id="memorch-admin", scopes=[])
        record = self.file.find(token) if self.file else None
        if record is None:
            return None
        limits = {argument: list(values) for argument, values in record.identity().limits.items()}
        claims = {IDENTITY_CLAIM: {"name": record.name, "user_id": record.user_id, **limits}}
        return AccessToken(
            token=record.prefix, client_id=f"token:{record.name}", subject=record.user_id, scopes=[], claims=claims
        )


def auth_options(config: MemoryConfig) -> dict[str, Any]:
    """``MCPServer`` arguments that turn the SDK's bearer authentication on, or none without tokens.

    No OAuth is offered: with no ``resource_server_url`` and no authorization-server provider the
    SDK adds no ``/.well-known`` route; ``issuer_url`` is required by ``AuthSettings`` but unused.
    """
    tokens_file = config.tokens_in_use
    if not config.auth_token and not tokens_file:
        return {}
    from mcp.server.auth.settings import AuthSettings

    settings = AuthSettings(issuer_url="http://127.0.0.1", resource_server_url=None)  # type: ignore[arg-type]
    return {"auth": settings, "token_verifier": MemorchTokenVerifier(config.auth_token, tokens_file)}


def check_tokens_file(config: MemoryConfig) -> int | None:
    """Before an HTTP server starts: the number of tokens in the file (None without one), or an
    error for a MEMORCH_TOKENS_FILE that does not exist (the default file is used only if it does)."""
    path = config.tokens_in_use
    if path is None:
        return None
    if not path.exists():
        raise ConfigurationError(
            f"the tokens file {path} (MEMORCH_TOKENS_FILE) does not exist",
            error_code="TOKENS_FILE_MISSING",
            details={"variable": "MEMORCH_TOKENS_FILE", "path": str(path)},
            suggestion="create it with `memorch token add USER`, or unset MEMORCH_TOKENS_FILE",
        )
    return len(read_tokens(path))
