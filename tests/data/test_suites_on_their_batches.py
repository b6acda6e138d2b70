"""The data tier: every expectation suite in `expectations/`, validated with Great Expectations on the
batches it serves (the example config's model, fed the pump readings the scenario generates).

A suite that a data engineer edits into rejecting good data, or into accepting a broken export, fails
here before any flow runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrainer.config import load_config
from retrainer.core.schema import resolve_model_settings, schema_from_settings
from retrainer.replay.scenario import SCRIPT, make_batch
from retrainer.validation import validate_batch

pytestmark = pytest.mark.data

REPOSITORY = Path(__file__).resolve().parents[2]
SUITES = sorted((REPOSITORY / "expectations").glob("*.json"))
# The scenario's scripted events; what the suite must say of each (stable, drifted and changed batches
# are good data; a lost column and a unit change are broken exports).
BROKEN = {"export lost 'vibration_mm_s'": "vibration_mm_s", "temperature in °F": "temperature_c"}


def _config_serving(suite: Path) -> Path:
    """The example config whose model this suite belongs to (a suite is named after its model)."""
    for path in sorted((REPOSITORY / "examples").glob("*.yaml")):
        if load_config(path).model.name == suite.stem:
            return path
    pytest.fail(f"{suite.name}: no config in examples/ names model '{suite.stem}' (the suite serves nothing)")


def test_every_suite_serves_a_model() -> None:
    assert SUITES, "expectations/ holds no suite"
    for suite in SUITES:
        _config_serving(suite)


@pytest.mark.parametrize("suite", SUITES, ids=[s.stem for s in SUITES])
def test_the_suite_accepts_good_batches_and_rejects_broken_exports(suite: Path) -> None:
    config = load_config(_config_serving(suite))
    assert config.suite_path == suite, "the example config does not read the committed suite"
    rng = np.random.default_rng(11)
    batches = [(spec, make_batch(spec, day, 2000, rng)) for day, spec in enumerate(SCRIPT)]
    schema = schema_from_settings(resolve_model_settings(batches[0][1], config.model))
    verdicts = {}
    for spec, frame in batches:
        outcome = validate_batch(frame, schema, suite, config.validation)
        verdicts[spec.name] = outcome
        if spec.event in BROKEN:
            assert not outcome.valid, f"{spec.name} ({spec.event}) was accepted"
            assert any(BROKEN[spec.event] in failure for failure in outcome.failures), outcome.failures
        else:
            assert outcome.valid, f"{spec.name} ({spec.event}) was rejected: {outcome.failures}"
    # Accepted is not silent: a drifted batch may warn, a stable one does not.
    stable = [verdicts[s.name] for s in SCRIPT if s.event == "stable"]
    assert all(not outcome.warnings for outcome in stable), [o.warnings for o in stable if o.warnings]
