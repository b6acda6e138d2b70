"""What the Prefect UI and a worker's log say of a retrain (pipeline.tasks): the outcome in one line."""

from __future__ import annotations

import pytest

from retrainer.core.records import GateRecord, RetrainOutcome
from retrainer.pipeline.tasks import retrain_markdown

GATE = {"metric_name": "f1", "champion_metric": 0.61, "challenger_metric": 0.83, "improvement": 0.22, "ci_low": 0.1,
        "ci_high": 0.3, "churn": 0.1, "holdout_rows": 450}


def _gate(passed: bool, failed: tuple[str, ...] = ()) -> GateRecord:
    checks = [{"name": name, "passed": name not in failed, "detail": "figures"}
              for name in ("finite outputs", "f1 improvement ≥ margin", "beats the baseline")]
    return GateRecord.model_validate({**GATE, "passed": passed, "checks": checks})


def test_a_promoted_retrain_names_the_new_champion_and_its_gate() -> None:
    outcome = RetrainOutcome(challenger_version="2", promoted=True, new_champion_version="2", gate=_gate(True))
    assert outcome.summary() == "challenger v2 promoted to @champion (gate passed: f1 0.6100 -> 0.8300)"
    markdown = retrain_markdown(outcome, "day-11")
    assert markdown.startswith("## Retrain for batch `day-11`: challenger v2 promoted to @champion")
    assert "- ✓ beats the baseline: figures" in markdown


@pytest.mark.parametrize(("outcome", "line"), [
    (RetrainOutcome(challenger_version="3", gate=_gate(False, ("beats the baseline",))),
     "challenger v3 not promoted: failed: beats the baseline (gate failed: f1 0.6100 -> 0.8300)"),
    (RetrainOutcome(challenger_version="3", gate=_gate(True), approval="rejected: not before the audit"),
     "challenger v3 not promoted: rejected: not before the audit (gate passed: f1 0.6100 -> 0.8300)"),
    (RetrainOutcome(retrain_error="model.estimator 'team:make' raised KeyError: 'x'"),
     "retrain failed: model.estimator 'team:make' raised KeyError: 'x' (@champion unchanged)"),
])
def test_a_retrain_that_did_not_promote_says_why(outcome: RetrainOutcome, line: str) -> None:
    assert outcome.summary() == line
