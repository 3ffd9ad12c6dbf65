"""The models memorch calls: the LLM through LiteLLM, and the embedders.

- ``_llm``: structured LLM calls: schema where the provider supports it, tolerant parsing, one
  repair request, fallback models; ``import_litellm`` (lazy, offline cost map).
- ``_resilience``: retries with backoff, a circuit breaker per model, error translation.
- ``_embeddings``: the bundled local embedder (default, offline) or any LiteLLM embedding model,
  behind a persistent cache.
- ``_minilm``: all-MiniLM-L6-v2 as a numpy forward pass over the weights in ``_weights/``.
- ``_static_embedder``: a static embedder derived from MiniLM (faster, somewhat less accurate).
"""
