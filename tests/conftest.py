"""Hermetic test environment: Prefect, MLflow, GE and Evidently stay local and quiet.

Set at import, before any test imports Prefect, whose settings are read once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="retrainer-tests-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
for _key in [k for k in os.environ if k.startswith("RETRAINER_")]:
    os.environ.pop(_key)

from retrainer.observability import prepare_environment  # noqa: E402

prepare_environment()


# Test files whose tests share nothing (no module or session fixture of their own): their tests are
# spread over the xdist workers one by one. Every other file keeps its tests on one worker, so that a
# module fixture (a served stack, a Spark session, a replayed stream) starts once (`--dist loadgroup`).
SPREAD_TEST_FILES = {"test_cli.py", "test_benchmarks_smoke.py"}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    import pytest

    for item in items:
        if item.path.name not in SPREAD_TEST_FILES:
            item.add_marker(pytest.mark.xdist_group(str(item.path.relative_to(config.rootpath))))
