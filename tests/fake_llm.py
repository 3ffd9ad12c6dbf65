"""A small OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

It speaks ``POST /chat/completions`` and ``POST /embeddings`` (with or without ``/v1``), so
LiteLLM reaches it through its real HTTP path (``openai/<name>`` + ``api_base``). Replies are
scripted per request; failures can be injected; every request is logged.

    fake = FakeLLM().start()
    fake.push({"memory": [{"event": "ADD", "text": "..."}]})   # JSON reply
    fake.push("```json\\n{...}\\n```")                           # raw text reply
    fake.push(Failure(500))                                     # HTTP error
    fake.push(Failure(429, headers={"Retry-After": "1"}))
    fake.push(Delay(3.0, {...}))                                # slow reply (timeouts)
    fake.responder = lambda request: {...}                      # when the queue is empty

Structured output (issue 26): ``FakeLLM(route=...)`` imitates what one kind of server says about
itself (``GET /v1/models``, ``/props``, ``/version``, ``/api/version``, ``/openapi.json``) and
which form of structured output it accepts and enforces:

- ``"openai"`` (default): an unnamed OpenAI-compatible server enforcing ``response_format``
  ``json_schema``;
- ``"llama-cpp-python"``: refuses ``json_schema`` with HTTP 500 "Input should be 'text' or
  'json_object'", as llama-cpp-python's server does, and enforces its ``{"type": "json_object",
  "schema": ...}`` extension;
- ``"llama-server"``: llama.cpp's server (``owned_by: llamacpp``, ``/props`` with ``n_ctx``),
  enforcing ``json_schema``;
- ``"vllm"``: enforces ``guided_json``; accepts ``json_schema`` without enforcing it;
- ``"ollama"``: the native ``/api/chat`` route, enforcing ``format`` = schema; with
  ``think_refused`` it refuses ``think`` with HTTP 400 (a model without thinking);
- ``"unenforced"``: accepts every form and enforces none.

Only memorch's probe (its schema titled ``memorch_probe``) is answered by the route's rules, from
the schema when the form is enforced and as an unconstrained model would otherwise; probes are
logged in ``probes``, apart from ``requests``, and never consume scripted replies. A refusal
applies to every request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Failure:
    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"error": {"message": "injected failure", "type": "x"}})
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delay:
    seconds: float
    reply: Any


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    model: str | None
    authorization: str | None = None  # the Authorization header, as sent

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


ROUTES = ("openai", "llama-cpp-python", "llama-server", "vllm", "ollama", "unenforced")
PROBE_TITLE = "memorch_probe"


class FakeLLM:
    def __init__(self, route: str = "openai", context: int = 32768, think_refused: bool = False) -> None:
        assert route in ROUTES, route
        self.route = route
        self.context = context  # reported by llama-server's /props and vLLM's /v1/models
        self.think_refused = think_refused
        self.queue: deque[Any] = deque()
        self.requests: list[Request] = []
        self.probes: list[Request] = []
        self.identity_gets: list[str] = []
        self.responder: Callable[[Request], Any] | None = None
        self.fail_models: dict[str, Failure] = {}  # model name -> failure for every request
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- scripting ---------------------------------------------------------------------------
    def push(self, *replies: Any) -> FakeLLM:
        with self._lock:
            self.queue.extend(replies)
        return self

    def chat_requests(self, model: str | None = None) -> list[Request]:
        chats = ("chat/completions", "/api/chat", "/v1/messages")  # OpenAI's route, Ollama's, Anthropic's
        return [r for r in self.requests if r.path.endswith(chats) and (model is None or r.model == model)]

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- server ------------------------------------------------------------------------------
    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with fake._lock:
                    fake.identity_gets.append(self.path)
                found = _identity(fake, self.path)
                if found is None:
                    fake._send(self, 404, {"detail": "Not Found"})
                else:
                    fake._send(self, 200, found[0], found[1])

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                request = Request(self.path, body, body.get("model"), self.headers.get("Authorization"))
                if self.path.endswith("/api/show"):  # LiteLLM asks Ollama about the model: not a chat
                    with fake._lock:
                        fake.identity_gets.append(self.path)
                    fake._send(self, 200, _ollama_show(fake))
                    return
                refusal = _refusal(fake, request) or fake.fail_models.get(request.model or "")
                with fake._lock:
                    (fake.probes if _probe_schema(request) is not None else fake.requests).append(request)
                if refusal is not None:
                    fake._send(self, refusal.status, refusal.body)
                elif _probe_schema(request) is not None:
                    fake._reply(self, request, _probe_reply(fake, request))
                else:
                    fake._answer(self, request)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _next(self, request: Request) -> Any:
        if request.model in self.fail_models:
            return self.fail_models[request.model]
        with self._lock:
            if self.queue:
                return self.queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return {"memory": []}

    def _answer(self, handler: BaseHTTPRequestHandler, request: Request) -> None:
        if request.path.endswith("/embeddings"):
            failure = self.fail_models.get(request.model or "")
            if failure is not None:
                self._send(handler, failure.status, failure.body, failure.headers)
            else:
                self._send(handler, 200, _embeddings(request))
            return
        reply = self._next(request)
        if isinstance(reply, Delay):
            time.sleep(reply.seconds)
            reply = reply.reply
        if isinstance(reply, Failure):
            self._send(handler, reply.status, reply.body, reply.headers)
            return
        self._reply(handler, request, reply)

    def _reply(self, handler: BaseHTTPRequestHandler, request: Request, reply: Any) -> None:
        content = reply if isinstance(reply, str) else json.dumps(reply)
        if request.path.endswith("/api/chat"):
            self._send(handler, 200, _ollama_chat(request, content))
        elif request.path.endswith("/v1/messages"):
            self._send(handler, 200, _anthropic_message(request, reply, content))
        else:
            self._send(handler, 200, _completion(request, content))

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass


def _completion(request: Request, content: str) -> dict[str, Any]:
    prompt_tokens = max(1, len(request.prompt) // 4)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model or "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(content) // 4,
            "total_tokens": prompt_tokens + len(content) // 4,
        },
    }


def _ollama_chat(request: Request, content: str) -> dict[str, Any]:
    """Ollama's native /api/chat reply (what LiteLLM's ``ollama_chat/`` provider reads)."""
    return {
        "model": request.model or "fake",
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": max(1, len(request.prompt) // 4),
        "eval_count": max(1, len(content) // 4),
    }


def _anthropic_message(request: Request, reply: Any, content: str) -> dict[str, Any]:
    """Anthropic's /v1/messages reply; a request that forces a tool (LiteLLM's way to ask for a
    JSON schema) gets the reply as that tool's input, as Claude answers."""
    tools = request.body.get("tools") or []
    if tools and isinstance(reply, dict):
        block: dict[str, Any] = {"type": "tool_use", "id": "toolu_fake", "name": tools[0]["name"], "input": reply}
    else:
        block = {"type": "text", "text": content}
    usage = {"input_tokens": max(1, len(request.prompt) // 4), "output_tokens": max(1, len(content) // 4)}
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.model or "fake",
        "content": [block],
        "stop_reason": "tool_use" if block["type"] == "tool_use" else "end_turn",
        "usage": usage,
    }


def _embeddings(request: Request) -> dict[str, Any]:
    """Deterministic 16-d vectors from a hash of each input (for remote-embedder tests)."""
    inputs = request.body.get("input") or []
    inputs = [inputs] if isinstance(inputs, str) else inputs
    data = []
    for i, text in enumerate(inputs):
        digest = hashlib.sha256(str(text).encode()).digest()
        data.append({"object": "embedding", "index": i, "embedding": [b / 255.0 - 0.5 for b in digest[:16]]})
    return {"object": "list", "data": data, "model": request.model, "usage": {"prompt_tokens": 1, "total_tokens": 1}}


# -- structured output, per route (issue 26) --------------------------------------------------


def _identity(fake: FakeLLM, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """What the route's server says about itself on ``GET``; None is a 404."""
    route, path = fake.route, path.split("?", 1)[0].rstrip("/")
    if path.endswith("/models") and route != "ollama":
        owner = {"llama-server": "llamacpp", "vllm": "vllm", "llama-cpp-python": "me"}.get(route, "organization")
        model: dict[str, Any] = {"id": "fake-model", "object": "model", "owned_by": owner}
        if route == "vllm":
            model["max_model_len"] = fake.context
        headers = {"server": "llama.cpp"} if route == "llama-server" else {"server": "uvicorn"}
        return {"object": "list", "data": [model]}, headers
    if path == "/props" and route == "llama-server":
        return {"build_info": "b6000-fake", "default_generation_settings": {"n_ctx": fake.context}}, {}
    if path == "/version" and route == "vllm":
        return {"version": "0.9.2"}, {}
    if path == "/api/version" and route == "ollama":
        return {"version": "0.12.0"}, {}
    if path == "/openapi.json" and route == "llama-cpp-python":
        return {"openapi": "3.1.0", "info": {"title": "🦙 llama.cpp Python API", "version": "0.3.36"}}, {}
    return None


def _carried_schema(request: Request) -> tuple[str, Any]:
    """(form, schema) a request carries its structured output in; ("none", None) without."""
    body = request.body
    response_format = body.get("response_format") or {}
    if request.path.endswith(("/api/chat", "/api/generate")):
        form = body.get("format")
        return ("ollama_format", form) if isinstance(form, dict) else (("json", None) if form else ("none", None))
    if "guided_json" in body:
        return "guided_json", body["guided_json"]
    if response_format.get("type") == "json_schema":
        return "json_schema", (response_format.get("json_schema") or {}).get("schema")
    if response_format.get("type") == "json_object":
        return ("schema_extension", response_format["schema"]) if "schema" in response_format else ("json", None)
    return "none", None


ENFORCED = {
    "openai": {"json_schema"},
    "llama-cpp-python": {"schema_extension"},
    "llama-server": {"json_schema"},
    "vllm": {"guided_json"},
    "ollama": {"ollama_format"},
    "unenforced": set(),
}


def _probe_schema(request: Request) -> Any:
    form, schema = _carried_schema(request)
    if isinstance(schema, dict) and schema.get("title") == PROBE_TITLE:
        return schema
    # JSON mode and plain requests of the probe carry no schema: known by the probe's question.
    return {} if form in ("json", "none") and "typical spring day" in request.prompt else None


def _refusal(fake: FakeLLM, request: Request) -> Failure | None:
    form, _ = _carried_schema(request)
    if fake.route == "llama-cpp-python" and form == "json_schema":
        message = "1 validation error: response_format.type Input should be 'text' or 'json_object'"
        return Failure(500, {"error": {"message": message, "type": "internal_server_error"}})
    if fake.route == "ollama" and fake.think_refused and "think" in request.body:
        return Failure(400, {"error": f'"{request.model}" does not support thinking'})
    return None


def _probe_reply(fake: FakeLLM, request: Request) -> Any:
    """An enforced form gets an instance of the schema; otherwise the model answers as it likes."""
    form, schema = _carried_schema(request)
    if form in ENFORCED[fake.route]:
        return instance(schema)
    return {"weather": "mild and sunny"} if form != "none" else "Spring days are usually mild."


def instance(schema: dict[str, Any]) -> Any:
    """The simplest value a grammar built from ``schema`` would let a model write."""
    if "anyOf" in schema:
        return instance(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: instance(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance(schema.get("items", {})) for _ in range(max(1, schema.get("minItems", 1)))]
    return {"integer": 1, "number": 1.5, "boolean": True, "string": "text"}.get(kind)


def _ollama_show(fake: FakeLLM) -> dict[str, Any]:
    return {
        "details": {"family": "llama"},
        "model_info": {"general.architecture": "llama", "llama.context_length": fake.context},
        "capabilities": ["completion"],
    }
