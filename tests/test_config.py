"""Settings: where each value comes from (README "Configuration"), and what a bad one says."""

from __future__ import annotations

from pathlib import Path

import pytest

from memorch import Memory, MemoryConfig
from memorch.config import DEFAULT_SEARCH_WEIGHTS
from memorch.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _no_memorch_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("MEMORCH_"):
            monkeypatch.delenv(name)


def test_arguments_beat_the_environment_which_beats_the_file_which_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "memorch.toml"
    config_file.write_text('user_id = "from-file"\nllm_timeout = 5\ncandidate_limit = 7\n')
    monkeypatch.setenv("MEMORCH_CONFIG", str(config_file))
    monkeypatch.setenv("MEMORCH_LLM_TIMEOUT", "9.5")
    monkeypatch.setenv("MEMORCH_USER_ID", "from-env")

    config = MemoryConfig(user_id="from-code")

    assert config.user_id == "from-code"
    assert config.llm_timeout == 9.5  # the environment over the file
    assert config.candidate_limit == 7  # the file over the default
    assert config.dedup_threshold == 0.95  # the default


def test_a_memorch_table_in_the_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "memorch.toml"
    config_file.write_text('[memorch]\ngraph = "off"\n')
    monkeypatch.setenv("MEMORCH_CONFIG", str(config_file))
    assert MemoryConfig().graph == "off"


def test_environment_names_match_in_any_case_and_structured_values_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("memorch_user_id", "lower")
    monkeypatch.setenv("MEMORCH_SEARCH_WEIGHTS", '{"vector": 2, "text": 1, "graph": 0}')
    monkeypatch.setenv("MEMORCH_LLM_FALLBACKS", "openai/a, openai/b,")
    monkeypatch.setenv("MEMORCH_GRAPH", "false")
    monkeypatch.setenv("MEMORCH_NOT_A_SETTING", "ignored")

    config = MemoryConfig()

    assert config.user_id == "lower"
    assert config.search_weights == {**DEFAULT_SEARCH_WEIGHTS, "vector": 2.0, "text": 1.0, "graph": 0.0}
    assert config.llm_fallbacks == ["openai/a", "openai/b"]
    assert config.graph == "off"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("MEMORCH_SEARCH_WEIGHTS", "{bad", "MEMORCH_SEARCH_WEIGHTS must be valid JSON"),
        ("MEMORCH_CANDIDATE_LIMIT", "many", "MEMORCH_CANDIDATE_LIMIT must be a whole number (got 'many')"),
        ("MEMORCH_REDACT", "sometimes", "MEMORCH_REDACT must be on or off"),
    ],
)
def test_a_bad_environment_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig()
    assert raised.value.error_code == "INVALID_SETTING" and says in raised.value.message
    assert raised.value.details == {"settings": [variable]}


def test_a_bad_value_from_code_names_the_argument() -> None:
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig(llm_timeout="soon")
    assert raised.value.details == {"settings": ["llm_timeout"]}


def test_an_unreadable_config_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "memorch.toml"
    broken.write_text("user_id = \n")
    monkeypatch.setenv("MEMORCH_CONFIG", str(broken))
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig()
    assert raised.value.error_code == "CONFIG_FILE_INVALID" and str(broken) in raised.value.message


def test_search_weights_merge_key_by_key_across_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "memorch.toml"
    config_file.write_text("[search_weights]\ntext = 0.25\n")
    monkeypatch.setenv("MEMORCH_CONFIG", str(config_file))
    monkeypatch.setenv("MEMORCH_SEARCH_WEIGHTS", '{"vector": 2}')
    weights = MemoryConfig(search_weights={"graph": 0}).search_weights
    assert weights == {**DEFAULT_SEARCH_WEIGHTS, "text": 0.25, "vector": 2.0, "graph": 0.0}


