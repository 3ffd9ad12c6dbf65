"""Configuration: environment variables (MEMORCH_*), an optional TOML file, or a mem0-style dict.

Precedence, highest first: arguments passed in code, environment variables, the TOML file named
by ``MEMORCH_CONFIG``, defaults.

The settings are a plain pydantic model that reads its environment itself (``_environment``):
pydantic-settings did the same for a field list this flat, and its import was a quarter of
what memorch added to a bare MCP server's start (``bench/cold_start.py``, README "Benchmarks").
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from memorch.errors import ConfigurationError

DEFAULT_MAX_TEXT_BYTES = 100_000
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


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("memorch", appauthor=False))


def _config_file() -> dict[str, Any]:
    """The TOML file named by MEMORCH_CONFIG (flat keys, the fields' names; or a [memorch] table)."""
    path = os.environ.get("MEMORCH_CONFIG")
    if not path:
        return {}
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the config file {path}: {exc}",
            error_code="CONFIG_FILE_INVALID",
            suggestion="fix the TOML file or unset MEMORCH_CONFIG",
        ) from exc
    return data.get("memorch", data)


class MemoryConfig(BaseModel):
    """Everything memorch can be told. Field ``x`` is read from ``MEMORCH_X`` (any case)."""

    # Defaults are validated too: ``project``'s validator resolves and checks every value.
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
    llm_timeout: float = 60.0
    llm_max_retries: int = 3
    llm_backoff_base: float = 0.5
    llm_backoff_max: float = 20.0
    circuit_failure_threshold: int = 5
    circuit_cooldown: float = 30.0
    custom_fact_extraction_prompt: str | None = None
    custom_update_memory_prompt: str | None = None
    # Embeddings
    embedder: str = "local"
    embedder_api_base: str | None = None
    embedder_api_key: str | None = None
    embedding_batch_size: int = 32
    embedding_cache_size: int = 4096
    # Graph
    graph: Literal["on", "off"] = "on"
    entity_merge_threshold: float = 0.95
    graph_flush_delay: float = 1.0  # seconds after a write before the graph catches up
    # Seconds after a write before its vector rows are written (batched; a search writes them
    # first); 0 writes them before the write is answered. See ``Store.index_owed``.
    index_flush_delay: float = Field(default=1.0, ge=0.0, le=5.0)
    # Behaviour
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    redact: Literal["on", "off"] = "on"  # credentials replaced before storing (server/redaction.py)
    # An inferring add acknowledges once the messages are stored; a worker extracts the facts
    # after (server/pending.py). Unset: on for `memorch serve`, off for the library.
    background_inference: Literal["on", "off"] | None = None
    dedup_threshold: float = 0.95
    candidate_limit: int = 10
    # Hybrid search: weight of each signal in the relative score fusion.
    search_weights: dict[str, float] = Field(default_factory=lambda: {"vector": 1.0, "text": 1.0, "graph": 0.5})
    # Results scoring below this are dropped when a search gives no threshold of its own
    # (scores are absolute relevance; the default is chosen by bench/relevance.py, see README
    # "Search": it keeps every LOCOMO own-scope top hit and LOCOMO recall unchanged).
    search_threshold: float = 0.3
    # Server
    auth_token: str | None = None
    # Per-caller tokens bound to a user (server/identities.py, `memorch token add`); unset = none.
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
        ``ConfigurationError`` naming its setting as the caller wrote it."""
        try:
            super().__init__(**_layered(_config_file(), _environment(type(self)), values))
        except PydanticValidationError as exc:
            raise _invalid_settings(exc, values) from None

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

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        import memorch.domain._validation as validation
        from memorch.domain._project import resolve_project  # runs git only for "auto"
        from memorch.errors import ValidationError

        name = resolve_project(value)
        try:  # checked here, once, rather than failing every later call
            return validation.scope_id(name, "project")
        except ValidationError as exc:
            raise ValueError(exc.message) from None

    @field_validator("llm_fallbacks", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tokens_file", mode="before")
    @classmethod
    def _tokens_path(cls, value: Any) -> Any:
        if isinstance(value, str):  # MEMORCH_TOKENS_FILE="" means unset; "~/..." is the home directory
            return Path(value.strip()).expanduser() if value.strip() else None
        return value

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
    def from_mapping(cls, config: dict[str, Any]) -> MemoryConfig:
        """Accept our flat keys or mem0's nested dict (``{"llm": {"provider", "config"}}``)."""
        flat: dict[str, Any] = {k: v for k, v in config.items() if k in cls.model_fields}
        flat.update(_from_mem0_shape(config))
        return cls(**flat)


_EXPECTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "dict_type": "a JSON object",
    "list_type": "a comma-separated list",
    "string_type": "text",
    "path_type": "a directory path",
}


def _setting_name(field: str, values: dict[str, Any]) -> str:
    """How the caller gave the setting: keyword argument, environment variable or config file."""
    env = f"MEMORCH_{field.upper()}"
    if field in values:  # the same precedence as the settings sources
        return field
    if any(key.upper() == env for key in os.environ):
        return env
    config_file = os.environ.get("MEMORCH_CONFIG")
    return f"{field} in {config_file} (MEMORCH_CONFIG)" if config_file else env


def _invalid_settings(exc: PydanticValidationError, values: dict[str, Any]) -> ConfigurationError:
    """One line for all of pydantic's errors, each naming the setting as the caller wrote it."""
    problems: list[str] = []
    names: list[str] = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        name = _setting_name(loc[0], values) if loc else "a setting"
        names.append(name)
        where = name + "".join(f"[{part!r}]" for part in loc[1:])
        ctx = error.get("ctx") or {}
        if error["type"] == "literal_error":
            wanted = "must be " + str(ctx.get("expected", "")).replace("'", "")
        elif error["type"] in _EXPECTED:
            wanted = "must be " + _EXPECTED[error["type"]]
        else:
            wanted = re.sub(r"^(Value error, |Input should be )", "", error["msg"])
            wanted = wanted if wanted.startswith("must") else f"is invalid: {wanted}"
        given = error.get("input")
        got = f" (got {given!r:.60})" if isinstance(given, str | int | float) and not isinstance(given, bool) else ""
        problems.append(f"{where} {wanted}{got}")
    unique = list(dict.fromkeys(names))
    fix = "fix or unset" if all(n.startswith("MEMORCH_") for n in unique) else "fix"
    return ConfigurationError(
        "; ".join(problems),
        error_code="INVALID_SETTING",
        details={"settings": unique},
        suggestion=f"{fix} {', '.join(unique)}",
    )


def _environment(model: type[BaseModel]) -> dict[str, Any]:
    """The ``MEMORCH_<FIELD>`` variables, matched in any case. A field holding a mapping
    (``search_weights``) takes JSON; list fields split commas in their own validator."""
    fields = {f"MEMORCH_{name.upper()}": name for name in model.model_fields}
    mappings = {name for name, field in model.model_fields.items() if get_origin(field.annotation) is dict}
    values: dict[str, Any] = {}
    for variable, raw in os.environ.items():
        name = fields.get(variable.upper())
        if name is None:
            continue
        if name in mappings:
            try:
                decoded = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigurationError(
                    f"{variable} must be valid JSON (it could not be parsed)",
                    error_code="INVALID_SETTING",
                    details={"settings": [variable]},
                    suggestion=f"fix or unset {variable}",
                ) from None
            if decoded is not None:  # JSON null: as if unset
                values[name] = decoded
        else:
            values[name] = raw
    return values


def _layered(*sources: dict[str, Any]) -> dict[str, Any]:
    """The sources, each over the ones before it; a mapping (``search_weights``) is merged key
    by key, so ``{"graph": 0}`` given in code keeps the other weights from the environment."""
    merged: dict[str, Any] = {}
    for source in sources:
        for name, value in source.items():
            below = merged.get(name)
            merged[name] = {**below, **value} if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _from_mem0_shape(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    llm = (config.get("llm") or {}).get("config") or {}
    provider = (config.get("llm") or {}).get("provider")
    if llm.get("model"):
        model = str(llm["model"])
        out["llm_model"] = model if "/" in model or not provider else f"{provider}/{model}"
    for src, dst in (("api_base", "llm_api_base"), ("openai_base_url", "llm_api_base"), ("api_key", "llm_api_key")):
        if llm.get(src):
            out[dst] = llm[src]
    embedder = (config.get("embedder") or {}).get("config") or {}
    if embedder.get("model"):
        out["embedder"] = embedder["model"]
    if embedder.get("api_base"):
        out["embedder_api_base"] = embedder["api_base"]
    store = (config.get("vector_store") or {}).get("config") or {}
    if store.get("path"):
        out["data_dir"] = store["path"]
    if "graph_store" in config:
        out["graph"] = "on" if config["graph_store"] else "off"
    if config.get("custom_fact_extraction_prompt"):
        out["custom_fact_extraction_prompt"] = config["custom_fact_extraction_prompt"]
    if config.get("custom_update_memory_prompt"):
        out["custom_update_memory_prompt"] = config["custom_update_memory_prompt"]
    return out
