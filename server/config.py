"""Configuration: environment variables (MEMORCH_*), an optional TOML file, or a mem0-style dict.

Precedence, highest first: arguments passed in code, environment variables, the TOML file named
by ``MEMORCH_CONFIG``, defaults.

The settings are a plain pydantic model that reads its environment itself (``settings.environment``):
pydantic-settings did the same for a field list this flat, and its import was a quarter of
what memorch added to a bare MCP server's start (``bench/cold_start.py``, README "Benchmarks").
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticValidationError

import memorch._search_weights as search_weights
import memorch._settings as settings
from memorch._paths import default_data_dir, default_tokens_file, home_path
from memorch._search_weights import DEFAULT_SEARCH_WEIGHTS
from memorch.errors import ConfigurationError

log = logging.getLogger("memorch")

DEFAULT_MAX_TEXT_BYTES = 100_000
# A limit under a sentence or two would refuse every query (queries are held to it too).
MIN_TEXT_BYTES = 256
# MEMORCH_VECTOR_URI's object stores (LanceDB's schemes).
OBJECT_STORES = ("s3://", "s3+ddb://", "gs://", "az://")
# The bundled embedders' names (a LiteLLM model has a provider/ prefix).
BUNDLED_EMBEDDERS = frozenset(("auto", "local", "local-int8", "static", "all-MiniLM-L6-v2"))
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the mcp SDK's own default for HTTP request bodies
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def package_version() -> str:
    """The installed package's version (``memorch --version``, MCP ``serverInfo.version``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("memorch")
    except PackageNotFoundError:
        from memorch._version import __version__

        return __version__


