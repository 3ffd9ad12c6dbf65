"""The web app behind ``memorch ui`` (``cli/_ui.py``): a small local page to see and fix memories.

Starlette + uvicorn (the MCP server's stack), no build step: ``ui_static/`` holds one HTML page,
vanilla JS (``ui.js``; forgetting for good in ``forget.js``) and one CSS file. The JSON API under
``/api`` uses ``AsyncMemory``'s public methods plus the ledger's scope queries (read-only):

- ``GET /api/scopes``: the user_ids that hold memories, or deleted ones only (with both counts),
  and the default user
- ``GET /api/summary?user_id=``: that user's counts (memories, deleted, changes, relations), whether the
  graph is on and which LLM is configured (the page's header)
- ``GET /api/deleted?user_id=&limit=``: that user's deleted memories (last text, when), newest
  deletion first, to find and restore (or forget) them
- ``GET /api/search?q=&user_id=&threshold=&limit=``: results with scores and ``explain`` detail
- ``GET /api/memories?user_id=&filters=<json>&limit=``: ``get_all``
- ``GET|PUT|DELETE /api/memories/{id}``: ``get`` / ``update`` (body ``{"text", "metadata"?}``) / ``delete``
- ``GET /api/memories/{id}/history``: every change, oldest first
- ``POST /api/memories/{id}/restore`` ``{"event_id"}``: the version before that event back
- ``POST /api/memories/{id}/forget``: ``delete(purge=True)``, the text and history gone for good
- ``POST /api/forget`` ``{"user_id", "confirm": true}``: ``delete_all(purge=True)`` for that user
- ``GET /api/graph?entity=&user_id=&hops=``: relations around an entity
- ``GET /api/stats``: the whole store's counts
- ``GET /favicon.ico``: the page's icon (also inline in the HTML)

The summary and the deleted list are one ledger query each (``scope_counts``, ``deleted``), not
a walk over every history.

Failures answer JSON ``{error_code, message, details, suggestion}`` (``MemoryError.to_dict()``),
the operations a suggestion names in the page's words (``PAGE_WORDS``).

Access: loopback only by default (a non-loopback ``--host`` needs ``MEMORCH_AUTH_TOKEN``). With a
token every request needs ``Authorization: Bearer <token>`` or the HttpOnly cookie that opening
``/?token=<token>`` once sets (the page without it is a 401 form asking for the token), except
the icon and the stylesheet, which the form uses too. The
``Host`` header must name the bind address or a loopback name (DNS rebinding), and a request that
changes something must come from the page's own origin.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from memorch.config import MemoryConfig
from memorch.domain import _validation as validation
from memorch.errors import MemoryError, MemoryNotFoundError, ValidationError
from memorch.serve._http_edge import LOOPBACK_NAMES, _unspecified, is_loopback

STATIC = Path(__file__).parent / "ui_static"
COOKIE = "memorch_ui_token"
PUBLIC = frozenset({"/favicon.ico", "/static/ui.css"})  # no data in them: the token form shows them too
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#24364b"/>'
    '<path d="M7 24V9l9 9 9-9v15" fill="none" stroke="#f0c05a" stroke-width="3.5" stroke-linejoin="round"/></svg>'
)

Handler = Callable[[Request], Awaitable[Any]]
# An operation a suggestion names → where the page does it (or the command, where it does not).
# An empty box on the page: what to do there ("pass ... in 'query'" named the API's argument).
PAGE_FIELDS = {
    "query": "type what to look for in the Search box",
    "text": "type the memory's new text, or press Delete to remove the memory",
    "entity": "type a person, place or thing in the Graph box",
}
PAGE_WORDS = {
    "add_memory": "`memorch add`",
    "search_memories": "Search",
    "list_memories": "the List",
    "get_memory": "the List",
    "update_memory": "Edit",
    "delete_memory": "Delete",
    "memory_history": "its History",
    "restore_memory": "Restore (in Deleted)",
    "delete_all_memories": "`memorch delete-all`",
}


def _status(exc: MemoryError) -> int:
    if isinstance(exc, MemoryNotFoundError):
        return 404
    if isinstance(exc, ValidationError):
        return 400
    return 409 if exc.error_code == "GRAPH_OFF" else 500


async def _json_body(request: Request, example: str) -> dict[str, Any]:
    """The request's JSON object body (empty: ``{}``), or a ``_bad`` error showing ``example``."""
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise _bad(f"the body is not valid JSON: {exc}", example) from exc
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", example)
    return body


def _bad(message: str, suggestion: str, code: str = "INVALID_REQUEST") -> MemoryError:
    return ValidationError(message, error_code=code, suggestion=suggestion)


def _json_param(request: Request, name: str) -> Any:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _bad(f"{name} is not valid JSON: {exc}", 'write a JSON object, e.g. {"category": "health"}') from exc


def _most_first(user_count: tuple[str, int]) -> tuple[int, str]:
    return -user_count[1], user_count[0]


def _number(request: Request, name: str, default: Any, kind: type = int) -> Any:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise _bad(f"{name} must be a number, not {raw!r}", f"give {name} as a number") from exc


