"""Which form of structured output an endpoint really enforces, found by a probe and cached.

Every server wants the schema somewhere else: hosted providers take OpenAI's ``response_format``
``json_schema`` (LiteLLM translates it: a forced tool for Anthropic, ``format`` for Ollama);
llama.cpp's ``llama-server`` and vLLM take ``json_schema`` too; llama-cpp-python's server rejects
it (HTTP 500, "Input should be 'text' or 'json_object'") and takes its own extension
``{"type": "json_object", "schema": ...}``; older vLLM wants ``guided_json``; Ollama's native
route wants ``format`` set to the schema (plus ``think: false`` for reasoning models, and
``num_ctx``, which its OpenAI route drops). And some servers accept a schema without enforcing
it: llama-cpp-python turns a schema its grammar converter cannot handle into plain JSON mode.

So on first use of a model at an API base, one tiny call per candidate form asks a question
whose answer the model could not guess: a schema with random key names and an enum of random
tokens (using what the real reply schemas use: nested objects, an array of ``anyOf`` variants,
enums, integers, no additional properties). A form is enforced when the reply conforms; the
first such form wins. When none does, JSON mode (or nothing) carries the request and the schema
goes into the prompt. Hosted providers (no API base) are not probed: LiteLLM's model map says
whether they enforce a schema. The decision is cached per model + API base + server version in
``<data dir>/llm_structure.json``; ``MEMORCH_LLM_STRUCTURED=schema|json|prompt`` overrides it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memorch._atomic import replace_file

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("memorch.llm")

CACHE_FILE = "llm_structure.json"
PROBE_TITLE = "memorch_probe"  # lets a test server tell the probe from real work
PROBE_MAX_TOKENS = 120
PROBE_RETRY_S = 300.0  # a probe the server could not answer is tried again after this
SCHEMA_FORMS = ("json_schema", "schema_extension", "guided_json", "ollama_format")
# How each form is worded by ``memorch doctor``.
FORM_WORDS = {
    "json_schema": "json_schema",
    "schema_extension": "response_format json_object + schema, llama-cpp-python's extension",
    "guided_json": "guided_json",
    "ollama_format": "Ollama format = schema",
    "json": "JSON mode only, schema in prompt",
    "prompt": "no JSON mode, schema in prompt",
}
# Candidate forms, in the order they are tried, per kind of server.
ORDER = {
    "llama-cpp-python": ("schema_extension", "json_schema", "json", "prompt"),
    "llama-server": ("json_schema", "schema_extension", "json", "prompt"),
    "vllm": ("json_schema", "guided_json", "json", "prompt"),
    "ollama": ("ollama_format", "json", "prompt"),
    "openai-compatible": ("json_schema", "schema_extension", "guided_json", "json", "prompt"),
}
# What MEMORCH_LLM_STRUCTURED=schema sends without probing.
ASSUMED = {kind: order[0] for kind, order in ORDER.items()}
SETTING_FORMS = {"json": "json", "prompt": "prompt"}


@dataclass(frozen=True)
class Server:
    """What answers at an API base, as far as its own endpoints say."""

    kind: str  # a key of ORDER, or "hosted"
    version: str | None = None
    context: int | None = None  # the context window it reports, in tokens

    @property
    def keeps_computing(self) -> bool:
        """A server people run beside memorch on one machine, which goes on computing a request
        whose client gave up: a retry after a timeout only queues behind it (llama-cpp-python
        serves one request at a time; a SmolLM2 add that timed out at 300 s was retried twice
        behind itself and failed after 1,403 s)."""
        return self.kind in ("llama-cpp-python", "llama-server", "ollama")


@dataclass(frozen=True)
class Structure:
    """The form of structured output one model's requests carry, and where that came from."""

    form: str  # a key of FORM_WORDS
    how: str  # "probed", "cached", "setting", "model map" (hosted), "unprobed" (the probe failed)
    server: Server
    think_off: bool = False  # Ollama: ``think: false`` is accepted

    @property
    def enforced(self) -> bool:
        return self.form in SCHEMA_FORMS

    @property
    def schema_in_prompt(self) -> bool:
        return not self.enforced

    def describe(self) -> str:
        """``memorch doctor``'s words: "enforced (json_schema)" or "JSON mode only, schema in prompt"."""
        words = f"enforced ({FORM_WORDS[self.form]})" if self.enforced else FORM_WORDS[self.form]
        server = self.server.kind + (f" {self.server.version}" if self.server.version else "")
        context = f", context {self.server.context} tokens" if self.server.context else ""
        return f"{words}; {self.how}, {server}{context}"


# -- the server at an API base --------------------------------------------------------------


