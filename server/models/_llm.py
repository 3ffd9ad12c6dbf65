"""Structured LLM calls through LiteLLM: the schema sent in the form the endpoint enforces
(``_structured``: probed once per model, API base and server version), tolerant parsing
everywhere (reasoning blocks stripped), one repair attempt, ordered fallback models.

LiteLLM is imported on first use, by ``_litellm``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from memorch.config import MemoryConfig
from memorch.errors import AuthenticationError, MemoryError, MissingCredentialsError, NetworkError, ValidationError
from memorch.models._litellm import import_litellm, litellm_loaded
from memorch.models._providers import ENV_HINT, check_routable, missing_keys
from memorch.models._replies import fields_wrong, parse_reply, reply_json
from memorch.models._resilience import ModelRejectedError, Resilience, UnknownProviderError
from memorch.models._structured import (
    PROBE_MAX_TOKENS,
    PROBE_MESSAGES,
    PROBE_RETRY_S,
    PROBE_TITLE,
    ProbeFailed,
    Server,
    Structure,
    StructureCache,
    chosen_by_setting,
    identify,
    run_probe,
    unprobed,
)
from memorch.models._wire import request_params, with_schema_in_prompt

log = logging.getLogger("memorch.llm")
M = TypeVar("M", bound=BaseModel)


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
# vLLM) ignore it, and one that does check answers 401 (a MissingCredentialsError naming the
# setting: ``_placeholder_refused``).
NO_KEY = "memorch-no-key"
# A server reporting a context window this small gets the compact prompt (MEMORCH_LLM_PROMPT=auto).
COMPACT_CONTEXT = 4096
# What of an unusable reply goes back in the repair request: a runaway reply from a small model
# would otherwise push the repair past its context window.
REPAIR_ECHO_CHARS = 2000


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema as strict structured output wants it: references inlined, every
    property required, no additional properties, no titles."""
    raw = model.model_json_schema()
    definitions = raw.pop("$defs", {})

    def strict(node: Any) -> Any:
        if isinstance(node, list):
            return [strict(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return strict(definitions[node["$ref"].rsplit("/", 1)[-1]])
        out = {k: strict(v) for k, v in node.items() if k not in ("title", "default", "description")}
        if out.get("type") == "object" and "properties" in out:
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    return strict(raw)  # type: ignore[no-any-return]


@dataclass
class LLMStats:
    requests: int = 0  # answered requests, repairs included; probes apart
    prompt_tokens: int = 0
    fallbacks_used: int = 0
    repairs: int = 0
    probe_requests: int = 0
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
        self._cache = StructureCache(config.data_dir)
        self._structures: dict[str, tuple[Structure, float]] = {}  # model -> (decision, when)
        self._structure_lock = threading.Lock()

    def missing_credentials(self) -> MissingCredentialsError | UnknownProviderError | None:
        """The first model's ``MissingCredentialsError`` (or ``UnknownProviderError``) when no
        configured model has the key it needs or a provider LiteLLM routes to (known without a
        request, and no retry can mend it); None when one could be asked,
        and while LiteLLM is still loading: an add never waits seconds for that import (the server
        starts it at launch), and background inference meets the same error on its first try."""
        if not litellm_loaded():
            return None
        litellm = import_litellm()
        problems = []
        for model in self.models:
            try:
                self._api(litellm, model)
            except (MissingCredentialsError, UnknownProviderError) as exc:
                problems.append(exc)
                continue
            return None
        return problems[0]

    def structured(self, messages: list[dict[str, str]], schema: type[M], wire: dict[str, Any] | None = None) -> M:
        """Ask each model in turn until one returns a reply that validates against ``schema``.
        ``wire``: the JSON schema sent to the model (default: ``schema``'s, made strict)."""
        wire = wire if wire is not None else strict_schema(schema)
        failures: list[MemoryError] = []
        for position, model in enumerate(self.models):
            try:
                reply = self._structured_from(model, messages, schema, wire)
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
            suggestion=failures[-1].next_step,
        )

    def _structured_from(self, model: str, messages: list[dict[str, str]], schema: type[M], wire: dict[str, Any]) -> M:
        structure = self.structure(model)
        if structure.schema_in_prompt:
            messages = with_schema_in_prompt(messages, wire)
        text = self._complete(model, messages, structure, schema.__name__, wire)
        try:
            return parse_reply(text, schema)
        except (ValueError, PydanticValidationError) as first_error:
            echo = (text or "")[:REPAIR_ECHO_CHARS]
            retry = [*messages, {"role": "assistant", "content": echo}, repair_message(str(first_error))]
            self.stats.repairs += 1
            text = self._complete(model, retry, structure, schema.__name__, wire)
            try:
                return parse_reply(text, schema)
            except (ValueError, PydanticValidationError) as exc:
                # JSON of another shape is not "no JSON": a user checking the server's JSON mode
                # was sent the wrong way (a newcomer's trial, 2026-12-07).
                said = (
                    f"returned JSON that does not have the reply's shape ({fields_wrong(exc)})"
                    if isinstance(exc, PydanticValidationError)
                    else "did not return valid JSON"
                )
                raise LLMOutputError(
                    f"{model} {said}, even after a repair request",
                    details={
                        "model": model,
                        "schema": schema.__name__,
                        "error": str(exc)[:500],
                        "reply": (text or "")[:500],
                    },
                    suggestion="use a model that follows JSON instructions (MEMORCH_LLM_MODEL) or add "
                    "MEMORCH_LLM_FALLBACKS; an add that meets this keeps what was said for `memorch reprocess`",
                ) from exc

    # -- which form of structured output ------------------------------------------------------

    def structure(self, model: str) -> Structure:
        """How ``model``'s requests carry the schema: decided once (setting, LiteLLM's model map,
        the on-disk cache, or a probe) and kept; a probe the server could not answer is
        retried after ``PROBE_RETRY_S``."""
        with self._structure_lock:
            known = self._structures.get(model)
            if known is not None and (known[0].how != "unprobed" or time.monotonic() - known[1] < PROBE_RETRY_S):
                return known[0]
            decided = self._decide(model)
            self._structures[model] = (decided, time.monotonic())
            return decided

    def _decide(self, model: str) -> Structure:
        litellm = import_litellm()
        base = self._api(litellm, model).get("api_base")
        ollama = model.split("/", 1)[0] in ("ollama", "ollama_chat")
        if base is None and not ollama:
            return self._hosted(litellm, model)
        base = base or "http://localhost:11434"
        server = identify(base, ollama)
        setting = self.config.llm_structured
        if setting != "auto":
            return chosen_by_setting(setting, server)
        key = StructureCache.key(model, base, server)
        cached = self._cache.get(key, server)
        if cached is not None:
            return cached
        try:
            decided = run_probe(server, lambda *form: self._probe(litellm, model, server, *form), reply_json)
        except ProbeFailed as exc:
            log.warning("could not probe %s's structured output (%s); assuming the usual form", model, exc)
            return unprobed(chosen_by_setting("schema", server))
        log.info("structured output for %s: %s", model, decided.describe())
        self._cache.put(key, decided)
        return decided

    def _hosted(self, litellm: ModuleType, model: str) -> Structure:
        """A hosted provider: LiteLLM's model map says whether it enforces a schema."""
        server = Server("hosted")
        setting = self.config.llm_structured
        if setting != "auto":
            return chosen_by_setting(setting, server)
        try:
            if litellm.supports_response_schema(model=model):
                return Structure("json_schema", "model map", server)
            params = litellm.get_supported_openai_params(model=model) or []
        except (ValueError, KeyError, TypeError) as exc:  # unknown to LiteLLM's model map
            log.debug("no capability data for %s: %s", model, exc)
            params = []
        return Structure("json" if "response_format" in params else "prompt", "model map", server)

    def _probe(
        self, litellm: ModuleType, model: str, server: Server, form: str, think_off: bool, schema: dict[str, Any]
    ) -> str | None:
        """One probe request, outside the retries and the circuit breaker (a refused form is
        an answer here, not a failure)."""
        trial = Structure(form, "probe", server, think_off)
        kwargs = self._request(litellm, model, PROBE_MESSAGES, trial, PROBE_TITLE, schema)
        kwargs["max_tokens"] = PROBE_MAX_TOKENS
        self.stats.probe_requests += 1
        return _content(litellm.completion(**kwargs))

    def structure_report(self) -> str:
        """``memorch doctor``'s line: each model's form of structured output and why."""
        return "; ".join(f"{model}: {self.structure(model).describe()}" for model in self.models)

    def compact_prompt(self) -> bool:
        """Whether inference uses the compact prompt: ``MEMORCH_LLM_PROMPT``, or (``auto``) the
        primary model's server reports a context window of at most ``COMPACT_CONTEXT`` tokens."""
        if self.config.llm_prompt != "auto":
            return self.config.llm_prompt == "compact"
        try:
            server = self.structure(self.models[0]).server
        except (MissingCredentialsError, UnknownProviderError):
            return False  # the primary cannot be asked: its fallbacks are, with the full prompt
        context = self.config.llm_num_ctx if server.kind == "ollama" else server.context
        return context is not None and context <= COMPACT_CONTEXT

    # -- requests -------------------------------------------------------------------------------

    def _api(self, litellm: ModuleType, model: str) -> dict[str, Any]:
        """api_base / api_key apply to models of the primary model's provider. A model that needs
        a key and has none is a ``MissingCredentialsError`` before any request: waiting and
        retrying cannot make a key appear (it was reported as a network error after 20 s)."""
        provider = self.config.llm_model.split("/", 1)[0]
        api: dict[str, Any] = {}
        if model.split("/", 1)[0] == provider:
            api = {k: v for k, v in (("api_base", self.config.llm_api_base), ("api_key", self.config.llm_api_key)) if v}
        check_routable(litellm, model, api.get("api_base"))
        if "api_key" in api:
            return api
        missing = missing_keys(litellm, model)
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

    def _request(
        self,
        litellm: ModuleType,
        model: str,
        messages: list[dict[str, str]],
        structure: Structure,
        name: str,
        wire: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "model": model,
            "messages": messages,
            "temperature": 0,
            "timeout": self.config.llm_timeout,
            # memorch owns retries (resilience.py): LiteLLM's and the OpenAI SDK's are off.
            "num_retries": 0,
            "max_retries": 0,
            **self._api(litellm, model),
            **request_params(structure, name, wire, self.config.llm_num_ctx),
        }

    def _complete(
        self, model: str, messages: list[dict[str, str]], structure: Structure, name: str, wire: dict[str, Any]
    ) -> str | None:
        litellm = import_litellm()
        kwargs = self._request(litellm, model, messages, structure, name, wire)
        retry_timeouts = not structure.server.keeps_computing
        try:
            response = self.resilience.call(
                model,
                litellm.completion,
                ENV_HINT,
                retry_timeouts=retry_timeouts,
                timeout_setting="MEMORCH_LLM_TIMEOUT",
                **kwargs,
            )
        except AuthenticationError as exc:
            if kwargs.get("api_key") != NO_KEY:
                raise
            raise _placeholder_refused(model, exc) from exc
        self.stats.count(_prompt_tokens(litellm, model, messages, response))
        return _content(response)


def _placeholder_refused(model: str, refused: AuthenticationError) -> MissingCredentialsError:
    """A server at MEMORCH_LLM_API_BASE refused the placeholder key sent when none is set (a local
    server needs none): the setting to fix is the missing key, not a wrong one (a newcomer was
    told "refused the credentials" for a key they had never set)."""
    return MissingCredentialsError(
        f"{model} needs an API key: {ENV_HINT}_API_BASE's server refused the request without one "
        f"(HTTP {refused.details.get('status')}; no {ENV_HINT}_API_KEY is set, so memorch sent a placeholder, "
        "as for a local server that needs none)",
        details={**refused.details, "variables": [f"{ENV_HINT}_API_KEY"]},
        suggestion=f"set {ENV_HINT}_API_KEY to the key that server expects",
    )


def _content(response: Any) -> str | None:
    """The reply's text; None when there is none, as for a reply with no choice at all (a server
    that cannot complete a request may answer 200 with ``"choices": []``; indexing it was an
    IndexError, an INTERNAL_ERROR that lost the add)."""
    choices = getattr(response, "choices", None) or []
    return choices[0].message.content if choices else None  # type: ignore[no-any-return]


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
