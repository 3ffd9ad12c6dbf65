"""Reading memories back: search, graph reads and time.

- ``_search``: hybrid retrieval: vector similarity + BM25 full text + graph links, fused into an
  absolute relevance in [0, 1].
- ``_calibration``: the score's absolute scale: each query's chance level and ceiling for the
  vector signal, the BM25 transform, evidence down the list.
- ``_centering``: the vector signal's candidates ordered by similarity less closeness to the
  scope's mean (hubs no longer outrank the answer).
- ``_context``: a search's best hits bring along the memories said just before and after them.
- ``_graph``: graph memory on the ledger and the Kuzu index: entity resolution, graph lookups.
- ``_timeline``: what was true when (``as_of``), and answers within a token budget (``max_tokens``).
"""
