"""Hermetic test environment: Prefect, MLflow, GE and Evidently stay local and quiet.

Set at import, before any test imports Prefect, whose settings are read once.
"""

from __future__ import annotations

import os
import tempfile
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


# The slowest test files first (seconds per file, measured on this machine on 2026-12-03), so that
# pytest-xdist's `--dist loadfile` hands them out at the start and both workers finish together,
# instead of one worker starting a ten-minute file while the other has nothing left to do.
SLOW_FILES_FIRST = (
    "integration/test_served_deployments.py",  # ~520 s: the production stack, three served workers
    "integration/test_kill_safety.py",  # ~250 s
    "e2e/test_cli_backtest.py",  # ~175 s
    "integration/test_mlflow_server.py",  # ~150 s
    "e2e/test_smoke_scale_out.py",  # ~145 s
    "e2e/test_smoke_cycle_speed.py",  # ~120 s
    "e2e/test_cli_demo.py",  # ~105 s
    "integration/test_bad_input_corpus.py",
    "e2e/test_cli_suites.py",
    "integration/test_spark.py",
    "integration/test_backtest_cycle.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOW_FILES_FIRST)}
    tests = config.rootpath / "tests"

    def position(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(tests).as_posix(), len(rank))

    items.sort(key=position)  # stable: a file's tests stay together and in their order
