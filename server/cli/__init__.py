"""The ``memorch`` command line (TODO)."""

from memorch.cli._launch import main

__all__ = ["main"]
