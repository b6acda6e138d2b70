"""The `retrainer` command line, one module per command group; `main` is the console script."""

from retrainer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
