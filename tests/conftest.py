"""Hermetic test environment: Prefect, MLflow, GE and Evidently stay local and quiet.

Set at import, before any test imports Prefect, whose settings are read once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="retrainer-tests-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
for _key in [k for k in os.environ if k.startswith("RETRAINER_")]:
    os.environ.pop(_key)

from retrainer.observability import prepare_environment  # noqa: E402

prepare_environment()
