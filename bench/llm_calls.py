"""LLM requests and prompt tokens per add, memorch vs mem0, on LOCOMO turns.

    python bench/llm_calls.py [--data ../shared/bench/locomo_dev.json] [--turns 200]
                              [--mem0-python /path/to/python-with-mem0ai]

Both systems talk to the same scripted OpenAI-compatible fake server (tests/fake_llm.py) on
127.0.0.1, get the same turns two at a time, and are given the same facts by the fake model
(one per turn), so the stores grow alike. The server logs every request; prompt tokens are
counted with LiteLLM's token counter for gpt-4.1-mini. mem0 runs in its own interpreter
(``--mem0-python``; install ``mem0ai`` there), never inside memorch's environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from locomo_protocol import load, turns  # noqa: E402

from tests.fake_llm import FakeLLM, Request  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "bench" / "locomo_dev.json"

TOKEN_MODEL = "gpt-4.1-mini"


def fact_for(line: str) -> str:
    speaker, _, text = line.partition(": ")
    return f"{speaker.strip()} mentioned that {text.strip()[:90]}"


def conversation_lines(request: Request) -> list[str]:
    """The turns a request carries (memorch: after CONVERSATION:, mem0: its new-messages block)."""
    prompt = request.body["messages"][-1]["content"]
    if "CONVERSATION:" in prompt:
        block = prompt.split("CONVERSATION:", 1)[1]
        return [line.split("] ", 1)[-1].split(": ", 1)[1] for line in block.strip().splitlines() if ": " in line]
    block = prompt.split("## New Messages", 1)[1].split("\n## ", 1)[0]
    return [line.split(": ", 1)[1] for line in block.strip().splitlines() if ": " in line]


def responder(request: Request) -> dict:
    facts = [fact_for(line) for line in conversation_lines(request)]
    if "CONVERSATION:" in request.body["messages"][-1]["content"]:
        return {"memory": [{"event": "ADD", "text": f} for f in facts]}
    return {"memory": [{"id": str(i), "text": f, "attributed_to": "user"} for i, f in enumerate(facts)]}


def batches(data_path: Path, n_turns: int) -> list[dict]:
    out, pending = [], []
    for sample in load(data_path):
        for turn in turns(sample):
            pending.append(turn)
            if len(pending) == 2:
                out.append(
                    {
                        "messages": [{"role": "user", "content": t.content} for t in pending],
                        "user_id": sample["sample_id"],
                        "metadata": {"date": pending[-1].date},
                    }
                )
                pending = []
            if len(out) * 2 >= n_turns:
                return out
    return out


def tokens(requests: list[Request]) -> list[int]:
    from memorch.models._llm import import_litellm

    litellm = import_litellm()
    return [litellm.token_counter(model=TOKEN_MODEL, messages=r.body["messages"]) for r in requests]


async def run_memorch(fake: FakeLLM, work: Path, plan: list[dict]) -> None:
    from memorch import AsyncMemory, MemoryConfig

    memory = AsyncMemory(
        MemoryConfig(
            data_dir=work, graph="off", llm_model=f"openai/{TOKEN_MODEL}", llm_api_base=fake.url, llm_api_key="bench"
        )
    )
    for batch in plan:
        await memory.add(batch["messages"], user_id=batch["user_id"], metadata=batch["metadata"])
    await memory.close()


def summarize(name: str, adds: int, requests: list[Request]) -> dict:
    counted = tokens(requests)
    return {
        "system": name,
        "adds": adds,
        "llm_requests": len(requests),
        "requests_per_add": round(len(requests) / adds, 3),
        "prompt_tokens_per_add": round(sum(counted) / adds, 1),
        "prompt_tokens_p50_per_request": statistics.median(counted) if counted else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--mem0-python")
    args = parser.parse_args()
    plan = batches(args.data, args.turns)
    fake = FakeLLM().start()
    fake.responder = responder
    rows = []
    with tempfile.TemporaryDirectory() as work:
        asyncio.run(run_memorch(fake, Path(work) / "memorch", plan))
        rows.append(summarize("memorch", len(plan), fake.chat_requests()))
        if args.mem0_python:
            fake.requests.clear()
            subprocess.run(
                [args.mem0_python, str(ROOT / "bench" / "_mem0_add.py"), fake.url, "16"],
                input=json.dumps(plan),
                text=True,
                check=True,
                capture_output=True,
            )
            rows.append(summarize("mem0ai", len(plan), fake.chat_requests()))
    fake.stop()
    for row in rows:
        print(
            f"{row['system']:>8}: {row['adds']} adds, {row['requests_per_add']} LLM requests/add, "
            f"{row['prompt_tokens_per_add']} prompt tokens/add"
        )
    result = {"turns": len(plan) * 2, "rows": rows}
    if len(rows) == 2:
        result["ratio_tokens_memorch_over_mem0"] = round(
            rows[0]["prompt_tokens_per_add"] / rows[1]["prompt_tokens_per_add"], 2
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