def _get_json(client: httpx.Client, url: str) -> tuple[Any, dict[str, str]] | None:
    import httpx

    try:
        response = client.get(url)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json(), {k.lower(): v for k, v in response.headers.items()}
    except ValueError:
        return None


def identify(api_base: str, ollama_route: bool, timeout: float = 5.0) -> Server:
    """Ask the server what it is, from the endpoints each kind has: ``/api/version`` (Ollama),
    ``/v1/models`` (``owned_by``: llama-server says "llamacpp", vLLM "vllm"), ``/props``
    (llama-server's context), ``/version`` (vLLM), ``/openapi.json`` (llama-cpp-python's title
    and version). Nothing answering is an unknown OpenAI-compatible server."""
    import httpx

    root = api_base.rstrip("/").removesuffix("/v1")
    # One client for every question: each new client loads the CA bundle (0.1-0.2 s each on a
    # busy machine, three times for an unnamed OpenAI-compatible server).
    with httpx.Client(timeout=timeout) as client:
        return _identify(lambda path: _get_json(client, root + path), ollama_route)


def _identify(get: Callable[[str], tuple[Any, dict[str, str]] | None], ollama_route: bool) -> Server:
    """``identify``'s questions in order; ``get(path)`` is the answer at that path, or None."""
    if ollama_route:
        found = get("/api/version")
        version = found[0].get("version") if found and isinstance(found[0], dict) else None
        return Server("ollama", version)
    found = get("/v1/models")
    models = found[0].get("data") if found and isinstance(found[0], dict) else None
    first = models[0] if isinstance(models, list) and models and isinstance(models[0], dict) else {}
    owner = str(first.get("owned_by", "")).lower()
    if owner == "llamacpp" or "llama.cpp" in (found[1].get("server", "") if found else ""):
        props = get("/props")
        body = props[0] if props and isinstance(props[0], dict) else {}
        context = (body.get("default_generation_settings") or {}).get("n_ctx")
        return Server("llama-server", body.get("build_info"), context if isinstance(context, int) else None)
    if owner == "vllm":
        version = get("/version")
        context = first.get("max_model_len")
        return Server(
            "vllm",
            version[0].get("version") if version and isinstance(version[0], dict) else None,
            context if isinstance(context, int) else None,
        )
    ollama = get("/api/version")
    if ollama and isinstance(ollama[0], dict) and "version" in ollama[0]:
        return Server("openai-compatible", f"ollama {ollama[0]['version']}")
    spec = get("/openapi.json")
    info = spec[0].get("info", {}) if spec and isinstance(spec[0], dict) else {}
    if "llama.cpp python" in str(info.get("title", "")).lower():
        return Server("llama-cpp-python", str(info.get("version")) if info.get("version") else None)
    return Server("openai-compatible")


# -- the probe ----------------------------------------------------------------------------------


def _token() -> str:
    return "q" + secrets.token_hex(3)


# One character of a JSON string as a grammar reads it (the encoded form: a quote or a backslash
# only escaped). Patterns written for local grammars are built from it, so that a grammar cannot
# end a string early or write an invalid escape.
JSON_STRING_CHAR = r'([^"\\\n]|\\["\\/nt])'
# A pattern built the way the inference schema's are (a negated class, an alternation, a bounded
# repetition): a server whose grammar converter cannot take them falls back to plain JSON or
# refuses the request, and the probe must see that, not the first add.
PROBE_PATTERN = r'^[^ .,"\\]' + JSON_STRING_CHAR + "{0,15}$"


def probe_schema() -> tuple[dict[str, Any], Callable[[Any], bool]]:
    """A schema no model could answer by chance, and the check that a reply conforms to it."""
    outer, word, number, said, *choices = (_token() for _ in range(6))
    variants = [
        {
            "type": "object",
            "properties": {word: {"type": "string", "enum": choices}},
            "required": [word],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {number: {"type": "integer"}},
            "required": [number],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {said: {"type": "string", "pattern": PROBE_PATTERN}},
            "required": [said],
            "additionalProperties": False,
        },
    ]
    schema = {
        "title": PROBE_TITLE,
        "type": "object",
        "properties": {outer: {"type": "array", "items": {"anyOf": variants}, "minItems": 1, "maxItems": 2}},
        "required": [outer],
        "additionalProperties": False,
    }

    def conforms(value: Any) -> bool:
        if not isinstance(value, dict) or set(value) != {outer}:
            return False
        items = value[outer]
        if not isinstance(items, list) or not 1 <= len(items) <= 2:
            return False
        return all(
            isinstance(item, dict)
            and (
                (set(item) == {word} and item[word] in choices)
                or (set(item) == {number} and isinstance(item[number], int) and not isinstance(item[number], bool))
                or (set(item) == {said} and isinstance(item[said], str) and _matches_encoded(item[said]))
            )
            for item in items
        )

    return schema, conforms


