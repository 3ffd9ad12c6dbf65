"""Hostile input at volume: a seeded fuzzer over every tool's input schema (read from ``tools/list``).

One long-lived in-process server takes ``MEMORCH_FUZZ_CALLS`` calls (10,000 by default), and a
real ``memorch serve`` subprocess takes a smaller sample over stdio (raw JSON-RPC lines, so
what a client library would refuse to encode, such as a lone ``\\ud800`` escape or a ``NaN``
literal, still reaches the server). Inputs: wrong types, 1 MB and 20 MB strings, nesting 1,000+
deep in filters and metadata, lists of 100,000 filters, NUL, lone surrogates, RTL and emoji,
filter/Cypher/SQL injection strings, path-like ids, NaN/Infinity, negative and huge limits.

Every call must answer within 10 s with a result or a ``[CODE] message. Suggestion: ...`` error,
never ``INTERNAL_ERROR``, never a traceback or an internal path; nothing of the two control
users (alice, bob) may come back to the fuzzer, and their memories and histories must be
byte-identical afterwards. Reproduce a failure with the printed seed:
``MEMORCH_FUZZ_SEED=... MEMORCH_FUZZ_CALLS=... uv run --extra dev pytest tests/test_fuzz.py -s``.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import reprlib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from memorch import MemoryConfig
from memorch.serve._app import build_server

from .mcp_helpers import memorch_command, server_env

ERROR_FORM = re.compile(r"^\[([A-Z_]+)\] .+\. Suggestion: .+", re.DOTALL)
FORBIDDEN = ("Traceback", "/root/", '.py"', ".rs", "Error executing tool")
CONTROL_USERS = ("alice", "bob")
MARKER = "CTRLMARK"  # in every control memory and in nothing the fuzzer sends
CALL_TIMEOUT = 10.0
SEED = int(os.environ.get("MEMORCH_FUZZ_SEED", "20260514"))
CALLS = int(os.environ.get("MEMORCH_FUZZ_CALLS", "10000"))
STDIO_CALLS = int(os.environ.get("MEMORCH_FUZZ_STDIO_CALLS", "300"))
FUZZ_USERS = ("fuzzer", "mallory", "eve", "u-" + "x" * 40, "用户", "مستخدم", "🙂user")

MB = 1 << 20
SQL = ["' OR 1=1 --", '"; DROP TABLE memories; --', "1; DELETE FROM memories", "' UNION SELECT * FROM history --"]
CYPHER = ["MATCH (n) DETACH DELETE n", "}) MATCH (n) RETURN n //", "CALL db.clear()"]
FILTER_INJECTION = ['$."x"\') OR 1=1 --', "metadata->>'$'", "*", "%", "_", "\\", "json_extract(metadata, '$')"]
PATHS = ["../../etc/passwd", "..\\..\\windows\\system32", "/etc/shadow", "file:///etc/passwd", "./", ".", "~"]
ODD = [
    "",
    " ",
    "\t\n",
    "a\x00b",
    "\x00",
    "\ud800",
    "x\udfffy",
    "\u202eevil\u202c",
    "שלום עולם",
    "مرحبا بالعالم",
    "👩‍👩‍👧‍👦🏳️‍🌈🙂",
    "\ufeff",
    "\u200b",
    "Ω≈ç√∫",
    "\x1b[31mred",
    "null",
    "true",
    "0",
    "-1",
    "NaN",
    "Infinity",
    "{}",
    "[]",
    "%s%s%n",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
]
NORMAL = ["I like green tea", "My sister lives in Lyon", "Dentist on Tuesday at 3pm", "The cat is called Miso"]
NUMBERS: list[Any] = [
    0, -1, 1, 2, 1000, 1001, -(2**31), 2**31, 2**63, 2**64 + 1, 10**30, 0.5, -0.0, 1e308, 1e-308,
    float("nan"), float("inf"), float("-inf"), True, False,
]  # fmt: skip


def _strings(rng: random.Random) -> str:
    pool = rng.random()
    if pool < 0.35:
        return rng.choice(NORMAL) + (f" {rng.randrange(10**6)}" if rng.random() < 0.7 else "")
    if pool < 0.55:
        return rng.choice(ODD)
    if pool < 0.75:
        return rng.choice(SQL + CYPHER + FILTER_INJECTION)
    if pool < 0.85:
        return rng.choice(PATHS)
    if pool < 0.95:
        return "".join(rng.choice("aé€😀\u05d0\u0627 \x00\ud800\n") for _ in range(rng.randrange(1, 300)))
    return rng.choice(NORMAL) + " " + "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 60)))


def _nested_filter(depth: int, kind: str) -> dict[str, Any]:
    node: dict[str, Any] = {"category": "x"}
    for _ in range(depth):
        node = {"NOT": node} if kind == "NOT" else {kind: [node]}
    return node


def _nested_metadata(depth: int) -> dict[str, Any]:
    node: Any = "leaf"
    for _ in range(depth):
        node = {"a": node}
    return node


def _nested_list(depth: int) -> Any:
    node: Any = []
    for _ in range(depth):
        node = [node]
    return node


class Fuzzer:
    """Draws arguments for one tool from its JSON schema, mostly hostile, sometimes valid."""

    def __init__(self, rng: random.Random, tools: dict[str, dict[str, Any]], control_ids: list[str]) -> None:
        self.rng = rng
        self.tools = tools
        self.names = sorted(tools)
        self.control_ids = control_ids
        self.own_ids: list[str] = []
        self.huge_left = {MB: 6, 20 * MB: 2}  # a few only: they are slow to build and to refuse

    def _huge(self) -> str | None:
        for size, left in self.huge_left.items():
            if left and self.rng.random() < 0.5:
                self.huge_left[size] -= 1
                return self.rng.choice("aé😀") * (size // 4)
        return None

    def string(self) -> str:
        if self.rng.random() < 0.002:
            huge = self._huge()
            if huge is not None:
                return huge
        return _strings(self.rng)

    def any_value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if r < 0.3:
            return self.string()
        if r < 0.55:
            return self.rng.choice(NUMBERS)
        if r < 0.6:
            return None
        if r < 0.8 and depth < 3:
            return [self.any_value(depth + 1) for _ in range(self.rng.randrange(4))]
        if depth < 3:
            return {self.string()[:20]: self.any_value(depth + 1) for _ in range(self.rng.randrange(4))}
        return self.string()

    def filters(self) -> Any:
        r = self.rng.random()
        if r < 0.02:
            depth = self.rng.choice([9, 150, 240, 1000, 1200, 5000])
            return _nested_filter(depth, self.rng.choice(["AND", "OR", "NOT"]))
        if r < 0.035:
            return {"OR": [{"category": self.rng.choice(NORMAL)} for _ in range(100_000)]}
        if r < 0.045:
            return {"tag": {"in": list(range(self.rng.choice([1000, 1001, 100_000])))}}
        if r < 0.055:
            return {f"k{i}": i for i in range(self.rng.choice([200, 201, 100_000]))}
        if r < 0.06:
            return {"AND": _nested_list(1200)}
        if r < 0.45:
            key = self.rng.choice(["category", "priority", "tag", "note", "created_at", "updated_at", *SQL, *PATHS])
            op = self.rng.choice(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains", "x"])
            value = self.any_value(2)
            shape = self.rng.random()
            if shape < 0.3:
                return {key: value}
            if shape < 0.8:
                return {key: {op: value}}
            return {self.rng.choice(["AND", "OR", "NOT", "and", "Or"]): self.rng.choice([[{key: value}], {key: value}])}
        return self.any_value()

    def metadata(self) -> Any:
        r = self.rng.random()
        if r < 0.02:
            return _nested_metadata(self.rng.choice([100, 240, 1000, 1200, 5000]))
        if r < 0.03:
            return {"blob": "x" * self.rng.choice([63_000, 65_000, MB])}
        if r < 0.04:
            return {"_memorch": {"owner": "alice"}}
        if r < 0.5:
            return {"category": self.rng.choice(["food", "health", *SQL]), "priority": self.rng.choice(NUMBERS)}
        return self.any_value()

    def messages(self) -> Any:
        r = self.rng.random()
        if r < 0.5:
            return [
                {"role": self.rng.choice(["user", "assistant", "system", "tool", "root", ""]), "content": self.string()}
                for _ in range(self.rng.randrange(1, 4))
            ]
        if r < 0.55:
            return [{"role": "user", "content": "hi"}] * self.rng.choice([100, 1000])
        if r < 0.6:
            return _nested_list(1200)
        return self.any_value()

    def memory_id(self) -> str | Any:
        r = self.rng.random()
        if r < 0.3 and self.own_ids:
            return self.rng.choice(self.own_ids)
        if r < 0.45:
            return self.rng.choice(self.control_ids)  # the caller then forces a foreign user_id
        if r < 0.6:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if r < 0.7:
            own = self.rng.choice(self.own_ids or [str(uuid.UUID(int=0))])
            return self.rng.choice([own.upper(), f" {own} ", own.replace("-", ""), "{" + own + "}", "urn:uuid:" + own])
        if r < 0.8:
            return self.rng.choice(PATHS)
        return self.rng.choice([self.string(), self.any_value()])

    def scope_id(self) -> Any:
        r = self.rng.random()
        value = self.rng.choice(FUZZ_USERS) if r < 0.6 else self.string() if r < 0.9 else self.any_value()
        if isinstance(value, str) and value.strip().lower() in CONTROL_USERS:
            return "fuzzer"
        return value

    def value(self, name: str, schema: dict[str, Any]) -> Any:
        if self.rng.random() < 0.12:
            return self.any_value()  # any type at all, mostly the wrong one
        kind = schema.get("type")
        if name == "filters":
            return self.filters()
        if name == "metadata":
            return self.metadata()
        if name == "messages":
            return self.messages()
        if name in ("memory_id", "event_id"):
            return self.memory_id()
        if name in ("user_id", "agent_id", "run_id"):
            return self.scope_id()
        if kind == "integer":
            return self.rng.choice([*NUMBERS, self.rng.randrange(1, 50), 10])
        if kind == "number":
            return self.rng.choice([*NUMBERS, self.rng.random(), 0.0, 1.0])
        if kind == "boolean":
            return self.rng.choice([True, False, True, "true", 1, None])
        return self.string()

    def call(self) -> tuple[str, dict[str, Any]]:
        name = self.rng.choice(self.names)
        schema = self.tools[name]
        required = set(schema.get("required", []))
        args: dict[str, Any] = {}
        for prop, prop_schema in schema.get("properties", {}).items():
            keep = 0.9 if prop in required else 0.4
            if prop == "user_id":
                keep = 0.7
            if self.rng.random() < keep:
                args[prop] = self.value(prop, prop_schema)
        if self.rng.random() < 0.03:
            args[self.rng.choice(["extra", "__proto__", "user", "_memorch"])] = self.any_value()
        if args.get("memory_id") in self.control_ids or args.get("event_id") in self.control_ids:
            # An id names one memory everywhere; the fuzzer may only probe a control id through
            # a scope that is not its owner's, where it must be MEMORY_NOT_FOUND.
            args["user_id"] = self.rng.choice(FUZZ_USERS)
        if name == "delete_all_memories" and not isinstance(args.get("user_id"), str):
            args["user_id"] = self.rng.choice(FUZZ_USERS)  # never the server's default user by accident
        return name, args


class Tally:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = str(data_dir)
        self.outcomes: Counter[str] = Counter()
        self.problems: list[str] = []
        self.slowest = 0.0
        self.seconds: Counter[str] = Counter()

    def check(self, name: str, args: dict[str, Any], is_error: bool, text: str, elapsed: float, own: bool) -> None:
        self.slowest = max(self.slowest, elapsed)
        self.seconds[name] += elapsed
        shown = _short(args)
        if is_error:
            match = ERROR_FORM.match(text)
            code = match.group(1) if match else "MALFORMED"
            self.outcomes[code] += 1
            if not match or code == "INTERNAL_ERROR":
                self.problems.append(f"{name} {shown}: {text[:300]}")
            leaked = [bad for bad in (*FORBIDDEN, self.data_dir) if bad in text]
            if leaked:
                self.problems.append(f"{name} {shown}: error text shows {leaked}: {text[:300]}")
        else:
            self.outcomes["ok"] += 1
            if own:
                self.problems.append(f"{name} {shown}: a control memory's id outside its scope succeeded")
        if MARKER in text:
            self.problems.append(f"{name} {shown}: a control memory came back: {text[:300]}")


_SHOWN = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxdict, _SHOWN.maxlist = 4, 60, 60, 6, 6


def _short(args: dict[str, Any]) -> str:
    """The arguments, cut short (1 MB strings, 5,000 levels) for a failure message."""
    return _SHOWN.repr(args)[:300]


async def _seed_controls(client: Client) -> list[str]:
    ids = []
    for user in CONTROL_USERS:
        for i, fact in enumerate(["likes green tea", "lives in Lyon", "has a dentist on Tuesday"]):
            added = await client.call_tool(
                "add_memory", {"text": f"{user} {MARKER} {fact} {i}", "user_id": user, "metadata": {"category": "food"}}
            )
            assert not added.is_error, added.content[0].text
            ids.append(added.structured_content["results"][0]["id"])
        updated = await client.call_tool(
            "update_memory", {"memory_id": ids[-1], "text": f"{user} {MARKER} has a dentist on Wednesday"}
        )
        assert not updated.is_error, updated.content[0].text
    return ids


async def _snapshot(client: Client, ids: list[str]) -> str:
    parts = []
    for user in CONTROL_USERS:
        listed = await client.call_tool("list_memories", {"user_id": user, "limit": 1000})
        parts.append(listed.content[0].text)
    for memory_id in ids:
        parts.append((await client.call_tool("memory_history", {"memory_id": memory_id})).content[0].text)
    return "\n".join(parts)


async def _call(
    client: Client, server: Any, name: str, args: dict[str, Any], direct: Counter[str]
) -> tuple[bool, str, dict[str, Any] | None]:
    """One tool call through the client session; what the SDK's client refuses to encode (a lone
    surrogate, nesting past pydantic's ~250 levels) goes to the server's ``call_tool`` directly,
    the method the session dispatches to, so the tools still meet it."""
    try:
        result = await client.call_tool(name, args)
    except (UnicodeEncodeError, ValueError) as exc:
        direct[type(exc).__name__] += 1
        try:
            result = await server.call_tool(name, args)
        except ToolError as refused:
            return True, str(refused), None
    text = "\n".join(getattr(part, "text", "") for part in result.content)
    if result.structured_content is not None:
        text += json.dumps(result.structured_content)
    return result.is_error, text, result.structured_content


def _report(where: str, seed: int, calls: int, elapsed: float, tally: Tally) -> None:
    codes = ", ".join(f"{code} {n}" for code, n in tally.outcomes.most_common())
    print(
        f"\nfuzz {where}: seed {seed}, {calls} calls in {elapsed:.1f} s "
        f"({calls / elapsed:.0f}/s, slowest {tally.slowest:.2f} s); {codes}"
    )
    print("  seconds by tool: " + ", ".join(f"{name} {s:.1f}" for name, s in tally.seconds.most_common()))


async def test_fuzz_every_tool_in_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = MemoryConfig(data_dir=data_dir, graph="off", user_id="fuzzer")
    rng = random.Random(SEED)
    tally = Tally(data_dir)
    server = build_server(config)
    direct: Counter[str] = Counter()
    async with Client(server) as client:
        tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        control_ids = await _seed_controls(client)
        before = await _snapshot(client, control_ids)
        fuzzer = Fuzzer(rng, tools, control_ids)
        start = time.monotonic()
        for n in range(CALLS):
            name, args = fuzzer.call()
            began = time.monotonic()
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    is_error, text, structured = await _call(client, server, name, args, direct)
            except TimeoutError:
                pytest.fail(f"call {n} hung past {CALL_TIMEOUT} s (seed {SEED}): {name} {_short(args)}")
            own = args.get("memory_id") in control_ids
            tally.check(name, args, is_error, text, time.monotonic() - began, own)
            if name == "add_memory" and not is_error:
                fuzzer.own_ids.extend(e["id"] for e in structured["results"] if e.get("id"))
        elapsed = time.monotonic() - start
        _report("in-process", SEED, CALLS, elapsed, tally)
        print(f"  sent past the client (it cannot encode them): {dict(direct)}")
        after = await _snapshot(client, control_ids)
        found = await client.call_tool("search_memories", {"query": "green tea", "user_id": "alice"})
    assert tally.problems == [], f"seed {SEED}: {len(tally.problems)} problems:\n" + "\n".join(tally.problems[:40])
    assert after == before, "a control user's memories or history changed"
    assert not found.is_error and MARKER in found.structured_content["results"][0]["memory"]


# --- the same fuzzer over a real `memorch serve` on stdio, as raw JSON-RPC lines ----------------


class StdioServer:
    """``memorch serve`` on stdio, spoken to line by line: ``json.dumps`` sends what the SDK's
    client would refuse to encode (``\\ud800`` escapes, ``NaN`` literals, nesting past 250)."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [*memorch_command(), "serve"],
            env=server_env(data_dir, MEMORCH_USER_ID="fuzzer"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [self.replies.put(json.loads(line)) for line in stdout], daemon=True).start()
        self.next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 25_000))  # the C encoder counts each level of a 5,000-deep filter
        try:
            line = json.dumps(message, ensure_ascii=True)
        finally:
            sys.setrecursionlimit(limit)
        self.proc.stdin.write(line.encode("ascii") + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any], timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        """The reply to one request; a line the server could not parse is answered with id null."""
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.replies.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no reply to {method} within {timeout} s") from None
            if reply.get("id") in (self.next_id, None) and ("result" in reply or "error" in reply):
                return reply

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        reply = self.request("tools/call", {"name": name, "arguments": args})
        assert "result" in reply, reply
        return reply["result"]

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.log.close()


