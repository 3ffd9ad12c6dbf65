"""The schema as a request carries it to one route: the form the probe chose
(``memorch.models._structured``), the constraints only a local grammar gets, and the schema
written into the prompt when nothing enforces it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memorch.models._structured import Structure

# A local server enforcing a schema as a grammar lets a small model go on for as long as the
# grammar allows: lists get a length bound, and the reply a token budget. SmolLM2-135M filled a
# 20-item relations list in 5 of 15 adds (1,400-1,700 tokens, 160-290 s each on two busy cores);
# 12 facts or relations is still more than one add usually holds.
LOCAL_MAX_ITEMS = 12
LOCAL_MAX_TOKENS = 2048
# Constraints only a grammar-enforcing local server gets, declared beside a field under this key:
# string lengths, patterns and integer enums that hosted providers' schema dialects do not all
# accept (Gemini has no integer enums; OpenAI's strict mode no ``maxLength``).
LOCAL_ONLY = "x-memorch-local"


def fitted(schema: Any, local: bool) -> Any:
    """``schema`` as sent to one route: for a grammar-enforcing local server, each ``LOCAL_ONLY``
    constraint merged into its field and every list bounded to ``LOCAL_MAX_ITEMS`` unless it has
    a bound already; for a hosted provider, the ``LOCAL_ONLY`` constraints left out."""
    if isinstance(schema, list):
        return [fitted(item, local) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: fitted(value, local) for key, value in schema.items() if key != LOCAL_ONLY}
    if local:
        out.update(schema.get(LOCAL_ONLY, {}))
        if out.get("type") == "array":
            out.setdefault("maxItems", LOCAL_MAX_ITEMS)
    return out


def request_params(structure: Structure, name: str, schema: dict[str, Any], num_ctx: int | None) -> dict[str, Any]:
    """The keyword arguments for ``litellm.completion`` that carry ``schema`` in this form."""
    form, local = structure.form, structure.server.kind != "hosted"
    params: dict[str, Any] = {"max_tokens": LOCAL_MAX_TOKENS} if local else {}
    schema = fitted(schema, local)
    if form in ("json_schema", "ollama_format"):  # LiteLLM sends the latter as Ollama's ``format``
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    elif form == "schema_extension":
        params["response_format"] = {"type": "json_object", "schema": schema}
    elif form == "guided_json":
        params["extra_body"] = {"guided_json": schema}
    elif form == "json":
        params["response_format"] = {"type": "json_object"}
    if structure.server.kind == "ollama":
        if structure.think_off:
            params["think"] = False
        if num_ctx:
            params["num_ctx"] = num_ctx
    elif structure.server.kind in ("llama-server", "vllm"):
        # Reasoning templates (Qwen3 and the like) honour this; the others ignore it.
        params.setdefault("extra_body", {})["chat_template_kwargs"] = {"enable_thinking": False}
    return params


def with_schema_in_prompt(messages: list[dict[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """The messages with the schema stated in the system message (when nothing enforces it)."""
    shown = json.dumps(fitted(schema, local=False), separators=(",", ":"))
    note = f"The reply must be one JSON object that validates against this JSON schema:\n{shown}"
    if messages and messages[0].get("role") == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]