class UiApi:
    """The JSON endpoints over one ``AsyncMemory`` (opened by the app's lifespan)."""

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self.memory: Any = None

    def user(self, request: Request) -> str:
        return request.query_params.get("user_id") or self.config.user_id

    def scope(self, request: Request) -> Any:
        """The selected user's scope, as ``get_all`` sees it (the configured project's layer too)."""
        args = {"user_id": self.user(request)}
        return validation.scope(args, required=True, default_project=self.config.project)

    async def scopes(self, request: Request) -> Any:
        """The users that hold memories (most first), then those whose memories were all deleted
        (restorable: a user wiped by delete_all is who the Deleted view is for), with both counts."""
        rows = await self.memory.users()
        deleted = await self.memory.engine.read(self.memory.engine.components.ledger.deleted_by_user)
        scopes = [{**row, "deleted": deleted.pop(row["user_id"], 0)} for row in rows]
        scopes += [{"user_id": u, "memories": 0, "deleted": n} for u, n in sorted(deleted.items(), key=_most_first)]
        return {"default_user_id": self.config.user_id, "scopes": scopes, "graph": self.config.graph_enabled}

    async def summary(self, request: Request) -> Any:
        """The user's counts, one ledger round trip: memories, deleted, changes, relations."""
        scope, ledger = self.scope(request), self.memory.engine.components.ledger
        return {
            **await self.memory.engine.read(ledger.scope_counts, scope),
            "user_id": self.user(request),
            "graph": self.config.graph_enabled,
            "llm_model": self.config.llm_model or None,
        }

    async def deleted(self, request: Request) -> Any:
        """The user's deleted memories (not purged), newest deletion first, in one ledger query."""
        limit = validation.limit(_number(request, "limit", 100))
        scope, ledger = self.scope(request), self.memory.engine.components.ledger
        return {"results": await self.memory.engine.read(ledger.deleted, scope, limit)}

    async def search(self, request: Request) -> Any:
        threshold = _number(request, "threshold", None, float)
        return await self.memory.search(
            request.query_params.get("q", ""),
            user_id=self.user(request),
            limit=_number(request, "limit", 10),
            filters=_json_param(request, "filters"),
            threshold=threshold,
            explain=True,
        )

    async def memories(self, request: Request) -> Any:
        return await self.memory.get_all(
            user_id=self.user(request),
            filters=_json_param(request, "filters"),
            limit=_number(request, "limit", 100),
            cursor=request.query_params.get("cursor") or None,  # the next page: the last answer's next_cursor
        )

    async def one(self, request: Request) -> Any:
        memory_id = request.path_params["memory_id"]
        if request.method == "DELETE":
            return await self.memory.delete(memory_id)
        if request.method == "PUT":
            body = await _json_body(request, 'send {"text": "..."}')
            return await self.memory.update(memory_id, body.get("text", ""), metadata=body.get("metadata"))
        return await self.memory.get(memory_id)

    async def forget(self, request: Request) -> Any:
        """Purge one memory (also a deleted one): its text and history are gone for good."""
        return await self.memory.delete(request.path_params["memory_id"], purge=True)

    async def forget_user(self, request: Request) -> Any:
        """Purge every memory of the user named in the body, and the history of those deleted
        before; the body must also say ``"confirm": true``."""
        body = await _json_body(request, 'send {"user_id": "...", "confirm": true}')
        user = body.get("user_id")
        if not isinstance(user, str) or not user or body.get("confirm") is not True:
            raise _bad(
                "forgetting a whole user needs its user_id and confirm: true in the body",
                'send {"user_id": "...", "confirm": true}',
                "CONFIRMATION_REQUIRED",
            )
        # Every layer, whatever the server's project: forgetting a user leaves no project's copy.
        return await self.memory.delete_all(purge=True, user_id=user)

    async def history(self, request: Request) -> Any:
        return await self.memory.history(request.path_params["memory_id"])

    async def restore(self, request: Request) -> Any:
        body = await _json_body(request, 'send {"event_id": "..."}')
        return await self.memory.restore(request.path_params["memory_id"], body.get("event_id"))

    async def graph(self, request: Request) -> Any:
        return await self.memory.graph(
            request.query_params.get("entity", ""), user_id=self.user(request), hops=_number(request, "hops", 2)
        )

    async def stats(self, request: Request) -> Any:
        return await self.memory.stats()


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request))
        except MemoryError as exc:
            body = exc.to_dict(PAGE_WORDS)
            if exc.error_code == "EMPTY_TEXT" and exc.details.get("field") in PAGE_FIELDS:
                body["suggestion"] = PAGE_FIELDS[exc.details["field"]]
            return JSONResponse(body, status_code=_status(exc))

    return endpoint


def _login_page(status: int = 401, wrong: bool = False) -> HTMLResponse:
    page = (STATIC / "login.html").read_text(encoding="utf-8")
    if wrong:  # a token was given and is not MEMORCH_AUTH_TOKEN: say so, not just ask again
        page = page.replace("<!--wrong-->", '<p class="wrong">That token is not the one in MEMORCH_AUTH_TOKEN.</p>')
    return HTMLResponse(page, status_code=status)


class Guard:
    """Host check, same-origin check for changes, and the token (header, cookie or ``?token=`` once)."""

    def __init__(self, app: Any, host: str, token: str | None) -> None:
        self.app, self.token = app, token
        self.hosts = {name.strip("[]").lower() for name in (*LOOPBACK_NAMES, host)}
        self.any_host = _unspecified(host)  # 0.0.0.0 / :: (a token is required then): any name reaches it

    def _host_ok(self, value: str | None) -> bool:
        if not value:
            return False
        name = urlsplit(f"//{value}").hostname or ""
        return self.any_host or name in self.hosts or is_loopback(name)

    def _token_ok(self, request: Request) -> bool:
        assert self.token is not None
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = self.refusal(request)
        send = _unframed(send)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def refusal(self, request: Request) -> Response | None:
        if not self._host_ok(request.headers.get("host")):
            body = _refused("HOST_NOT_ALLOWED", "this Host name is not served", HOST_HINT)
            return JSONResponse(body, status_code=421)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and not self._host_ok(urlsplit(origin).netloc):
            body = _refused("ORIGIN_NOT_ALLOWED", "changes come only from the page", ORIGIN_HINT)
            return JSONResponse(body, status_code=403)
        if self.token is None or request.url.path in PUBLIC or self._token_ok(request):
            return None
        given = request.query_params.get("token")
        if given is not None and request.method == "GET":
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return _login_page(wrong=True)
            response = RedirectResponse(request.url.path, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return response
        if request.url.path.startswith("/api/"):
            where = request.headers.get("host", "127.0.0.1:PORT")
            suggestion = (
                f"open the page at http://{where}/?token=<MEMORCH_AUTH_TOKEN>, or send Authorization: Bearer <token>"
            )
            body = _refused("UNAUTHORIZED", "this page needs the token in MEMORCH_AUTH_TOKEN", suggestion)
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return _login_page()


# Where a refused Host or Origin should have come from (a token has nothing to do with them).
HOST_HINT = "open the page at the address `memorch ui` printed (its --host and --port); other names are refused"
ORIGIN_HINT = "make changes on the page itself, opened at the address `memorch ui` printed"


def _refused(code: str, message: str, suggestion: str) -> dict[str, Any]:
    return {"error_code": code, "message": message, "details": {}, "suggestion": suggestion}


def _unknown_endpoint(routes: list[Route]) -> Handler:
    """What answers an /api request no route takes: JSON in the one error form, as every answer
    of the API; 405 for a path that exists with other methods (the catch-all took it)."""

    async def unknown(request: Request) -> Response:
        allowed = sorted({m for r in routes if r.matches(request.scope)[0] == Match.PARTIAL for m in (r.methods or ())})
        if allowed:
            message, code, status = f"{request.url.path} takes {', '.join(allowed)}", "METHOD_NOT_ALLOWED", 405
        else:
            message, code, status = f"no {request.method} {request.url.path} here", "UNKNOWN_ENDPOINT", 404
        hint = "the endpoints are listed in `memorch.serve._ui_api`'s docstring; the page itself is at /"
        return JSONResponse(_refused(code, message, hint), status_code=status)

    return unknown


# No other site may show the page in a frame of its own (clickjacking: Save and Restore ask for
# no confirmation).
NO_FRAMES = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]


def _unframed(send: Any) -> Any:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *NO_FRAMES]}
        await send(message)

    return sending


def build_app(config: MemoryConfig, host: str = "127.0.0.1") -> Any:
    """The UI's ASGI app: page, static files and JSON API behind ``Guard``."""
    api = UiApi(config)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        from memorch.api._async_memory import AsyncMemory

        api.memory = AsyncMemory(config)
        try:
            yield
        finally:
            await api.memory.close()

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def favicon(_: Request) -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/api/scopes", _endpoint(api.scopes)),
        Route("/api/summary", _endpoint(api.summary)),
        Route("/api/deleted", _endpoint(api.deleted)),
        Route("/api/search", _endpoint(api.search)),
        Route("/api/memories", _endpoint(api.memories)),
        Route("/api/memories/{memory_id}", _endpoint(api.one), methods=["GET", "PUT", "DELETE"]),
        Route("/api/memories/{memory_id}/history", _endpoint(api.history)),
        Route("/api/memories/{memory_id}/restore", _endpoint(api.restore), methods=["POST"]),
        Route("/api/memories/{memory_id}/forget", _endpoint(api.forget), methods=["POST"]),
        Route("/api/forget", _endpoint(api.forget_user), methods=["POST"]),
        Route("/api/graph", _endpoint(api.graph)),
        Route("/api/stats", _endpoint(api.stats)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    every = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    routes.insert(-1, Route("/api/{rest:path}", _unknown_endpoint(routes[:-1]), methods=every))
    return Guard(Starlette(routes=routes, lifespan=lifespan), host, config.auth_token)
