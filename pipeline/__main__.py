"""`python -m pipeline` is the `cityops` command."""

from pipeline.cli import main

main()