def _matches_encoded(text: str) -> bool:
    """Whether ``text`` (decoded from the reply) matches ``PROBE_PATTERN`` as the grammar saw it:
    encoded, an escape one character of it. Matched decoded, a reply with an escaped newline or
    quote, which the grammar allows, read as "accepted without enforcing it", and the server was
    sent JSON mode only from then on."""
    return re.match(PROBE_PATTERN, json.dumps(text, ensure_ascii=False)[1:-1]) is not None


PROBE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer in JSON."},
    {"role": "user", "content": "What is the weather like on a typical spring day?"},
]


class ProbeFailed(Exception):
    """Nothing could be decided now: the server was unreachable or overloaded, or refused every
    form (an unknown model name refuses them all). The caller uses the route's best guess and
    probes again later; the request itself then fails or succeeds on its own."""


def run_probe(
    server: Server,
    ask: Callable[[str, bool, dict[str, Any]], str | None],
    parse: Callable[[str | None], Any],
) -> Structure:
    """Try the server kind's forms in order; the first whose reply conforms is enforced.

    ``ask(form, think_off, schema)`` makes one request and returns the reply text. A form the
    server refuses (HTTP 4xx, or 500 from a server that validates ``response_format`` as
    llama-cpp-python's does), or accepts without enforcing it, is passed over; JSON mode or a
    plain request, once accepted, ends the search (the schema then goes into the prompt)."""
    from memorch.models._resilience import provider_errors

    think_options = (True, False) if server.kind == "ollama" else (False,)
    accepted_unenforced = False
    last_refusal: BaseException | None = None
    for form in ORDER[server.kind]:
        if accepted_unenforced and form == "prompt":
            break
        for think_off in think_options:
            schema, conforms = probe_schema()
            try:
                text = ask(form, think_off, schema)
            except provider_errors() as exc:  # anything else is a bug and propagates
                if not _is_refusal(exc):
                    raise ProbeFailed(str(exc)[:300]) from exc
                log.info("probe: %s refused %s: %s", server.kind, form, str(exc)[:200])
                last_refusal = exc
                continue
            if form not in SCHEMA_FORMS:  # JSON mode accepted: nothing more to check
                return Structure(form, "probed", server, think_off)
            try:
                ok = conforms(parse(text))
            except ValueError:
                ok = False
            if ok:
                return Structure(form, "probed", server, think_off)
            log.info("probe: %s accepted %s without enforcing it: %r", server.kind, form, (text or "")[:200])
            accepted_unenforced = True
            break  # ``think`` makes no difference to enforcement
    if accepted_unenforced:
        return Structure("prompt", "probed", server)
    raise ProbeFailed(f"{server.kind} refused every form: {str(last_refusal)[:300]}")


def _is_refusal(exc: BaseException) -> bool:
    """The server answered "not this request" (so another form may do), as opposed to being
    unreachable, timing out or overloaded (then nothing can be learnt now)."""
    from memorch.models._resilience import is_connection, status_of

    if is_connection(exc):  # LiteLLM gives a refused connection status 500 too
        return False
    status = status_of(exc)
    return status is not None and 400 <= status <= 500 and status not in (408, 409, 425, 429)


# -- the cache ----------------------------------------------------------------------------------


class StructureCache:
    """Decisions by ``model @ api_base @ server version``, in ``<data dir>/llm_structure.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CACHE_FILE
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, api_base: str, server: Server) -> str:
        return f"{model} @ {api_base} @ {server.kind} {server.version or '?'}"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignored the unreadable structured-output cache %s: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str, server: Server) -> Structure | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or entry.get("form") not in FORM_WORDS:
            return None
        return Structure(entry["form"], "cached", server, bool(entry.get("think_off")))

    def put(self, key: str, structure: Structure) -> None:
        with self._lock:
            data = self._read()
            data[key] = {**asdict(structure), "probed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            data[key].pop("how", None)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                replace_file(self.path, json.dumps(data, indent=1, sort_keys=True))
            except OSError as exc:  # a read-only data directory: the decision still holds in memory
                log.warning("could not cache the structured-output decision in %s: %s", self.path, exc)


def chosen_by_setting(setting: str, server: Server) -> Structure:
    """``MEMORCH_LLM_STRUCTURED=schema|json|prompt``: no probe."""
    if setting == "schema":
        form = "json_schema" if server.kind == "hosted" else ASSUMED[server.kind]
        return Structure(form, "setting", server, think_off=server.kind == "ollama")
    return Structure(SETTING_FORMS[setting], "setting", server, think_off=server.kind == "ollama")


def unprobed(structure: Structure) -> Structure:
    return replace(structure, how="unprobed")
