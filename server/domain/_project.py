"""Which project a server works for: ``--project auto`` names it from the git repository.

The name is the repository's ``origin`` URL, normalized so that every way of writing one
repository's address gives one name (``https://user:token@GitHub.com/acme/app.git``,
``git@github.com:acme/app`` and ``ssh://git@github.com:22/acme/app.git`` are all
``github.com/acme/app``): the scheme, credentials, port and ``.git`` suffix are dropped and the
host is lower-cased (not the path: GitHub ignores its case, but memories stored under a project
name keep that name). A repository without ``origin`` is named by its root directory, found from
git's common directory, which all worktrees of one repository share, so ``git worktree add``
checkouts are one project.

git runs as a subprocess (no dependency), with a timeout; it reads only local configuration.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from memorch.errors import ConfigurationError

AUTO = "auto"
# The directory holding memorch's package when it runs from a clone (the package is its
# ``server/`` folder); an installed memorch's parent is site-packages, never a repository's top.
MEMORCH_CLONE = Path(__file__).resolve().parents[2]
# git answers these two local reads in milliseconds; a hung git (a network file system, a
# credential helper someone wired into config) must not hang the server's start.
GIT_TIMEOUT_S = 10.0
# Every surface takes MEMORCH_PROJECT; only `memorch serve` (and setup) take --project too.
NAME_IT = "name the project: MEMORCH_PROJECT=NAME (memorch serve: --project NAME)"
# scp-like address: [user@]host:path (no scheme, and the part before ':' has no '/').
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.+)$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:]*)(?::\d*)?(?P<path>/.*)?$")


def normalize_remote(url: str) -> str:
    """``host/path`` for a remote URL (see the module docstring); a local path stays a path."""
    text = url.strip()
    match = _URL.match(text)
    if match and match["host"]:
        host, path = match["host"], match["path"] or ""
    elif match:  # file:///srv/repos/app.git: a local repository
        host, path = "", match["path"] or ""
    elif (scp := _SCP_LIKE.match(text)) and not text.startswith(("/", ".")):
        host, path = scp["host"], scp["path"]
    else:  # a plain path: /srv/repos/app.git or ../app
        host, path = "", text
    path = path.rstrip("/")
    path = path.removesuffix(".git").rstrip("/")
    if not host:
        return path
    return f"{host.lower()}/{path.lstrip('/')}"


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ConfigurationError(
            "the project setting 'auto' needs git, and git is not installed (or not on PATH)",
            error_code="GIT_NOT_FOUND",
            suggestion=f"install git, or {NAME_IT}",
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigurationError(
            f"the project setting 'auto': git did not answer within {GIT_TIMEOUT_S:.0f} s in {cwd}",
            error_code="PROJECT_NOT_DETECTED",
            suggestion=NAME_IT,
        ) from None


def detect_project(cwd: Path) -> str:
    """The project name of the git repository ``cwd`` is in (see the module docstring)."""
    root = _git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if root.returncode != 0:
        reason = (root.stderr.strip().splitlines() or ["not a git repository"])[0]
        raise ConfigurationError(
            f"the project setting 'auto': {cwd} is not inside a git repository ({reason})",
            error_code="PROJECT_NOT_DETECTED",
            details={"directory": str(cwd)},
            suggestion="run memorch inside the project's git repository (a server: set its working directory), "
            f"or {NAME_IT}",
        )
    _refuse_memorchs_own_clone(cwd)
    remote = _git(cwd, "config", "--get", "remote.origin.url")
    if remote.returncode == 0 and remote.stdout.strip():
        return normalize_remote(remote.stdout)
    common = Path(root.stdout.strip()).resolve()
    # A normal repository's common directory is <root>/.git; a bare one's is the repository.
    return str(common.parent if common.name == ".git" else common)


def _refuse_memorchs_own_clone(cwd: Path) -> None:
    """A working directory in the clone memorch runs from is no project of the user's: a client
    entry of ``uv run --directory /path/to/memorch`` starts the server there, and every
    workspace was that one project (a newcomer's trial). ``--project`` keeps the client's
    directory. Only the clone: an install inside a project's virtualenv is deeper down."""
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode == 0 and top.stdout.strip() and Path(top.stdout.strip()).resolve() == MEMORCH_CLONE:
        raise ConfigurationError(
            f"the project setting 'auto': {cwd} is memorch's own clone, not a project of yours "
            "(a client entry of `uv run --directory` starts the server there)",
            error_code="PROJECT_NOT_DETECTED",
            details={"directory": str(cwd)},
            suggestion="start the server with `uv run --project /path/to/memorch memorch serve`, which keeps the "
            f"client's working directory, or {NAME_IT}",
        )


def resolve_project(value: str | None, cwd: Path | None = None) -> str | None:
    """The project a setting names: None or empty for none, ``auto`` detected from ``cwd``
    (default: the working directory), any other text as given (trimmed)."""
    if value is None or not value.strip():
        return None
    name = value.strip()
    if name.lower() == AUTO:
        return detect_project(cwd or Path.cwd())
    return name