def test_fuzz_over_stdio(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = StdioServer(data_dir, tmp_path / "server.log")
    rng = random.Random(SEED + 1)
    tally = Tally(data_dir)
    jsonrpc: Counter[int] = Counter()
    try:
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}
        assert "result" in server.request("initialize", init, timeout=60)
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = {tool["name"]: tool["inputSchema"] for tool in server.request("tools/list", {})["result"]["tools"]}
        ids = []
        for user in CONTROL_USERS:
            added = server.call("add_memory", {"text": f"{user} {MARKER} likes green tea", "user_id": user})
            assert not added.get("isError"), added
            ids.append(added["structuredContent"]["results"][0]["id"])

        def snapshot() -> list[Any]:
            listed = [server.call("list_memories", {"user_id": user}) for user in CONTROL_USERS]
            return listed + [server.call("memory_history", {"memory_id": memory_id}) for memory_id in ids]

        before = snapshot()
        fuzzer = Fuzzer(rng, tools, ids)
        fuzzer.huge_left = {MB: 2, 20 * MB: 1}
        start = time.monotonic()
        for n in range(STDIO_CALLS):
            name, args = fuzzer.call()
            if n == 7:
                args = {"text": "x" * (20 * MB), "user_id": "fuzzer"}  # once for sure: refused, never a hang
                name = "add_memory"
            began = time.monotonic()
            try:
                reply = server.request("tools/call", {"name": name, "arguments": args})
            except TimeoutError:
                pytest.fail(f"stdio call {n} hung past {CALL_TIMEOUT} s (seed {SEED + 1}): {name} {_short(args)}")
            except RecursionError:
                continue  # deeper than even json.dumps will write; the in-process leg covers it
            if "error" in reply:  # refused by the transport (unparseable line, bad params): fine, if clean
                error = reply["error"]
                jsonrpc[error["code"]] += 1
                message = str(error.get("message", "")) + json.dumps(error.get("data"))
                assert isinstance(error["code"], int) and error.get("message"), reply
                assert not [bad for bad in (*FORBIDDEN, str(data_dir)) if bad in message], message[:300]
                continue
            result = reply["result"]
            text = "\n".join(part.get("text", "") for part in result.get("content", []))
            if result.get("structuredContent") is not None:
                text += json.dumps(result["structuredContent"])
            own = args.get("memory_id") in ids
            tally.check(name, args, bool(result.get("isError")), text, time.monotonic() - began, own)
            if name == "add_memory" and not result.get("isError"):
                fuzzer.own_ids.extend(e["id"] for e in result["structuredContent"]["results"] if e.get("id"))
        elapsed = time.monotonic() - start
        _report("stdio", SEED + 1, STDIO_CALLS, elapsed, tally)
        print(f"  JSON-RPC errors (the transport refused the line): {dict(jsonrpc)}")
        after = snapshot()
        found = server.call("search_memories", {"query": "green tea", "user_id": "alice"})
    finally:
        code = server.close()
    assert tally.problems == [], f"seed {SEED + 1}: {len(tally.problems)} problems:\n" + "\n".join(tally.problems[:40])
    assert after == before, "a control user's memories or history changed"
    assert MARKER in found["structuredContent"]["results"][0]["memory"]
    assert code == 0
