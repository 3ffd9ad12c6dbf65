"""Where settings come from, and what a wrong one says (the sources behind ``memorch.config``).

The TOML file named by ``MEMORCH_CONFIG``, the ``MEMORCH_<FIELD>`` environment variables, mem0's
nested dict, and how they layer; an unknown name is a ``TypeError`` naming the closest setting, a
bad value one ``ConfigurationError`` naming each setting as the caller wrote it, and an unknown
``MEMORCH_*`` variable a warning at start.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from memorch.errors import ConfigurationError


def config_file() -> dict[str, Any]:
    """The TOML file named by MEMORCH_CONFIG (flat keys, the fields' names; or a [memorch] table)."""
    path = os.environ.get("MEMORCH_CONFIG")
    return config_file_at(path) if path else {}


def config_file_at(path: str) -> dict[str, Any]:
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


# The top-level keys of mem0's ``MemoryConfig`` across its versions, accepted by ``from_mapping``.
MEM0_KEYS = frozenset(
    {
        "vector_store",
        "llm",
        "embedder",
        "graph_store",
        "enable_graph",
        "history_db_path",
        "reranker",
        "version",
        "custom_prompt",
        "custom_fact_extraction_prompt",
        "custom_update_memory_prompt",
        "custom_instructions",
        "lifecycle_policies",
    }
)


def unknown_keys(config: Any, fields: Iterable[str]) -> list[str]:
    """The keys of ``config`` (a mapping) that are neither memorch settings nor mem0's."""
    if not isinstance(config, Mapping):  # a str would be read letter by letter
        raise TypeError(f"from_config takes a dict of settings or a MemoryConfig, not {type(config).__name__}")
    known = set(fields)
    return [key for key in config if key not in known and key not in MEM0_KEYS]


def unexpected(owner: str, kind: str, names: Iterable[str], valid: Iterable[str]) -> TypeError:
    """``<owner> an unexpected <kind> 'x'; did you mean 'y'?``, for each unknown name."""
    choices = list(valid)
    found = [(f"{str(name)[:60]!r}", difflib.get_close_matches(str(name), choices, n=1)) for name in names]
    if len(found) == 1:
        shown, close = found[0]
        return TypeError(f"{owner} an unexpected {kind} {shown}" + (f"; did you mean {close[0]!r}?" if close else ""))
    listed = ", ".join(shown + (f" (did you mean {close[0]!r}?)" if close else "") for shown, close in found)
    return TypeError(f"{owner} unexpected {kind}s {listed}")


def refuse_unknown(model: type[BaseModel], values: Mapping[str, Any]) -> None:
    unknown = [name for name in values if name not in model.model_fields]
    if unknown:
        raise unexpected(f"{model.__name__} got", "keyword argument", unknown, model.model_fields)


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


def setting_name(field: str, values: dict[str, Any]) -> str:
    """How the caller gave the setting: keyword argument, environment variable or config file."""
    env = f"MEMORCH_{field.upper()}"
    if field in values:  # the same precedence as the settings sources
        return field
    if any(key.upper() == env for key in os.environ):
        return env
    config_file = os.environ.get("MEMORCH_CONFIG")
    return f"{field} in {config_file} (MEMORCH_CONFIG)" if config_file else env


def invalid_settings(exc: PydanticValidationError, values: dict[str, Any]) -> ConfigurationError:
    """One line for all of pydantic's errors, each naming the setting as the caller wrote it."""
    problems: list[str] = []
    names: list[str] = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        name = setting_name(loc[0], values) if loc else "a setting"
        names.append(name)
        where = name + "".join(f"[{part!r}]" for part in loc[1:])
        ctx = error.get("ctx") or {}
        if error["type"] == "literal_error":
            wanted = "must be " + str(ctx.get("expected", "")).replace("'", "")
        elif error["type"] in _EXPECTED:
            wanted = "must be " + _EXPECTED[error["type"]]
        elif error["msg"].startswith("Input should be "):  # a range: "less than or equal to 5"
            wanted = "must be " + error["msg"].removeprefix("Input should be ")
        else:
            wanted = re.sub(r"^Value error, ", "", error["msg"])
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


def environment(model: type[BaseModel]) -> dict[str, Any]:
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


# MEMORCH_* variables memorch reads besides its settings' own (``MEMORCH_<FIELD>``).
OTHER_VARIABLES = ("MEMORCH_CONFIG",)
# Variables of memorch's own tests and benchmarks (tests/pg_helpers.py, tests/test_real_model.py,
# tests/test_ui.py, tests/test_fuzz.py, bench/replicas.py): never settings, never warned about.
# New ones take the MEMORCH_TEST_ prefix (or MEMORCH_REQUIRE_ for "fail instead of skip").
TEST_VARIABLE_PREFIXES = ("MEMORCH_TEST_", "MEMORCH_REQUIRE_", "MEMORCH_FUZZ_")


def unknown_setting_warnings(fields: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each ``MEMORCH_*`` variable (any case) that is no memorch setting, naming the
    closest one, and for each key of the ``MEMORCH_CONFIG`` file that is none. Such a setting is
    ignored, so a typo would otherwise go unnoticed; servers log these at start
    (``config.warn_unknown_settings``)."""
    environ = os.environ if environ is None else environ
    settings = {f"MEMORCH_{name.upper()}" for name in fields}  # matched in any case
    suffixes = [name.removeprefix("MEMORCH_").lower() for name in sorted(settings | set(OTHER_VARIABLES))]
    warnings: list[str] = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith("MEMORCH_") or upper.startswith(TEST_VARIABLE_PREFIXES):
            continue
        if upper in settings or variable in OTHER_VARIABLES:  # the others are read exactly as named
            continue
        close = difflib.get_close_matches(upper.removeprefix("MEMORCH_").lower(), suffixes, n=1)
        hint = f"; did you mean MEMORCH_{close[0].upper()}?" if close else " and is ignored"
        warnings.append(f"{variable[:80]} is not a memorch setting{hint}")
    path = environ.get("MEMORCH_CONFIG")
    if path:
        try:
            table = config_file_at(path)
        except ConfigurationError:
            table = {}  # MemoryConfig() reports an unreadable file as an error of its own
        for key in table:
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f"; did you mean {close[0]}?" if close else " and is ignored"
                warnings.append(f"{str(key)[:80]} in {path} (MEMORCH_CONFIG) is not a memorch setting{hint}")
    return warnings


def mapping_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults of the fields holding a mapping: the bottom layer of ``layered``, so a source
    naming one weight keeps the defaults of the others."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if get_origin(field.annotation) is dict
    }


def layered(*sources: dict[str, Any]) -> dict[str, Any]:
    """The sources, each over the ones before it; a mapping (``search_weights``) is merged key
    by key, so ``{"graph": 0}`` given in code keeps the other weights from the environment."""
    merged: dict[str, Any] = {}
    for source in sources:
        for name, value in source.items():
            below = merged.get(name)
            merged[name] = {**below, **value} if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def from_mem0_shape(config: dict[str, Any]) -> dict[str, Any]:
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
        out["embedder"] = _embedder(str(embedder["model"]), (config.get("embedder") or {}).get("provider"))
    for src, dst in (
        ("api_base", "embedder_api_base"),
        ("openai_base_url", "embedder_api_base"),
        ("api_key", "embedder_api_key"),
    ):
        if embedder.get(src):
            out[dst] = embedder[src]
    store = (config.get("vector_store") or {}).get("config") or {}
    if store.get("path"):
        out["data_dir"] = store["path"]
    if "enable_graph" in config:
        out["graph"] = "on" if config["enable_graph"] else "off"
    if "graph_store" in config:
        out["graph"] = "on" if config["graph_store"] else "off"
    if config.get("custom_fact_extraction_prompt"):
        out["custom_fact_extraction_prompt"] = config["custom_fact_extraction_prompt"]
    if config.get("custom_update_memory_prompt"):
        out["custom_update_memory_prompt"] = config["custom_update_memory_prompt"]
    return out


# mem0's keys that ``from_mem0_shape`` reads (a section's other keys are not used).
READ_MEM0 = frozenset(
    {
        "vector_store",
        "llm",
        "embedder",
        "graph_store",
        "enable_graph",
        "custom_fact_extraction_prompt",
        "custom_update_memory_prompt",
    }
)


def unused_mem0(config: dict[str, Any]) -> list[str]:
    """A line for each mem0 setting given that memorch does not use: a config naming Qdrant was
    taken without a word, the memories going to the data directory (a newcomer's trial)."""
    lines = [f"mem0's {key!r} is not used by memorch" for key in config if key in MEM0_KEYS - READ_MEM0]
    store = config.get("vector_store") or {}
    if store.get("provider") not in (None, "lancedb"):
        lines.append(
            f"vector_store provider {store['provider']!r} is not used: memorch keeps memories in its own "
            "ledger and LanceDB index, in data_dir (vector_store.config.path, MEMORCH_DATA_DIR)"
        )
    return lines


def _embedder(model: str, provider: Any) -> str:
    """mem0's embedder model as memorch names it: MiniLM (mem0's huggingface default,
    "sentence-transformers/all-MiniLM-L6-v2") is the bundled model; another is a LiteLLM model,
    prefixed with its provider as the LLM's is."""
    if model.rsplit("/", 1)[-1].lower() == "all-minilm-l6-v2":
        return "auto"
    return model if "/" in model or not provider else f"{provider}/{model}"
