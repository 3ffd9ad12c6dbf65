"""A real small model through memorch's waiting add path: how many adds come back in shape.

    uv run --extra dev python bench/real_model.py [--adds 44] [--graph on|off] [--n-ctx 4096]

SmolLM2-135M-Instruct under ``llama-cpp-python[server]`` (tests/llama_server.py) on 127.0.0.1,
reached through LiteLLM as ``openai/smollm2`` with an ``api_base``, exactly as a user would set
it up. Between memorch and the server sits a counting proxy (this file), so every chat request
is seen, with its HTTP status and the structured-output form it carried, whether or not memorch
counted it. Each varied one-line fact is added with inference and the library's default waiting
path (background inference off), one scope, the graph on.

Printed: the share of adds answered in shape (used, or refused only for what they said: a reply that
writes nothing new and names only memories unrelated to the message, which memorch keeps verbatim
for reprocess; counted apart as ``guarded_unrelated``), chat requests per add (the probe's
requests apart: they are made once per model, API base and server version, then cached), repair
requests, the structured-output form memorch chose, latency per add, and what was stored. The
model's judgement is not under test: a 135M model extracts poorly, and the last lines say
honestly what it stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.llama_server import ALIAS, llama_server  # noqa: E402

FACTS = [
    "I'm allergic to peanuts.",
    "My sister Clara lives in Toronto.",
    "I work as a nurse at St. Mary's hospital.",
    "I moved to Lisbon last March.",
    "My favourite food is sushi.",
    "I have two cats named Miso and Tofu.",
    "I'm training for the Berlin marathon in September.",
    "I drive a blue 2015 Honda Civic.",
    "My daughter Emma turns six next week.",
    "I prefer window seats on long flights.",
    "I don't drink coffee after 2 pm.",
    "I speak Portuguese and a little Japanese.",
    "My husband Tom is a carpenter.",
    "I'm vegetarian since 2019.",
    "I play the cello in a community orchestra.",
    "My best friend is called Priya.",
    "I graduated from the University of Leeds in 2012.",
    "I'm afraid of heights.",
    "My birthday is on the 4th of July.",
    "I use a standing desk at work.",
    "I'm learning to bake sourdough bread.",
    "My mother lives with us since last year.",
    "I support Benfica.",
    "I'm saving for a house in Porto.",
    "I run 5 km every Tuesday and Thursday morning.",
    "My doctor told me to cut down on salt.",
    "I read mostly science fiction, Ursula Le Guin is my favourite.",
    "I have a meeting with my manager Paul every Monday at 9.",
    "I'm planning a trip to Kyoto in April.",
    "I can't stand horror movies.",
    "My laptop is a ThinkPad X1 Carbon.",
    "I volunteer at the food bank on Saturdays.",
    "My son Leo is allergic to cats, oddly.",
    "I'm lactose intolerant.",
    "We are getting a puppy in June.",
    "I switched from iPhone to Android this year.",
    "I wake up at 6 every day.",
    "My grandmother was born in Goa.",
    "I take the 7:40 train to work.",
    "I'm terrible at remembering names.",
    "I prefer tea with oat milk.",
    "I broke my wrist skiing in 2021.",
    "My favourite band is Radiohead.",
    "I'm studying for a project management certificate.",
]


class Proxy:
    """Forwards every request to the model server and logs each chat request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removesuffix("/v1")
        self.chats: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._forward(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                proxy._forward(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        request = urllib.request.Request(self.upstream + handler.path, data=body, method=handler.command)
        if body is not None:
            request.add_header("content-type", "application/json")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                status, data, headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            status, data, headers = exc.code, exc.read(), dict(exc.headers)
        if body is not None and handler.path.endswith("/chat/completions"):
            self._log(json.loads(body), status, data, time.monotonic() - started)
        handler.send_response(status)
        for key in ("content-type", "server"):
            if key in {k.lower() for k in headers}:
                handler.send_header(key, next(v for k, v in headers.items() if k.lower() == key))
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _log(self, body: dict[str, Any], status: int, data: bytes, seconds: float) -> None:
        text = json.dumps(body)
        form = body.get("response_format") or {}
        kind = form.get("type", "none") + ("+schema" if "schema" in form else "")
        entry = {
            "probe": "memorch_probe" in text,
            "repair": "could not be used" in json.dumps(body.get("messages", [])[-1:]),
            "status": status,
            "form": kind + ("+guided_json" if "guided_json" in body else ""),
            "seconds": seconds,
            "reply": data.decode(errors="replace")[:2000],
        }
        with self._lock:
            self.chats.append(entry)


def structured_choice(memory: Any) -> str:
    """The form memorch chose, as its doctor line words it (absent before issue 26)."""
    llm = memory.engine.components.llm
    describe = getattr(llm, "structure_report", None)
    return describe() if describe else "(this version has no probe)"


async def run(base: str, work: Path, adds: int, graph: str) -> dict[str, Any]:
    from memorch import AsyncMemory, MemoryConfig

    config = MemoryConfig(
        data_dir=work / "data",
        graph=graph,
        llm_model=f"openai/{ALIAS}",
        llm_api_base=base,
        background_inference="off",
        llm_timeout=300,
    )
    memory = AsyncMemory(config)
    outcomes: list[dict[str, Any]] = []
    try:
        for fact in (FACTS * (adds // len(FACTS) + 1))[:adds]:
            started = time.monotonic()
            result = await memory.add(fact, user_id="bench")
            outcome = {
                "said": fact,
                "seconds": time.monotonic() - started,
                "degraded": bool(result.get("degraded")),
                "events": [(r["event"], r["memory"]) for r in result["results"]],
                "reason": result.get("reason"),
                "relations": len((result.get("relations") or {}).get("added_entities", [])),
            }
            outcomes.append(outcome)
            shown = "; ".join(f"{e} {t!r}" for e, t in outcome["events"]) or "[]"
            shown = (
                (("GUARDED" if guarded(outcome) else "DEGRADED") + f" ({outcome['reason']})")
                if outcome["degraded"]
                else shown
            )
            print(f"{len(outcomes):3d} {outcome['seconds']:6.1f}s  {fact!r} -> {shown}", file=sys.stderr, flush=True)
        stored = await memory.get_all(user_id="bench", limit=1000)
        choice = structured_choice(memory)
    finally:
        await memory.close()
    return {"outcomes": outcomes, "stored": [r["memory"] for r in stored["results"]], "choice": choice}


def guarded(outcome: dict[str, Any]) -> bool:
    """Degraded although the reply was in shape: it wrote nothing new and named only memories
    unrelated to what was said (memorch keeps the user's words for reprocess instead)."""
    return outcome["degraded"] and "unrelated" in (outcome["reason"] or "")


def report(found: dict[str, Any], chats: list[dict[str, Any]]) -> dict[str, Any]:
    outcomes = found["outcomes"]
    adds = len(outcomes)
    # In shape: the reply conformed and was used, or conformed and was refused for what it said.
    in_shape = sum(not o["degraded"] or guarded(o) for o in outcomes)
    work = [c for c in chats if not c["probe"]]
    seconds = [o["seconds"] for o in outcomes]
    events = Counter(e for o in outcomes if not o["degraded"] for e, _ in o["events"])
    said = {o["said"].strip().lower() for o in outcomes}
    stored = found["stored"]
    verbatim = sum(s.strip().lower() in said for s in stored)
    return {
        "adds": adds,
        "in_shape": in_shape,
        "in_shape_share": round(in_shape / adds, 3),
        "degraded": adds - in_shape,
        "guarded_unrelated": sum(guarded(o) for o in outcomes),
        "empty_results": sum(not o["degraded"] and not o["events"] for o in outcomes),
        "chat_requests": len(work),
        "requests_per_add": round(len(work) / adds, 3),
        "repair_requests": sum(c["repair"] for c in work),
        "failed_requests": sum(c["status"] != 200 for c in work),
        "probe_requests": sum(c["probe"] for c in chats),
        "forms_sent": dict(Counter(c["form"] for c in work)),
        "probe_forms": [(c["form"], c["status"]) for c in chats if c["probe"]],
        "structured_output": found["choice"],
        "latency_s": {
            "p50": round(statistics.median(seconds), 2),
            "mean": round(statistics.fmean(seconds), 2),
            "max": round(max(seconds), 2),
        },
        "events": dict(events),
        "relations_added": sum(o["relations"] for o in outcomes),
        "stored_memories": len(stored),
        "stored_verbatim_copies_of_input": verbatim,
        "degraded_reasons": dict(Counter((o["reason"] or "")[:90] for o in outcomes if o["degraded"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adds", type=int, default=len(FACTS))
    parser.add_argument("--graph", choices=("on", "off"), default="on")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--show", type=int, default=12, help="adds to print with what the model made of them")
    parser.add_argument("--json", type=Path, help="also write the full outcomes here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with llama_server(work / "server.log", n_ctx=args.n_ctx) as base:
            proxy = Proxy(base).start()
            try:
                found = asyncio.run(run(proxy.url, work, args.adds, args.graph))
            finally:
                proxy.stop()
    summary = report(found, proxy.chats)
    for outcome in found["outcomes"][: args.show]:
        shown = ("GUARDED" if guarded(outcome) else "DEGRADED") if outcome["degraded"] else None
        shown = shown or "; ".join(f"{e} {t!r}" for e, t in outcome["events"]) or "[]"
        print(f"{outcome['seconds']:6.1f}s  {outcome['said']!r} -> {shown}")
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, **found, "chats": proxy.chats}, indent=1))


if __name__ == "__main__":
    main()
