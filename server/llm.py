"""LiteLLM access. LiteLLM is imported only on the first LLM or remote-embedding call."""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType


@cache
def import_litellm() -> ModuleType:
    # Without this LiteLLM fetches a model cost map from the internet on import: wasted
    # seconds offline and a request nobody asked for.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm
