"""Structured LLM calls through LiteLLM: schema-constrained where the provider supports it,
tolerant parsing everywhere, one repair attempt, ordered fallback models.

LiteLLM is imported only on the first call (it costs ~3 s and, by default, fetches a cost map
from the internet: we point it at its bundled copy and switch its telemetry off).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from memorch.config import MemoryConfig
from memorch.errors import AuthenticationError, MemoryError, MissingCredentialsError, NetworkError, ValidationError
from memorch.models._resilience import ModelRejectedError, Resilience

log = logging.getLogger("memorch.llm")
M = TypeVar("M", bound=BaseModel)
ENV_HINT = "MEMORCH_LLM"


@cache
def import_litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


class LLMOutputError(ValidationError, code="LLM_OUTPUT_INVALID"):
    """The model answered, but not with JSON that fits the expected shape (after a repair)."""


# What "no model could answer" means, and so what sends an add to degraded mode: a provider
# that stayed unreachable, timed out or kept failing (5xx/429) after the retries, an open
# circuit, missing or refused credentials, a request the model rejected, or a reply that still
# did not validate after the one repair request. Bad user input and bugs are not model failures:
# they propagate to the caller.
MODEL_FAILURES: tuple[type[MemoryError], ...] = (
    NetworkError,
    AuthenticationError,
    MissingCredentialsError,
    ModelRejectedError,
    LLMOutputError,
)
# The key sent to a self-hosted endpoint (MEMORCH_LLM_API_BASE) when no key is set anywhere: the
# OpenAI SDK refuses to send a request without one, servers that check none (llama.cpp, Ollama,
# vLLM) ignore it, and one that does check answers 401 (an AuthenticationError naming the setting).
NO_KEY = "memorch-no-key"


def extract_json(text: str) -> Any:
    """The JSON value in a reply that may wrap it in code fences or prose: the whole reply
    when it parses, else the first object, or the first list of objects, found in the text."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(stripped) if ch in "{["):
        try:
            value, _ = decoder.raw_decode(stripped[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return value  # a bare list of objects; "[1]" or "[note]" in prose is skipped
    raise ValueError("no JSON object found in the reply")


def parse_reply(text: str | None, schema: type[M]) -> M:
    if not text:
        raise ValueError("the reply was empty")
    return schema.model_validate(extract_json(text))


@dataclass
class LLMStats:
    requests: int = 0
    prompt_tokens: int = 0
    fallbacks_used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, prompt_tokens: int) -> None:
        with self._lock:
            self.requests += 1
            self.prompt_tokens += prompt_tokens


class LLMClient:
    """The configured model and its fallbacks, behind the shared retry/circuit layer."""

    def __init__(self, config: MemoryConfig, resilience: Resilience) -> None:
        self.config = config
        self.models = [config.llm_model, *config.llm_fallbacks]
        self.resilience = resilience
        self.stats = LLMStats()

    def structured(self, messages: list[dict[str, str]], schema: type[M]) -> M:
        """Ask each model in turn until one returns a reply that validates against ``schema``."""
        failures: list[MemoryError] = []
        for position, model in enumerate(self.models):
            try:
                reply = self._structured_from(model, messages, schema)
            except MODEL_FAILURES as exc:
                log.warning("model %s failed: %s", model, exc)
                failures.append(exc)
                continue
            if position:
                self.stats.fallbacks_used += 1
            return reply
        if len(failures) == 1:
            raise failures[0]
        raise NetworkError(
            f"all {len(failures)} models failed; last: {failures[-1].message}",
            error_code="ALL_MODELS_FAILED",
            details={"failures": [f.to_dict() for f in failures]},
            suggestion=failures[-1].suggestion,
        )

    def _structured_from(self, model: str, messages: list[dict[str, str]], schema: type[M]) -> M:
        text = self._complete(model, messages, schema)
        try:
            return parse_reply(text, schema)
        except (ValueError, PydanticValidationError) as first_error:
            retry = [*messages, {"role": "assistant", "content": text or ""}, repair_message(str(first_error))]
            text = self._complete(model, retry, schema)
            try:
                return parse_reply(text, schema)
            except (ValueError, PydanticValidationError) as exc:
                raise LLMOutputError(
                    f"{model} did not return valid JSON for {schema.__name__}, even after a repair request",
                    details={"model": model, "error": str(exc)[:500], "reply": (text or "")[:500]},
                    suggestion="use a model that follows JSON instructions (MEMORCH_LLM_MODEL) or add "
                    "MEMORCH_LLM_FALLBACKS; the messages were kept for `memorch reprocess`",
                ) from exc

    def _api(self, litellm: ModuleType, model: str) -> dict[str, Any]:
        """api_base / api_key apply to models of the primary model's provider. A model that needs
        a key and has none is a ``MissingCredentialsError`` before any request: waiting and
        retrying cannot make a key appear (it was reported as a network error after 20 s)."""
        provider = self.config.llm_model.split("/", 1)[0]
        api: dict[str, Any] = {}
        if model.split("/", 1)[0] == provider:
            api = {k: v for k, v in (("api_base", self.config.llm_api_base), ("api_key", self.config.llm_api_key)) if v}
        if "api_key" in api:
            return api
        missing = _missing_keys(litellm, model)
        if missing and "api_base" in api:
            return {**api, "api_key": NO_KEY}
        if missing:
            variables = " or ".join(missing)
            raise MissingCredentialsError(
                f"{model} needs an API key, and neither {ENV_HINT}_API_KEY nor {variables} is set",
                details={"model": model, "variables": [f"{ENV_HINT}_API_KEY", *missing]},
                suggestion=f"set {ENV_HINT}_API_KEY (or {variables}); a self-hosted server also needs "
                f"{ENV_HINT}_API_BASE, and then no key",
            )
        return api

    def _response_format(self, litellm: ModuleType, model: str, schema: type[BaseModel]) -> dict[str, Any] | None:
        try:
            if litellm.supports_response_schema(model=model):
                return {
                    "type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
                }
            params = litellm.get_supported_openai_params(model=model) or []
        except (ValueError, KeyError, TypeError) as exc:  # unknown to LiteLLM's model map
            log.debug("no capability data for %s: %s", model, exc)
            return None
        return {"type": "json_object"} if "response_format" in params else None

    def _complete(self, model: str, messages: list[dict[str, str]], schema: type[BaseModel]) -> str | None:
        litellm = import_litellm()
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": 0,
            "timeout": self.config.llm_timeout,
            # memorch owns retries (resilience.py): LiteLLM's and the OpenAI SDK's are off.
            "num_retries": 0,
            "max_retries": 0,
            **self._api(litellm, model),
        }
        response_format = self._response_format(litellm, model, schema)
        if response_format is not None:
            kwargs["response_format"] = response_format
        response = self.resilience.call(model, litellm.completion, ENV_HINT, **kwargs)
        self.stats.count(_prompt_tokens(litellm, model, messages, response))
        return response.choices[0].message.content  # type: ignore[no-any-return]


def _missing_keys(litellm: ModuleType, model: str) -> list[str]:
    """The provider's key variables LiteLLM would need and the environment lacks (its own check);
    an unset ``*_API_BASE`` is no credential (Ollama's has a default)."""
    missing = litellm.validate_environment(model=model).get("missing_keys") or []
    return [name for name in missing if not name.endswith("_API_BASE")]


def _prompt_tokens(litellm: ModuleType, model: str, messages: list[dict[str, str]], response: Any) -> int:
    usage = getattr(response, "usage", None)
    reported = getattr(usage, "prompt_tokens", None)
    if isinstance(reported, int) and reported > 0:
        return reported
    return int(litellm.token_counter(model=model, messages=messages))


def repair_message(error: str) -> dict[str, str]:
    """The one repair request: what was wrong with the reply, and to answer again in shape."""
    return {
        "role": "user",
        "content": f"Your reply could not be used: {error[:800]}\nReply again with only the corrected JSON object.",
    }
