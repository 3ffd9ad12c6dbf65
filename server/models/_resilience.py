"""Retries, circuit breakers and error translation for every remote model call.

- Retry with exponential backoff and full jitter on connection errors, timeouts, 429 (honouring
  Retry-After) and 5xx; never on 400/401/403/404 (they will not get better by waiting), nor on a
  500 that names what was invalid in the request (llama-cpp-python's way to refuse a field), nor
  on a timeout when the caller says the server goes on computing a request it gave up on (a
  local model server: the retry would queue behind the first).
- Only a failed call counts against a breaker: a model that answered — even off-shape, or
  refusing the request — is not an outage (``LLMClient`` judges the reply after ``call``).
- One circuit breaker per model: after ``circuit_failure_threshold`` consecutive failed calls
  it opens and calls fail fast; after ``circuit_cooldown`` seconds one trial call is let
  through (half-open); its success closes the circuit, its failure opens it again.
- Provider failures leave this module as memorch errors: ``AuthenticationError``,
  ``ModelRejectedError`` (a ``ValidationError``) or ``NetworkError``, each naming the setting
  to fix. A provider failure is an exception of the provider stack's own types (LiteLLM's
  exceptions all derive from the OpenAI SDK's; httpx's transport and status errors; socket
  timeouts and connection errors). Anything else — a ``TypeError``, a ``KeyError`` — is a bug:
  it propagates unchanged, is not retried and does not count against the circuit breaker.

Calls are synchronous and run on worker threads; the async orchestrator awaits them there,
so this logic exists once.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, TypeVar

from memorch.errors import AuthenticationError, MemoryError, NetworkError, ValidationError

T = TypeVar("T")
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ModelRejectedError(ValidationError, code="MODEL_REJECTED"):
    """The provider answered, but refused this request (HTTP 4xx other than 401/403/429):
    an unknown model name, an unsupported parameter, a prompt over the context window."""


class UnknownProviderError(ModelRejectedError, code="UNKNOWN_LLM_PROVIDER"):
    """A model name LiteLLM cannot route to any provider (a mistyped or missing prefix): known
    before any request, which LiteLLM refuses itself; said as a setting to fix."""


@cache
def provider_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the provider failed", never "memorch has a bug".

    Looked up only when a call has raised (``except provider_errors()`` evaluates lazily), so
    importing this module imports neither LiteLLM nor the OpenAI SDK; by then LiteLLM (which
    raised) has imported both. LiteLLM's exceptions subclass ``openai.OpenAIError``.
    """
    import httpx
    import openai

    return (openai.OpenAIError, httpx.HTTPError, TimeoutError, ConnectionError)


@cache
def _connection_errors() -> tuple[type[BaseException], ...]:
    import httpx
    import openai

    return (openai.APIConnectionError, httpx.TransportError, TimeoutError, ConnectionError)


@dataclass
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    last_error: MemoryError | None = None  # why, said while the breaker is open
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self.opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        with self._lock:
            if self.opened_at is None:
                return True
            if time.monotonic() - self.opened_at >= self.cooldown:
                # Half-open: let this one call try; until it reports, others keep failing fast.
                self.opened_at = time.monotonic()
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self, error: MemoryError) -> None:
        with self._lock:
            self.last_error = error
            self.failures += 1
            if self.failures >= self.threshold or self.opened_at is not None:
                self.opened_at = time.monotonic()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a provider error (LiteLLM/OpenAI put it on the exception, httpx on
    its response)."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@cache
def _timeouts() -> tuple[type[BaseException], ...]:
    import httpx
    import openai

    return (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)


def is_timeout(exc: BaseException) -> bool:
    """The request went out and no answer came in time (LiteLLM's ``Timeout`` is the OpenAI
    SDK's ``APITimeoutError``)."""
    return isinstance(exc, _timeouts())


def is_connection(exc: BaseException) -> bool:
    """No usable answer arrived: refused, reset, DNS, or timed out."""
    return connection_cause(exc) is not None


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or while handling, outermost first (once each)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _never_connected(exc: BaseException) -> BaseException | None:
    """The connection attempt itself timed out (a host that drops it, a wrong address, a VPN
    down): no server took the request, so it is "could not be reached", not a slow model."""
    import httpx

    return next((e for e in _causes(exc) if isinstance(e, httpx.ConnectTimeout)), None)