class MemoryConfig(BaseModel):
    """Everything memorch can be told. Field ``x`` is read from ``MEMORCH_X`` (any case)."""

    # Defaults are validated too: ``project``'s validator resolves and checks every value.
    # An unknown keyword argument is refused in ``__init__`` (a ``TypeError``, as for any
    # function); "ignore" is for the config file, whose unknown keys a server names at start
    # (``unknown_setting_warnings``) instead of stopping every command.
    model_config = ConfigDict(extra="ignore", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    user_id: str = "default"
    # The project layer (README "Projects"): adds go to it, reads see it and the global layer.
    # "auto" names it from the working directory's git repository (server/project.py).
    project: str | None = None
    # LLM (empty model = no LLM: add() stores verbatim)
    llm_model: str = ""
    llm_api_base: str | None = None
    llm_api_key: str | None = None
    llm_fallbacks: list[str] = Field(default_factory=list)  # "a,b" from the environment
    # Every number below has the range it can work in: a value outside it stops every command
    # at start (one INVALID_SETTING line), not each call later.
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0)
    llm_backoff_base: float = Field(default=0.5, ge=0)
    llm_backoff_max: float = Field(default=20.0, ge=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown: float = Field(default=30.0, ge=0)
    # How requests carry the reply schema (models/_structured.py): "auto" probes the endpoint once
    # per model, API base and server version; "schema", "json" (JSON mode, schema in the prompt)
    # and "prompt" (schema in the prompt only) skip the probe.
    llm_structured: Literal["auto", "schema", "json", "prompt"] = "auto"
    # The inference prompt: "compact" for small context windows; "auto" picks it when the
    # server reports a context of at most 4,096 tokens.
    llm_prompt: Literal["auto", "full", "compact"] = "auto"
    llm_num_ctx: int | None = Field(default=None, gt=0)  # Ollama's context window (its native route)
    # Seconds an add waits for the model before storing the messages as pending (unset: waits).
    llm_add_timeout: float | None = Field(default=None, gt=0)
    custom_fact_extraction_prompt: str | None = None
    custom_update_memory_prompt: str | None = None
    # Embeddings
    # auto: the bundled model a store was embedded with; for a new store the int8 MiniLM.
    embedder: str = "auto"
    embedder_api_base: str | None = None
    embedder_api_key: str | None = None
    embedding_batch_size: int = Field(default=32, gt=0)
    embedding_cache_size: int = Field(default=4096, ge=0)
    # Graph
    graph: Literal["on", "off"] = "on"
    entity_merge_threshold: float = Field(default=0.95, ge=0, le=1)
    graph_flush_delay: float = Field(default=1.0, ge=0)  # seconds after a write before the graph catches up
    # Seconds after a write before its vector rows are written (batched; a search writes them
    # first); 0 writes them before the write is answered. See ``Store.index_owed``.
    index_flush_delay: float = Field(default=1.0, ge=0.0, le=5.0)
    # Behaviour
    max_text_bytes: int = Field(default=DEFAULT_MAX_TEXT_BYTES, ge=MIN_TEXT_BYTES)
    redact: Literal["on", "off"] = "on"  # credentials replaced before storing (server/redaction.py)
    # An inferring add acknowledges once the messages are stored; a worker extracts the facts
    # after (server/pending.py). Unset: on for `memorch serve`, off for the library.
    background_inference: Literal["on", "off"] | None = None
    dedup_threshold: float = Field(default=0.95, ge=0, le=1)
    candidate_limit: int = Field(default=10, ge=1)
    # Hybrid search: weight of each signal in the relative score fusion.
    search_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SEARCH_WEIGHTS))
    # A search that gives no threshold of its own returns nothing unless its best result scores
    # this, and then the results down to half of it (retrieval/_cut.py). Scores are absolute
    # relevance; the default is chosen by bench/relevance.py (docs/search.md "How the score was
    # measured": it keeps every LOCOMO own-scope top hit).
    search_threshold: float = Field(default=0.3, ge=0, le=1)
    # Expiry and retention (docs/security.md). A new memory's expiry when its add names none, by the
    # most specific scope part it has: {"run_id": "7d"} (JSON from the environment); empty: never.
    default_expiry: dict[str, str] = Field(default_factory=dict)
    # History events older than this ("90d") lose their text at maintenance; unset: kept for ever.
    history_retention: str | None = None
    # Server
    auth_token: str | None = None
    # Per-caller tokens bound to a user (serve/_identities.py, `memorch token add`); unset: the
    # default file under the user's config directory, used when it exists (``tokens_in_use``).
    tokens_file: Path | None = None
    log_level: str = "WARNING"
    # HTTP edge (server/http_edge.py): extra Host names accepted (a tunnel's), and the body limit.
    allowed_hosts: list[str] = Field(default_factory=list)  # "a,b" from the environment
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    # Several replicas (README "Running several replicas"): the ledger on PostgreSQL
    # (``postgresql://...``; empty = SQLite in the data directory) and the vector dataset on
    # object storage (``s3://bucket/prefix``; empty = LanceDB in the data directory).
    ledger_url: str = ""
    vector_uri: str = ""

    def __init__(self, **values: Any) -> None:
        """The given values over the environment over the config file; a bad value is a
        ``ConfigurationError`` naming its setting as the caller wrote it, an unknown name a
        ``TypeError`` naming the closest setting."""
        cls = type(self)
        settings.refuse_unknown(cls, values)
        sources = (settings.mapping_defaults(cls), settings.config_file(), settings.environment(cls), values)
        self._validate(settings.layered(*sources), values)

    def _validate(self, merged: dict[str, Any], given: dict[str, Any]) -> None:
        try:
            super().__init__(**merged)
        except PydanticValidationError as exc:
            raise settings.invalid_settings(exc, given) from None

    def with_overrides(self, **overrides: Any) -> Self:
        """A copy with ``overrides`` applied, validated as the constructor validates them: a bad
        value is the same ``ConfigurationError`` (``INVALID_SETTING`` naming the argument), an
        unknown name the same ``TypeError``. The environment and the config file are not read
        again; a mapping (``search_weights``) is merged key by key, as over the environment."""
        cls = type(self)
        settings.refuse_unknown(cls, overrides)
        current = {name: getattr(self, name) for name in cls.model_fields}
        copy = cls.__new__(cls)
        copy._validate(settings.layered(current, overrides), overrides)
        return copy

    def prepare_data_dir(self) -> Path:
        """Create the data directory; a path that cannot be one is a ``ConfigurationError``."""
        path = self.data_dir
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            problem = "is a file, not a directory"
        except OSError as exc:
            problem = f"cannot be created ({exc.strerror or exc})"
        else:
            if os.access(path, os.W_OK | os.X_OK):
                return path
            problem = "is not writable"
        raise ConfigurationError(
            f"the data directory {path} (MEMORCH_DATA_DIR) {problem}",
            error_code="DATA_DIR_UNUSABLE",
            details={"variable": "MEMORCH_DATA_DIR", "path": str(path)},
            suggestion=f"set MEMORCH_DATA_DIR to a writable directory, or unset it to use {default_data_dir()}",
        )

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper() or "WARNING"
            if value not in LOG_LEVELS:
                raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        # Absolute, with ~ expanded: "~/memorch" from a client's JSON made a directory named ~
        # wherever the client started the server (and Kuzu, which expands ~ itself, failed on the
        # other path); and every message names the directory in full.
        return home_path(value).absolute()

    @field_validator("user_id", "project")
    @classmethod
    def _scope_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Checked here, once, naming the variable ("alice " in MEMORCH_USER_ID failed every later
        # call as an argument the caller had not given: a newcomer's trial).
        import memorch.domain._validation as validation
        from memorch.domain._project import resolve_project  # runs git only for "auto"
        from memorch.errors import ValidationError

        name = resolve_project(value) if info.field_name == "project" else value
        try:
            return validation.scope_id(name, str(info.field_name))
        except ValidationError as exc:
            raise ValueError(exc.message) from None

    @field_validator("llm_fallbacks", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("embedder")
    @classmethod
    def _embedder(cls, value: str) -> str:
        # Checked here, once, rather than failing every call (models/_embeddings.make_embedder).
        value = value.strip()
        if value not in BUNDLED_EMBEDDERS and "/" not in value:
            raise ValueError(
                "must be auto, local, local-int8, static or a LiteLLM embedding model such as "
                "openai/text-embedding-3-small"
            )
        return value

    @field_validator("ledger_url")
    @classmethod
    def _ledger_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.lower().startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "must be a PostgreSQL URL such as postgresql://user@host:5432/memorch "
                "(empty: the SQLite ledger in the data directory)"
            )
        return value

    @field_validator("vector_uri")
    @classmethod
    def _vector_uri(cls, value: str) -> str:
        # A relative path would be resolved against whatever directory a client started the
        # server in: a new, empty index each time.
        value = value.strip()
        if value.startswith("~"):
            value = str(home_path(Path(value)))
        if value and not (value.lower().startswith(OBJECT_STORES) or Path(value).is_absolute()):
            raise ValueError(
                "must be an object-storage URI (s3://bucket/prefix, gs://..., az://...) or an absolute path "
                "(empty: LanceDB in the data directory)"
            )
        return value

    @field_validator("llm_api_base", "embedder_api_base")
    @classmethod
    def _api_base(cls, value: str | None) -> str | None:
        # Without a scheme LiteLLM's HTTP client fails each request as a connection error, after
        # the retries: said here, once, instead of "could not be reached" 15 s later.
        value = value.strip() if value is not None else ""
        if value and not value.lower().startswith(("http://", "https://")):
            # An OpenAI-compatible server's base ends in /v1: an example without it is a 404.
            shown = value if value.rstrip("/").endswith("/v1") else f"{value.rstrip('/')}/v1"
            raise ValueError(
                f"must be a URL starting with http:// or https:// (e.g. http://{shown} for an OpenAI-compatible server)"
            )
        return value or None

    @field_validator("tokens_file", mode="before")
    @classmethod
    def _tokens_path(cls, value: Any) -> Any:
        if isinstance(value, str):  # MEMORCH_TOKENS_FILE="" means unset; "~/..." is the home directory
            return home_path(Path(value.strip())) if value.strip() else None
        return value

    @field_validator("search_weights")
    @classmethod
    def _search_weights(cls, value: dict[str, float]) -> dict[str, float]:
        return search_weights.checked(value)

    @field_validator("default_expiry", mode="before")
    @classmethod
    def _default_expiry(cls, value: Any) -> Any:
        from memorch.domain._expiry import default_rules

        return default_rules(value)

    @field_validator("history_retention", mode="before")
    @classmethod
    def _retention(cls, value: Any) -> Any:
        from memorch.domain._expiry import duration

        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        duration(value, "the history retention")
        return value.strip()

    @property
    def retention(self) -> timedelta | None:
        """``history_retention`` as a duration (None: history keeps its text)."""
        from memorch.domain._expiry import duration

        return None if self.history_retention is None else duration(self.history_retention, "history_retention")

    @field_validator("max_request_bytes")
    @classmethod
    def _positive_bytes(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive number of bytes")
        return value

    @field_validator("graph", "redact", "background_inference", mode="before")
    @classmethod
    def _graph_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            lowered = value.strip().lower()
            return {"true": "on", "1": "on", "false": "off", "0": "off"}.get(lowered, lowered)
        return value

    @property
    def tokens_in_use(self) -> Path | None:
        """The tokens file a server reads: MEMORCH_TOKENS_FILE, else the default file if it exists."""
        if self.tokens_file is not None:
            return self.tokens_file
        default = default_tokens_file()
        return default if default.is_file() else None

    @property
    def graph_enabled(self) -> bool:
        return self.graph == "on"

    @property
    def graph_copy(self) -> bool:
        """Whether this process keeps a Kuzu graph derived from the ledger. With several replicas
        (``ledger_url``) graph reads are answered from the ledger instead (``LedgerGraph``)."""
        return self.graph_enabled and not self.ledger_url

    @property
    def redact_enabled(self) -> bool:
        return self.redact == "on"

    @property
    def background_enabled(self) -> bool:
        return self.background_inference == "on" and self.llm_enabled

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> Self:
        """Accept our flat keys or mem0's nested dict (``{"llm": {"provider", "config"}}``).

        mem0's top-level keys (``MEM0_KEYS``) are read where memorch has the setting and ignored
        otherwise, so a mem0 config works as it is; any other key is a typo, refused with the
        same ``TypeError`` as an unknown keyword argument."""
        unknown = settings.unknown_keys(config, cls.model_fields)
        if unknown:
            raise settings.unexpected(
                "MemoryConfig.from_mapping got", "key", unknown, [*cls.model_fields, *settings.MEM0_KEYS]
            )
        flat: dict[str, Any] = {k: v for k, v in config.items() if k in cls.model_fields}
        flat.update(settings.from_mem0_shape(config))
        for line in settings.unused_mem0(dict(config)):
            # A warning, not a log line: a script that set up no logging saw nothing while its
            # memories went to the data directory instead of its Qdrant (a newcomer's trial).
            warnings.warn(line, UserWarning, stacklevel=3)
        return cls(**flat)


def unknown_setting_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each ``MEMORCH_*`` variable (any case) or ``MEMORCH_CONFIG`` file key that is
    no memorch setting, naming the closest one: such a setting is ignored, so a typo would
    otherwise go unnoticed."""
    return settings.unknown_setting_warnings(list(MemoryConfig.model_fields), environ)


def warn_unknown_settings(environ: Mapping[str, str] | None = None) -> None:
    """Log ``unknown_setting_warnings`` through the ``memorch`` logger (a server's start)."""
    for warning in unknown_setting_warnings(environ):
        log.warning("%s", warning)
