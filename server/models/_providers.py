"""Which provider LiteLLM routes a model to, and the credentials it needs: what is known of a
model before any request (``LLMClient._api``), so that a mistyped name or a missing key is said as
a setting to fix, never as a provider's failure after retries."""

from __future__ import annotations

import os
from types import ModuleType

from memorch.models._resilience import UnknownProviderError

ENV_HINT = "MEMORCH_LLM"

# Servers that answer without a key (a local Ollama, vLLM, LM Studio, llamafile): an empty
# ``OLLAMA_API_KEY`` there is no missing key.
KEYLESS_PROVIDERS = frozenset(("ollama", "ollama_chat", "hosted_vllm", "vllm", "lm_studio", "llamafile"))


def check_routable(litellm: ModuleType, model: str, api_base: str | None = None) -> None:
    """``UNKNOWN_LLM_PROVIDER`` for a model LiteLLM routes to no provider (``openia/x``, a bare
    ``my-model``): it refused the request itself, which read as "rejected the request (HTTP 400)"
    and sent the user to a server that never saw it (a newcomer's trial, 2026-12-07).
    ``api_base``: the model's, from which LiteLLM also knows a provider (a bare ``mistral-small``
    at ``https://api.mistral.ai/v1``)."""
    try:
        litellm.get_llm_provider(model, api_base=api_base)
    except litellm.exceptions.BadRequestError as exc:
        prefix = model.split("/", 1)[0] if "/" in model else None
        said = f"no provider {prefix!r}" if prefix else "no provider prefix"
        raise UnknownProviderError(
            f"LiteLLM cannot route the model {model!r}: {said}",
            details={"model": model},
            suggestion=f"name it with its provider in {ENV_HINT}_MODEL: openai/NAME for an OpenAI-compatible "
            f"server (llama.cpp, vLLM, LM Studio; with {ENV_HINT}_API_BASE ending in /v1), ollama_chat/NAME "
            "for Ollama, anthropic/NAME, gemini/NAME (docs/llm-setup.md)",
        ) from exc


def missing_keys(litellm: ModuleType, model: str) -> list[str]:
    """The provider's key variables LiteLLM would need and the environment lacks (its own check);
    an unset ``*_API_BASE`` is no credential (Ollama's has a default)."""
    missing = litellm.validate_environment(model=model).get("missing_keys") or []
    missing = [name for name in missing if not name.endswith("_API_BASE")]
    if not missing:  # LiteLLM counts a variable set to "" as a key; the provider then refuses it
        try:
            provider = litellm.get_llm_provider(model)[1]
        except litellm.exceptions.BadRequestError:  # no provider LiteLLM knows: its request says so
            return []
        variable = f"{provider.upper()}_API_KEY"
        if provider not in KEYLESS_PROVIDERS and variable in os.environ and not os.environ[variable].strip():
            missing = [variable]
    return missing
