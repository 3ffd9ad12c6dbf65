"""LiteLLM, imported once, on a thread of its own, and set up offline.

The import takes 3-12 s (9 s on a loaded 2-core machine): the server starts it at launch, so the
first call waits for what is left of it (a CLI add starting it beside the stores' opening was
measured and gained nothing: the import holds the GIL). It always runs on a thread the
interpreter waits for at exit (not a daemon): model calls run on daemon threads
(``engine/_workers.py``), which a process may leave behind when it ends, and ending one in the
middle of a native library's import aborts the process (SIGABRT, seen once in CI). A first
call's own lazy imports (LiteLLM's provider modules, httpcore's backends: Python, and ctypes)
still run on the model's thread. By default LiteLLM also fetches a cost map from the internet:
it is pointed at its bundled copy, and its telemetry is off.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from types import ModuleType

log = logging.getLogger("memorch.llm")

_guard = threading.Lock()
_loading: threading.Thread | None = None
_outcome: list[ModuleType | ImportError] = []  # LiteLLM, or why its import failed


def start_litellm_import() -> threading.Thread:
    """The thread importing LiteLLM, started by the first caller."""
    global _loading
    with _guard:
        if _loading is None:
            _loading = threading.Thread(target=_load, name="memorch-import-litellm", daemon=False)
            _loading.start()
        return _loading


def litellm_loaded() -> bool:
    """Whether LiteLLM is imported (a caller that must not wait seconds for it asks first); not
    after a failed import, which the model call itself then raises."""
    return bool(_outcome) and not isinstance(_outcome[0], ImportError)


def import_litellm() -> ModuleType:
    """LiteLLM, once its import is done; that import's error if it failed."""
    start_litellm_import().join()
    if not _outcome:  # the import raised something else, printed by the thread: a bug, not a setting
        raise RuntimeError("LiteLLM's import failed on its thread (its traceback is printed above)")
    outcome = _outcome[0]
    if isinstance(outcome, ImportError):
        raise outcome
    return outcome


def _load() -> None:
    started = time.perf_counter()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    try:
        import litellm
    except ImportError as exc:  # a broken install: every caller of import_litellm raises it
        _outcome.append(exc)
        return
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    _outcome.append(litellm)
    log.debug("LiteLLM imported in %.1f s", time.perf_counter() - started)