def test_one_search_weight_keeps_the_defaults_of_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting only ``context`` once dropped the vector and text weights to nothing: every search
    came back empty."""
    monkeypatch.setenv("MEMORCH_SEARCH_WEIGHTS", '{"context": 0}')
    config = MemoryConfig(data_dir=tmp_path, graph="off")
    assert config.search_weights == {**DEFAULT_SEARCH_WEIGHTS, "context": 0.0}
    with Memory(config) as memory:
        memory.add("My dog is called Rex", user_id="u", infer=False)
        found = memory.search("what is my dog called?", user_id="u")["results"]
    assert [hit["memory"] for hit in found] == ["My dog is called Rex"]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ('{"vectr": 2}', "has no signal vectr"),
        ('{"text": -1}', "cannot be negative (text)"),
        ('{"context": 1.5}', "context is a share, at most 1"),
        ('{"words": 2}', "words is a share, at most 1"),
    ],
)
def test_a_wrong_search_weight_names_itself(weights: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORCH_SEARCH_WEIGHTS", weights)
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig()
    assert raised.value.error_code == "INVALID_SETTING"
    assert "MEMORCH_SEARCH_WEIGHTS" in raised.value.message and message in raised.value.message


def test_a_json_null_environment_value_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORCH_SEARCH_WEIGHTS", "null")
    assert MemoryConfig().search_weights == MemoryConfig.model_fields["search_weights"].default_factory()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("MEMORCH_SEARCH_THRESHOLD", "1.5", "less than or equal to 1"),
        ("MEMORCH_SEARCH_THRESHOLD", "-1", "greater than or equal to 0"),
        ("MEMORCH_MAX_TEXT_BYTES", "0", "greater than or equal to 256"),
        ("MEMORCH_EMBEDDER", "bogus-model", "must be auto, local, local-int8, static or a LiteLLM"),
        ("MEMORCH_LLM_TIMEOUT", "-5", "greater than 0"),
        ("MEMORCH_LLM_MAX_RETRIES", "-1", "greater than or equal to 0"),
        ("MEMORCH_CIRCUIT_FAILURE_THRESHOLD", "0", "greater than or equal to 1"),
        ("MEMORCH_CANDIDATE_LIMIT", "0", "greater than or equal to 1"),
        ("MEMORCH_EMBEDDING_CACHE_SIZE", "-1", "greater than or equal to 0"),
        ("MEMORCH_GRAPH_FLUSH_DELAY", "-1", "greater than or equal to 0"),
        ("MEMORCH_DEDUP_THRESHOLD", "2", "less than or equal to 1"),
        ("MEMORCH_ENTITY_MERGE_THRESHOLD", "7", "less than or equal to 1"),
        ("MEMORCH_LEDGER_URL", "mysql://x", "must be a PostgreSQL URL"),
        ("MEMORCH_VECTOR_URI", "ftp://x", "must be an object-storage URI"),
        ("MEMORCH_VECTOR_URI", "relative/dir", "or an absolute path"),
    ],
)
def test_a_value_that_cannot_work_stops_at_start(
    variable: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/configuration.md: "A value that cannot work stops every command" -- not each call
    later (a threshold over 1 emptied every search, a text limit of 0 refused every call)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig()
    assert raised.value.error_code == "INVALID_SETTING" and says in raised.value.message
    assert raised.value.details == {"settings": [variable]}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEMORCH_EMBEDDER", "local-int8"),
        ("MEMORCH_EMBEDDER", "ollama/nomic-embed-text"),
        ("MEMORCH_LEDGER_URL", "postgresql://me@127.0.0.1:5432/memorch"),
        ("MEMORCH_VECTOR_URI", "s3://bucket/prefix"),
        ("MEMORCH_SEARCH_THRESHOLD", "0"),
        ("MEMORCH_LLM_MAX_RETRIES", "0"),
    ],
)
def test_the_edges_of_what_works_are_accepted(variable: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    MemoryConfig()


def test_the_data_directory_is_absolute_with_its_tilde_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MCP client's JSON passes ``~/memorch`` unexpanded: it made a directory named ``~`` where
    the server started, and Kuzu (which expands ``~`` itself) failed with GRAPH_ERROR."""
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MEMORCH_DATA_DIR", "~/memorch")
    config = MemoryConfig()
    assert config.data_dir == home / "memorch"
    with Memory(config) as memory:
        memory.add("I keep bees", user_id="alice", infer=False)
    assert (home / "memorch" / "memorch.db").is_file()
    assert not (elsewhere / "~").exists()
    assert MemoryConfig(data_dir=Path("stores/a")).data_dir == elsewhere / "stores" / "a"


