"""Configuration: environment variables (MEMORCH_*), an optional TOML file, or a mem0-style dict.

Precedence, highest first: arguments passed in code, environment variables, the TOML file named
by ``MEMORCH_CONFIG``, defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigurationError

DEFAULT_MAX_TEXT_BYTES = 100_000


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("memorch", appauthor=False))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by MEMORCH_CONFIG (flat keys, same names as the fields)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("MEMORCH_CONFIG")
        if not path:
            return {}
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read the config file {path}: {exc}",
                error_code="CONFIG_FILE_INVALID",
                suggestion="fix the TOML file or unset MEMORCH_CONFIG",
            ) from exc
        return data.get("memorch", data)


class MemoryConfig(BaseSettings):
    """Everything memorch can be told. Field ``x`` is read from ``MEMORCH_X``."""

    model_config = SettingsConfigDict(env_prefix="MEMORCH_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    user_id: str = "default"
    # LLM (empty model = no LLM: add() stores verbatim)
    llm_model: str = ""
    llm_api_base: str | None = None
    llm_api_key: str | None = None
    llm_fallbacks: list[str] = Field(default_factory=list)
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
    # Behaviour
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    dedup_threshold: float = 0.95
    candidate_limit: int = 10
    # Hybrid search: weight of each signal in the relative score fusion.
    search_weights: dict[str, float] = Field(default_factory=lambda: {"vector": 1.0, "text": 1.0, "graph": 0.5})
    # Results scoring below this are dropped when a search gives no threshold of its own
    # (scores are absolute relevance; the default is chosen by bench/relevance.py).
    search_threshold: float = 0.0
    # Server
    auth_token: str | None = None
    log_level: str = "WARNING"

    @field_validator("llm_fallbacks", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("graph", mode="before")
    @classmethod
    def _graph_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            lowered = value.strip().lower()
            return {"true": "on", "1": "on", "false": "off", "0": "off"}.get(lowered, lowered)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls)

    @property
    def graph_enabled(self) -> bool:
        return self.graph == "on"

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model)

    @classmethod
    def from_mapping(cls, config: dict[str, Any]) -> MemoryConfig:
        """Accept our flat keys or mem0's nested dict (``{"llm": {"provider", "config"}}``)."""
        flat: dict[str, Any] = {k: v for k, v in config.items() if k in cls.model_fields}
        flat.update(_from_mem0_shape(config))
        return cls(**flat)


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