def connection_cause(exc: BaseException) -> BaseException | None:
    """The innermost connection failure ``exc`` came from ("[Errno 111] Connection refused"),
    or None. LiteLLM raises a refused connection as an ``InternalServerError`` with status 500
    whose causes are the OpenAI SDK's ``APIConnectionError`` and httpx's ``ConnectError``. An
    answer below 500 is an answer, whatever was being handled when it was raised."""
    if (status_of(exc) or 500) < 500:
        return None
    found = [e for e in _causes(exc) if isinstance(e, _connection_errors())]
    return found[-1] if found else None


# What a failing model's user is told memorch does about it: retries, then (the LLM's) fallbacks.
FALLBACKS = "the models of MEMORCH_LLM_FALLBACKS are tried next, if any"


def _then(env_hint: str) -> str:
    """What memorch does next: retries, then (for the LLM, not an embedder) the fallbacks."""
    return "memorch retries with backoff" + (f"; then {FALLBACKS}" if env_hint == "MEMORCH_LLM" else "")


def translate(exc: BaseException, model: str, env_hint: str, timeout: tuple[str, float] | None = None) -> MemoryError:
    """A provider failure (one of ``provider_errors()``) as the memorch error a user can act on.
    ``timeout``: the setting that bounds a request, and its value (``MEMORCH_LLM_TIMEOUT``)."""
    if isinstance(exc, MemoryError):
        return exc
    if is_timeout(exc) and not _never_connected(exc):  # LiteLLM says 408: no answer came, none was sent
        return _timed_out(exc, model, timeout, env_hint)
    refused = _never_connected(exc) or connection_cause(exc)
    status = None if refused is not None else status_of(exc)  # no HTTP exchange took place
    details = {"model": model, "status": status, "provider_error": str(exc)[:300]}
    if status == 429:
        return NetworkError(
            f"{model} is rate-limited (HTTP 429): {_short(str(exc))}",
            error_code="RATE_LIMITED",
            details=details,
            suggestion=f"wait, or send fewer requests (a plan with a higher limit); {_then(env_hint)}",
        )
    if status in (401, 403):
        return AuthenticationError(
            f"{model} refused the credentials (HTTP {status})",
            details=details,
            suggestion=f"set a valid API key in {env_hint}_API_KEY (or the provider's usual variable)",
        )
    # 501 Not Implemented (a server without this endpoint) and 505 come from a server that is up:
    # the request is refused, not the provider unreachable. Other 5xx (507, a proxy's 511,
    # Cloudflare's 52x) say the provider or the way to it is down.
    if status is not None and (400 <= status <= 500 or status in (501, 505)) and not _retryable(exc):
        # A 404 is as often an API base without its /v1 (the server is found, the route is not)
        # as a model the server does not know (a trial: MEMORCH_LLM_API_BASE=http://127.0.0.1:8000).
        where = f"{env_hint}_API_BASE" + (
            ", which for an OpenAI-compatible server ends in /v1" if status == 404 else ""
        )
        return ModelRejectedError(
            f"{model} rejected the request (HTTP {status}): {_short(str(exc))}",
            details=details,
            suggestion=f"check the model name in {env_hint}_MODEL (with its provider, e.g. openai/NAME) and {where}",
        )
    # A refused connection says so; LiteLLM's words for it ("InternalServerError") stay in details.
    said = f"could not be reached: {_short(str(refused))}" if refused is not None else None
    return NetworkError(
        f"{model} {said}" if said else f"{model} could not be reached or kept failing: {_short(str(exc))}",
        details=details,
        suggestion=f"check {env_hint}_API_BASE and that the provider is up; {_then(env_hint)}",
    )


def _timed_out(exc: BaseException, model: str, timeout: tuple[str, float] | None, env_hint: str) -> NetworkError:
    """A request a server took and did not answer in time: a slow (often local) model more than a
    dead one. A local server that keeps computing is not sent it again (``retry_timeouts``)."""
    details = {"model": model, "status": None, "provider_error": str(exc)[:300]}
    fallbacks = f"; {FALLBACKS}" if env_hint == "MEMORCH_LLM" else ""
    if timeout is None:
        return NetworkError(
            f"{model} did not answer in time",
            error_code="MODEL_TIMEOUT",
            details=details,
            suggestion=f"check that the provider is up and not overloaded{fallbacks}",
        )
    setting, seconds = timeout
    return NetworkError(
        f"{model} did not answer within {seconds:g} s ({setting})",
        error_code="MODEL_TIMEOUT",
        details={**details, "timeout_s": seconds},
        suggestion=f"raise {setting} for a slow or local model, or check that its server is not overloaded{fallbacks}",
    )