def test_a_tilde_with_no_home_to_expand_to_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home(path: Path) -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "expanduser", no_home)
    with pytest.raises(ConfigurationError) as raised:
        MemoryConfig(data_dir="~/memorch")
    assert raised.value.details == {"settings": ["data_dir"]}
    assert "~ cannot be expanded here" in raised.value.message


def test_from_config_accepts_mem0_shape(tmp_path) -> None:
    memory = Memory.from_config(
        {
            "vector_store": {"provider": "lancedb", "config": {"path": str(tmp_path / "m0")}},
            "llm": {"provider": "openai", "config": {"model": "gpt-4.1-mini", "api_key": "k"}},
            "graph_store": None,
        }
    )
    try:
        assert memory.config.data_dir == tmp_path / "m0"
        assert memory.config.llm_model == "openai/gpt-4.1-mini"
        assert memory.config.graph_enabled is False
        assert memory.add("stored without an LLM call", user_id="x", infer=False)["results"][0]["event"] == "ADD"
    finally:
        memory.close()


def test_from_config_says_which_mem0_settings_it_does_not_use() -> None:
    """A mem0 config naming Qdrant was taken without a word, the memories going to the data
    directory (a newcomer's trial, 2026-12-07); then said in a log line that a script without
    logging set up never showed (the next trial): a warning, shown by default."""
    import warnings

    qdrant = {"provider": "qdrant", "config": {"host": "localhost", "port": 6333}}
    with pytest.warns(UserWarning) as caught:
        MemoryConfig.from_mapping({"vector_store": qdrant, "history_db_path": "/tmp/h.db", "version": "v1.1"})
    said = [str(w.message) for w in caught]
    assert any("vector_store provider 'qdrant' is not used" in line and "data_dir" in line for line in said)
    assert {"mem0's 'history_db_path' is not used by memorch", "mem0's 'version' is not used by memorch"} <= set(said)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none for a config it uses whole
        MemoryConfig.from_mapping({"vector_store": {"provider": "lancedb", "config": {"path": "/tmp/m0"}}})


def test_from_config_maps_mem0s_embedder_as_its_llm(tmp_path) -> None:
    """mem0's embedder section: provider and model make a LiteLLM model (as the LLM's do; the
    provider was dropped, and "text-embedding-3-small" refused), its key and base URL apply,
    and mem0's MiniLM is the bundled model (a newcomer's trial)."""
    hosted = MemoryConfig.from_mapping(
        {"embedder": {"provider": "openai", "config": {"model": "text-embedding-3-small", "api_key": "k"}}}
    )
    assert hosted.embedder == "openai/text-embedding-3-small" and hosted.embedder_api_key == "k"
    served = MemoryConfig.from_mapping(
        {"embedder": {"provider": "openai", "config": {"model": "nomic", "openai_base_url": "http://127.0.0.1:9/v1"}}}
    )
    assert served.embedder == "openai/nomic" and served.embedder_api_base == "http://127.0.0.1:9/v1"
    minilm = {"provider": "huggingface", "config": {"model": "sentence-transformers/all-MiniLM-L6-v2"}}
    assert MemoryConfig.from_mapping({"embedder": minilm}).embedder == "auto"
    assert MemoryConfig.from_mapping({"enable_graph": False}).graph == "off"
    with pytest.raises(TypeError, match="dict of settings"):
        Memory.from_config("x")  # type: ignore[arg-type]
