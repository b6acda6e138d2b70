"""Manual mode's approval in the Prefect UI: a deployed retrain flow run pauses with a form
(approve or reject, with a comment) until a person answers or the timeout passes.

The MLflow-UI path (the `awaiting-approval` tag, `retrainer promote`, or moving the alias by hand)
works whether or not anyone answers here: a timeout leaves the version waiting on that path.
"""

from __future__ import annotations

from typing import Any

from prefect.input import RunInput
from pydantic import Field

from retrainer.config import RetrainerConfig
from retrainer.steps.record import ApprovalAnswer

# How often the paused run looks for the answer (Prefect's default is 10 s).
POLL_SECONDS = 5
AWAITING = "awaiting approval (Prefect UI, `retrainer promote` or the MLflow UI)"


class Approval(RunInput):
    """The form shown on the paused flow run in the Prefect UI."""

    # No default: resuming without an answer is not taken as a rejection.
    approve: bool = Field(description="Promote the challenger to @champion?")
    comment: str = Field("", description="Why: kept in the alias history and on the model version.")


def approval_wanted(config: RetrainerConfig, outcome: dict[str, Any]) -> bool:
    """Only a deployment's own run pauses (a worker can wait; `retrainer run` in a terminal should not),
    only in manual mode, and only for a challenger that passed its gate."""
    from prefect.runtime import deployment

    gate = outcome.get("gate") or {}
    return (config.promotion.mode == "manual" and config.promotion.approval_in_prefect
            and bool(gate.get("passed")) and not outcome.get("promoted")
            and outcome.get("challenger_version") is not None and deployment.id is not None)


def ask_for_approval(config: RetrainerConfig, outcome: dict[str, Any]) -> ApprovalAnswer | None:
    """Pause the current flow run for a person's answer; None when none came in time."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    version = outcome["challenger_version"]
    form = Approval.with_initial_data(description=_description(config.model.name, version, outcome), comment="")
    print(f"waiting up to {config.promotion.approval_timeout_seconds} s for approval of version {version} "
          "(Prefect UI: resume this flow run)")
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=config.promotion.approval_timeout_seconds,
                                poll_interval=POLL_SECONDS)
    except FlowPauseTimeout:
        # The server fails a run whose pause expired; the caller records nothing more.
        return None
    return ApprovalAnswer(bool(answer.approve), str(answer.comment))


def _description(model: str, version: str, outcome: dict[str, Any]) -> str:
    gate = outcome.get("gate") or {}
    lines = [f"### Promote version {version} of `{model}` to @champion?", ""]
    if gate:
        lines.append(f"{gate.get('metric_name')}: champion {gate.get('champion_metric', 0):.4f}, challenger "
                     f"{gate.get('challenger_metric', 0):.4f} on {gate.get('holdout_rows')} held-out rows")
        lines.append("")
        lines += [f"- {'PASS' if check.get('passed') else 'FAIL'} {check.get('name')}: {check.get('detail')}"
                  for check in gate.get("checks", [])]
        lines.append("")
    lines.append("Approve to promote now; reject to take it off the approval list. "
                 "Without an answer it stays tagged `awaiting-approval` in MLflow.")
    return "\n".join(lines)
