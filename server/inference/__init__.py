"""What the LLM does with what was said: one structured call that extracts facts and reconciles
them with what is known. Takes the engine, never the facade.

- ``_plan``: prepare (candidates, prompt), ask (the one call), apply (under the write lock,
  re-checking candidates); ``infer`` runs the three.
- ``_add``: the add paths with a model: infer and apply, a procedural summary, a dry run;
  ``degrade`` (no model answered: stored as said), ``defer`` (background inference) and
  ``overdue`` (the model missed MEMORCH_LLM_ADD_TIMEOUT: stored as said, pending).
- ``_pending``: messages waiting for inference: ``BackgroundInference`` and ``reprocess``.
- ``_prompts``: the prompts (full, and compact for small models) and the reply schemas (the
  pydantic models that validate a reply, and the strict JSON schema sent to the model).
"""
