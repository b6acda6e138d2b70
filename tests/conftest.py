"""Hermetic test environment: Prefect, MLflow, GE and Evidently stay local and quiet.

Set at import, before any test imports Prefect, whose settings are read once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="retrainer-tests-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
for _key in [k for k in os.environ if k.startswith("RETRAINER_")]:
    os.environ.pop(_key)

from retrainer.observability import prepare_environment  # noqa: E402

prepare_environment()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real, temporary Prefect API (SQLite), one per test worker: the flow runs of the integration tests,
    and the commands of the e2e tests that pass its URL on (each would otherwise start and migrate a
    Prefect server of its own: ~10 s a command). Yields the API's URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())

