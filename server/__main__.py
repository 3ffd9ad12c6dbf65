"""``python -m memorch``: the command line."""

from .launch import main

main()
