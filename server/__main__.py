"""``python -m memorch``: the command line."""

from memorch.cli import main

main()
