"""docs/llm-setup.md's recipes run as written (issue 28 item 3).

Each recipe's shell block runs in bash with `memorch` on the PATH, a fresh data directory and no
other MEMORCH_* setting. Its server is the local stand-in (tests/fake_llm.py speaks OpenAI's,
Ollama's and Anthropic's routes): the addresses a recipe names for a local server are pointed at
it, and the hosted providers' base URL variables too (never part of a recipe). The model's reply
must come back as the add's facts, not as a degraded verbatim store.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .fake_llm import FakeLLM
from .mcp_helpers import server_env

PAGE = Path(__file__).resolve().parent.parent / "docs" / "llm-setup.md"
FACT = "User moved to Lisbon in March"
# The recipe (its heading) -> the model name the server must be asked for.
RECIPES = {
    "OpenAI": "gpt-4.1-mini",
    "Anthropic": "claude-haiku-4-5",
    "Ollama": "llama3.1",
    "llama.cpp's server": "local-model",
    "llama-cpp-python's server": "local-model",
    "Any OpenAI-compatible endpoint": "my-model",
}
# The stand-in imitates the recipe's server (tests/fake_llm.py routes), and the add must carry
# its schema in the form that server enforces (found by memorch's probe).
ROUTES = {"Ollama": "ollama", "llama.cpp's server": "llama-server", "llama-cpp-python's server": "llama-cpp-python"}
FORMS = {"ollama": "format", "llama-server": "json_schema", "llama-cpp-python": "json_object+schema"}


def recipes() -> dict[str, str]:
    """Heading -> the first bash block under it."""
    found: dict[str, str] = {}
    for section in re.split(r"^## ", PAGE.read_text(), flags=re.MULTILINE)[1:]:
        heading, _, body = section.partition("\n")
        block = re.search(r"```bash\n(.*?)```", body, re.DOTALL)
        if block:
            found[heading.strip()] = block.group(1)
    return found


def test_every_recipe_is_tested() -> None:
    assert set(recipes()) == set(RECIPES)


def _form(body: dict) -> str:
    if "format" in body:
        return "format"
    response_format = body.get("response_format") or {}
    return response_format.get("type", "none") + ("+schema" if "schema" in response_format else "")


@pytest.mark.parametrize("name", RECIPES)
def test_the_recipe_runs_as_written(name: str, tmp_path: Path) -> None:
    fake = FakeLLM(route=ROUTES.get(name, "openai")).start()
    try:
        _run_recipe(name, tmp_path, fake)
    finally:
        fake.stop()


def _run_recipe(name: str, tmp_path: Path, fake: FakeLLM) -> None:
    script = recipes()[name]
    root = fake.url.removesuffix("/v1")
    # Local servers' addresses, as the recipes write them, are the stand-in's.
    script = script.replace("http://localhost:11434", root)
    script = re.sub(r"http://127\.0\.0\.1:\d+/v1", fake.url, script)
    env = server_env(tmp_path / "data")
    env.pop("MEMORCH_GRAPH", None)
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        env.pop(variable, None)
    env.update(OPENAI_BASE_URL=fake.url, OPENAI_API_BASE=fake.url, ANTHROPIC_API_BASE=root)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    fake.push({"memory": [{"event": "ADD", "text": FACT}]})
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(rf"^ADD\s+\S+\s+{FACT}", done.stdout, re.MULTILINE), done.stdout + done.stderr[-2000:]
    assert "stored as said" not in done.stdout
    assert [request.model for request in fake.chat_requests()] == [RECIPES[name]]
    if name in ROUTES:
        assert _form(fake.chat_requests()[0].body) == FORMS[ROUTES[name]]


def test_without_its_key_a_hosted_recipe_says_which_variable_at_once(tmp_path: Path, fake: FakeLLM) -> None:
    script = "\n".join(line for line in recipes()["Anthropic"].splitlines() if "API_KEY" not in line)
    env = server_env(tmp_path / "data")
    env.pop("ANTHROPIC_API_KEY", None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MISSING_CREDENTIALS" in done.stdout and "ANTHROPIC_API_KEY" in done.stdout
    assert fake.chat_requests() == []


async def test_an_api_base_nothing_listens_at_is_said_as_a_refused_connection(tmp_path: Path) -> None:
    """LiteLLM raises a refused connection as InternalServerError with status 500: the add said
    "status 500" and "InternalServerError" of a server that never answered (a newcomer's trial,
    2026-12-07). The innermost cause is what happened."""
    import socket

    from memorch import AsyncMemory, MemoryConfig

    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens at once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {"llm_model": "openai/my-model", "llm_api_base": f"http://127.0.0.1:{port}/v1", "llm_api_key": "k"}
    config = MemoryConfig(data_dir=tmp_path / "data", graph="off", llm_max_retries=0, **settings)
    async with AsyncMemory(config) as memory:
        added = await memory.add("I moved to Lisbon in March", user_id="u")
    assert added["degraded"] is True
    assert "[NETWORK_ERROR] openai/my-model could not be reached: " in added["reason"]
    assert "Connection refused" in added["reason"]  # the OS's words (Linux: "[Errno 111] Connection refused")
    assert "InternalServerError" not in added["reason"] and "500" not in added["reason"]


async def test_a_slow_model_and_a_rate_limit_are_told_from_a_dead_endpoint(tmp_path: Path, fake: FakeLLM) -> None:
    """A model slower than MEMORCH_LLM_TIMEOUT, and one rate-limited, were "could not be reached"
    with advice for a dead endpoint, "status 408" that no server sent, and "falls back
    automatically" with no fallback configured (a newcomer's trial, 2026-12-07)."""
    from memorch import AsyncMemory
    from memorch.errors import NetworkError

    from .conftest import fake_llm_config
    from .fake_llm import Delay, Failure

    config = fake_llm_config(tmp_path, fake, llm_timeout=0.5, llm_max_retries=0)
    async with AsyncMemory(config) as memory:
        llm = memory.engine.components.llm
        fake.push(Delay(2.0, {"memory": []}))
        with pytest.raises(NetworkError) as slow:
            llm.structured([{"role": "user", "content": "hi"}], _Reply)
        fake.push(Failure(429))
        with pytest.raises(NetworkError) as limited:
            llm.structured([{"role": "user", "content": "hi"}], _Reply)
    assert slow.value.error_code == "MODEL_TIMEOUT" and "did not answer within 0.5 s" in slow.value.message
    assert "raise MEMORCH_LLM_TIMEOUT" in slow.value.suggestion and slow.value.details["status"] is None
    assert limited.value.error_code == "RATE_LIMITED" and limited.value.details["status"] == 429
    for said in (slow.value.suggestion, limited.value.suggestion):
        assert "MEMORCH_LLM_FALLBACKS are tried next, if any" in said and "automatically" not in said


