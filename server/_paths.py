"""Where memorch keeps things by default, and how a path setting is read (``memorch.config``)."""

from __future__ import annotations

from pathlib import Path


def default_tokens_file() -> Path:
    """Where ``memorch token add`` keeps tokens and a server reads them when MEMORCH_TOKENS_FILE
    is unset (``~/.config/memorch/tokens.json`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("memorch", appauthor=False)) / "tokens.json"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("memorch", appauthor=False))


def home_path(path: Path) -> Path:
    """``path`` with a leading ``~`` expanded: an MCP client's JSON config passes
    ``"~/memorch"`` as written (no shell expands it). A ``ValueError`` (the setting's error)
    when there is no home directory to expand it to (no HOME, a user without one)."""
    try:
        return path.expanduser()
    except RuntimeError:
        raise ValueError(f"{path}: ~ cannot be expanded here; give an absolute path") from None
