"""``python -m memorch``: the command line."""

from .cli import main

main()