class _Reply(__import__("pydantic").BaseModel):
    memory: list[dict]


@pytest.mark.parametrize("model", ["openia/my-model", "my-model"])
async def test_a_model_no_provider_routes_is_a_setting_to_fix(tmp_path: Path, fake: FakeLLM, model: str) -> None:
    """A mistyped or missing provider prefix: LiteLLM refused the request itself, and the add said
    the model "rejected the request (HTTP 400)" of a server that never saw it (a newcomer's trial)."""
    from memorch import AsyncMemory

    from .conftest import fake_llm_config

    config = fake_llm_config(tmp_path, fake).model_copy(update={"llm_model": model})
    async with AsyncMemory(config) as memory:
        added = await memory.add("I play chess on Sundays", user_id="u")
        checks = {c["name"]: c for c in await memory.doctor()}
    assert added["degraded"] is True and "[UNKNOWN_LLM_PROVIDER]" in added["reason"]
    assert "HTTP 400" not in added["reason"] and fake.chat_requests() == []
    # Typed, and each event says the model failed ("(no inference)" read as no LLM configured).
    assert added["model_error"]["error_code"] == "UNKNOWN_LLM_PROVIDER" and added["model_error"]["suggestion"]
    assert added["results"][0]["reason"].startswith("stored as said: the model gave no usable answer (UNKNOWN")
    [llm] = [c for name, c in checks.items() if name.startswith("LLM")]
    assert not llm["ok"] and llm["error"]["error_code"] == "UNKNOWN_LLM_PROVIDER"
    assert "openai/NAME" in llm["error"]["suggestion"]


def test_a_connection_that_never_opened_is_unreachable_not_slow() -> None:
    """A host that drops the connection attempt (a wrong address, a VPN down) times out too: that
    is "could not be reached", not a slow model to give more time (a review's finding)."""
    import httpx
    import openai

    from memorch.models._resilience import translate

    def timed_out(cause: Exception) -> Exception:
        error = openai.APITimeoutError(request=httpx.Request("POST", "http://10.0.0.9/v1/chat/completions"))
        error.__cause__ = cause
        return error

    never = translate(
        timed_out(httpx.ConnectTimeout("timed out")), "openai/m", "MEMORCH_LLM", ("MEMORCH_LLM_TIMEOUT", 60)
    )
    slow = translate(timed_out(httpx.ReadTimeout("timed out")), "openai/m", "MEMORCH_LLM", ("MEMORCH_LLM_TIMEOUT", 60))
    assert never.error_code == "NETWORK_ERROR" and "could not be reached: timed out" in never.message
    assert "MEMORCH_LLM_API_BASE" in never.suggestion and "MEMORCH_LLM_TIMEOUT" not in never.suggestion
    assert slow.error_code == "MODEL_TIMEOUT" and "within 60 s" in slow.message
    embedder = translate(httpx.ConnectError("refused"), "openai/text-embedding-3-small", "MEMORCH_EMBEDDER")
    assert "MEMORCH_LLM_FALLBACKS" not in embedder.suggestion  # the LLM's fallbacks are no embedder's


def test_a_provider_named_by_the_api_base_is_routable() -> None:
    """LiteLLM knows some providers by their API base: a bare ``mistral-small`` at Mistral's."""
    from memorch.models._llm import import_litellm
    from memorch.models._providers import check_routable
    from memorch.models._resilience import UnknownProviderError

    litellm = import_litellm()
    check_routable(litellm, "mistral-small", "https://api.mistral.ai/v1")
    check_routable(litellm, "openai/my-model", "http://127.0.0.1:8000/v1")
    with pytest.raises(UnknownProviderError):
        check_routable(litellm, "my-model", "http://127.0.0.1:8000/v1")


async def test_a_mistyped_primary_model_leaves_the_fallbacks_to_answer(
    tmp_path: Path, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check on the primary model's name must not stop its fallbacks (a review's finding:
    the compact-prompt choice asked the primary first, outside the loop over the models)."""
    from memorch import AsyncMemory, MemoryConfig

    monkeypatch.setenv("OPENAI_API_BASE", fake.url)  # the fallback's provider differs: its own base
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    fake.push({"memory": [{"event": "ADD", "text": "User plays chess"}]})
    config = MemoryConfig(
        data_dir=tmp_path / "data", graph="off", llm_model="openia/my-model", llm_fallbacks="openai/backup-model"
    )
    async with AsyncMemory(config) as memory:
        added = await memory.add("I play chess", user_id="u")
    assert "degraded" not in added and [r["memory"] for r in added["results"]] == ["User plays chess"]
    assert [r.model for r in fake.chat_requests()] == ["backup-model"]
