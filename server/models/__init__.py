"""The models memorch calls: the LLM through LiteLLM, and the embedders.

- ``_llm``: structured LLM calls: the schema in the form the endpoint enforces, tolerant parsing
  (reasoning stripped), one repair request, fallback models.
- ``_litellm``: LiteLLM's import, once, on a thread the interpreter waits for at exit (offline
  cost map, no telemetry).
- ``_structured``: which form of structured output an endpoint enforces (``json_schema``,
  llama-cpp-python's schema extension, ``guided_json``, Ollama's ``format``, or JSON mode with the
  schema in the prompt), found by a probe on first use and cached per model, API base and server
  version in the data directory.
- ``_providers``: what is known of a model before any request: the provider LiteLLM routes it
  to (``UNKNOWN_LLM_PROVIDER``) and the keys it needs (``MISSING_CREDENTIALS``).
- ``_resilience``: retries with backoff, a circuit breaker per model (only failed calls count:
  a model that answers is not an outage), error translation.
- ``_embeddings``: the bundled local embedder (default, offline) or any LiteLLM embedding model,
  behind a persistent cache.
- ``_minilm``: all-MiniLM-L6-v2 run by onnxruntime from the model in ``_weights/``.
- ``_static_embedder``: a static embedder derived from MiniLM (faster, somewhat less accurate).
"""
