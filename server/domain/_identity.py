"""Whom an HTTP caller speaks for, and the binding of each tool call to it.

A bearer token of the tokens file (``serve._identities``) carries an identity claim: one user,
and optionally only some agents or projects. ``tools._common`` reads the current request's claim
(``caller_identity``) and binds every tool call to it (``Identity.bind``) before the tool runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memorch.errors import PermissionDeniedError

IDENTITY_CLAIM = "memorch_identity"
LIMITED_ARGUMENTS = ("agent_id", "project")


@dataclass(frozen=True)
class Identity:
    """Whom a bound caller speaks for: one user, and optionally only some agents / projects."""

    name: str
    user_id: str
    limits: dict[str, tuple[str, ...]]  # argument name → allowed values; empty = any

    def bind(self, tool: str, arguments: dict[str, Any], parameters: set[str]) -> dict[str, Any]:
        """``arguments`` with this identity's scope filled in; a ``PermissionDeniedError`` for a
        scope outside it. A tool without a ``user_id`` argument cannot be bound, so it is refused."""
        if "user_id" not in parameters:
            raise PermissionDeniedError(
                f"{tool} is not available to a caller bound to user {self.user_id!r}",
                details={"tool": tool},
                suggestion="use the tools that act on your own memories (search_memories, list_memories, ...)",
            )
        bound = dict(arguments)
        given = bound.get("user_id")
        if given is not None and given != self.user_id:
            raise PermissionDeniedError(
                f"this token acts for user {self.user_id!r} only; user_id {str(given)[:80]!r} is refused",
                details={"argument": "user_id", "allowed": [self.user_id]},
                suggestion=f"omit user_id and call {tool} again: your own user is always used",
            )
        bound["user_id"] = self.user_id
        for argument, allowed in self.limits.items():
            if allowed and argument in parameters:
                bound[argument] = self._allowed(tool, argument, bound.get(argument), allowed)
        return bound

    @staticmethod
    def _allowed(tool: str, argument: str, given: Any, allowed: tuple[str, ...]) -> str:
        if given is None and len(allowed) == 1:
            return allowed[0]
        if given is not None and given in allowed:
            return given
        problem = f"{argument} is required" if given is None else f"{argument} {str(given)[:80]!r} is refused"
        choices = ", ".join(repr(value) for value in allowed)
        raise PermissionDeniedError(
            f"this token is limited to {argument} {', '.join(allowed)}: {problem}",
            details={"argument": argument, "allowed": list(allowed)},
            suggestion=f"pass {argument} as one of {choices} and call {tool} again",
        )


def caller_identity() -> Identity | None:
    """The identity of the HTTP caller of the current request; None when unbound (stdio, the
    ``MEMORCH_AUTH_TOKEN`` admin token, in-process clients)."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    claim = (token.claims or {}).get(IDENTITY_CLAIM) if token is not None else None
    if not claim:
        return None
    limits = {argument: tuple(claim.get(argument) or ()) for argument in LIMITED_ARGUMENTS}
    return Identity(claim["name"], claim["user_id"], limits)