def circuit_open(model: str, breaker: CircuitBreaker) -> NetworkError:
    """A model not asked while its breaker is open, with the failure that opened it: "wait for the
    cool-down" alone hid a mistyped API base that nothing listens at (a newcomer's trial)."""
    last = breaker.last_error
    cause = f": {last.message}" if last is not None else ""
    return NetworkError(
        f"{model} is not asked for {breaker.cooldown:g} s after failing {breaker.failures} times in a row{cause}",
        error_code="CIRCUIT_OPEN",
        details={"model": model, "cooldown_s": breaker.cooldown, "last_error": last.to_dict() if last else None},
        suggestion=(f"{last.next_step}; " if last is not None and last.next_step else "")
        + "it is asked again after the cool-down, or configure fallbacks in MEMORCH_LLM_FALLBACKS",
    )


# LiteLLM's messages repeat its class names before the provider's words ("litellm.NotFoundError:
# NotFoundError: OpenAIException - model not found"): a reader sees the words (``details`` keeps
# the whole message).
_LITELLM_PREFIX = re.compile(r"^litellm\.\w+: (?:\w+: )?(?:\w+Exception - )?")


def _short(text: str, limit: int = 200) -> str:
    """``text`` without LiteLLM's class names, cut at a word to at most ``limit`` characters, "…"
    saying so (a cut mid-word read as the provider's own words: "pass in `com")."""
    text = _LITELLM_PREFIX.sub("", " ".join(text.split()))
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


# A 500 whose body says the request itself was invalid: llama-cpp-python's server answers a
# request its pydantic model refuses (``response_format`` of a type it does not know) with HTTP
# 500 and "Input should be ...". Waiting cannot fix the request, and the server is not down.
REQUEST_INVALID_MARKERS = ("Input should be", "validation error for", "Field required")


def _retryable(exc: BaseException) -> bool:
    """Worth another try: a connection failure or timeout, 429, or a transient 5xx (not a 500
    that names what was invalid in the request)."""
    status = status_of(exc)
    if status == 500 and not is_connection(exc) and any(m in str(exc) for m in REQUEST_INVALID_MARKERS):
        return False
    if status in RETRYABLE_STATUS:
        return True
    # LiteLLM reports a connection failure as APIConnectionError with status 500; a 4xx
    # status on a connection-typed error still means the request itself was refused.
    return is_connection(exc) and (status is None or status >= 500)


class Resilience:
    """Breakers and retry policy shared by every remote call of one memorch instance."""

    def __init__(self, policy: RetryPolicy, threshold: int, cooldown: float) -> None:
        self.policy = policy
        self._threshold, self._cooldown = threshold, cooldown
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()
        self.sleep: Callable[[float], None] = time.sleep  # tests may shorten waits

    def breaker(self, model: str) -> CircuitBreaker:
        with self._lock:
            if model not in self._breakers:
                self._breakers[model] = CircuitBreaker(self._threshold, self._cooldown)
            return self._breakers[model]

    def states(self) -> dict[str, str]:
        with self._lock:
            return {model: b.state for model, b in self._breakers.items()}

    def call(
        self,
        model: str,
        fn: Callable[..., T],
        env_hint: str,
        /,
        *,
        retry_timeouts: bool = True,
        timeout_setting: str | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(**kwargs)`` with retries behind ``model``'s breaker (``kwargs`` may hold
        ``model`` too: the parameters before ``/`` are positional-only). ``retry_timeouts=False``:
        a timed-out call counts as a failure but is not sent again. ``timeout_setting``: the
        setting whose value ``kwargs["timeout"]`` is, named when a request times out."""
        timeout = (timeout_setting, kwargs["timeout"]) if timeout_setting and "timeout" in kwargs else None
        breaker = self.breaker(model)
        attempt = 0
        while True:
            if not breaker.allow():
                raise circuit_open(model, breaker)
            try:
                result = fn(**kwargs)
            except provider_errors() as exc:  # anything else is a bug and propagates unchanged
                error = translate(exc, model, env_hint, timeout)
                if not _retryable(exc):  # our request or key is wrong; the model is not down
                    raise error from exc
                breaker.failure(error)
                if attempt >= self.policy.max_retries or (not retry_timeouts and is_timeout(exc)):
                    raise error from exc
                self.sleep(self.policy.delay(attempt, _retry_after(exc)))
                attempt += 1
                continue
            breaker.success()
            return result

    def caller(self, model: str, env_hint: str) -> Callable[..., Any]:
        """``call`` bound to one model, in the shape the embedders take."""

        def run(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
            return self.call(model, fn, env_hint, **kwargs)

        return run
