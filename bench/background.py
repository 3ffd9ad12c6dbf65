"""How long an inferring ``add`` keeps the assistant waiting, with a model that takes 2 s.

    uv run python bench/background.py [--adds 20] [--delay 2.0]

The model is the fake OpenAI-compatible server of the test suite on 127.0.0.1 (LiteLLM's real
HTTP path), answering every request after ``--delay`` seconds with one extracted fact. The same
adds run twice in one process, on fresh data directories:

1. waiting (the library's default): ``add`` returns after the model answered and the facts were
   committed;
2. background (``MEMORCH_BACKGROUND_INFERENCE=on``, the default of ``memorch serve``): ``add``
   returns once the messages are durable and searchable; a worker runs the model call after.

Prints add latency p50 / p95 for both, their ratio, and for the background run how long the
worker took to replace every pending message with its facts (it works through them one model
call at a time, so that is about adds times the delay).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memorch import AsyncMemory, MemoryConfig
from tests.fake_llm import FakeLLM, Request

SENTENCES = [
    "I started learning the cello last spring",
    "My sister Ana lives in Porto with two cats",
    "I am allergic to shellfish, so no paella for me",
    "We are planning a trip to Kyoto in April",
    "My favourite author is Ursula K. Le Guin",
    "I switched from coffee to green tea this year",
    "I run 10 km every Sunday morning",
    "Our team moved the release to the first week of June",
    "I bought a second-hand road bike last week",
    "My daughter starts school in September",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(mode: str, fake: FakeLLM, adds: int, root: Path) -> dict[str, float]:
    config = MemoryConfig(
        data_dir=root / mode,
        graph="off",
        llm_model="openai/bench-model",
        llm_api_base=fake.url,
        llm_api_key="bench",
        background_inference="on" if mode == "background" else "off",
    )
    memory = AsyncMemory(config)
    try:
        # One inferring add first, in both modes: loads the embedder and LiteLLM, opens the stores.
        await memory.add("warm up", user_id="warm")
        await memory.flush_inference()
        latencies = []
        for i in range(adds):
            started = time.perf_counter()
            await memory.add(f"{SENTENCES[i % len(SENTENCES)]} (note {i})", user_id="bench")  # no repeats
            latencies.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        left = await memory.flush_inference()
        drained = time.perf_counter() - started
        facts = len((await memory.get_all(user_id="bench", limit=1000))["results"])
    finally:
        await memory.close()
    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "drain_s": round(drained, 2),
        "memories": facts,
        "still_pending": left["pending_inference"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adds", type=int, default=20)
    parser.add_argument("--delay", type=float, default=2.0)
    args = parser.parse_args()

    fake = FakeLLM().start()

    def answer(request: Request) -> dict:
        time.sleep(args.delay)
        said = request.prompt.rsplit("user: ", 1)[-1].strip()
        return {"memory": [{"event": "ADD", "text": f"User said: {said}"}]}

    fake.responder = answer
    try:
        with tempfile.TemporaryDirectory() as tmp:
            waiting = asyncio.run(run("waiting", fake, args.adds, Path(tmp)))
            background = asyncio.run(run("background", fake, args.adds, Path(tmp)))
    finally:
        fake.stop()
    result = {
        "model_delay_s": args.delay,
        "adds": args.adds,
        "waiting": waiting,
        "background": background,
        "p50_ratio_background_vs_waiting": round(background["p50_ms"] / waiting["p50_ms"], 4),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
