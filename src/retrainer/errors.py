"""One base for retrainer's own errors, in two kinds, so the command line catches them once:

- `UserError`: something the person running retrainer can fix (a bad config, a bad input file,
  a refused model, a held lock). The CLI prints its one-line message and exits 2.
- `ServiceError`: a service behind the pipeline failed (a webhook, the Pushgateway). Exit 3.

Errors raised by the service libraries themselves (MLflow, SQLAlchemy, Prefect, HTTP clients) are
not wrapped; the CLI recognises them by their package (`cli.errors`).
"""

from __future__ import annotations


class RetrainerError(Exception):
    """Base of every error retrainer raises on purpose; the message is one line for a person."""


class UserError(RetrainerError):
    """An error the user can fix: printed as one line, exit status 2."""


class ServiceError(RetrainerError):
    """A service the pipeline talks to failed or refused: printed as one line, exit status 3."""
