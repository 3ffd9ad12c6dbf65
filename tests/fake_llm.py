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

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


class FakeLLM:
    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.requests: list[Request] = []
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

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                request = Request(self.path, body, body.get("model"))
                with fake._lock:
                    fake.requests.append(request)
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
