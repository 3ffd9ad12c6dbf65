"""Pure values and checks: no I/O, no stores, no models.

- ``_validation``: every input check at the facade's edge (scopes, ids, metadata, limits); each
  raises ``ValidationError`` and changes nothing.
- ``_messages``: what callers pass to ``add`` turned into checked ``Message`` values.
- ``_records``: building memory records and the changes that write them.
- ``_expiry``: ``expires_at`` as given to add and update, the per-scope default, durations, and
  the mark that carries an add's expiry to the records it makes.
- ``_redaction``: credentials out of text before it is stored, embedded or shown to a model.
- ``_project``: which project a server works for (``--project auto`` from the git remote).
- ``_identity``: whom an HTTP caller speaks for, and binding a tool call to that identity.
"""
