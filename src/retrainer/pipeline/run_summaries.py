"""What each flow run says of itself in the Prefect UI (its markdown artifact), for the flows whose
outcome is not one batch's cycle (`tasks.cycle_markdown`) or one retrain (`tasks.retrain_markdown`).
Pure: from a flow's own return value to the page a person reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrainer.core.records import RetrainOutcome


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if value is None else str(value) for value in row) + " |" for row in rows]
    return lines


def first_champion_markdown(records: list[dict[str, Any]], adopted_from: str | None = None) -> str:
    """`initialise-champion` / `adopt-champion`: the champion made, and from which batches."""
    version = records[0].get("champion_version") if records else None
    how = f"adopted from `{adopted_from}`" if adopted_from else "trained"
    lines = [f"## Champion v{version} {how}", ""]
    lines += [f"- reference batch `{record.get('batch')}`: {record.get('rows')} rows" for record in records]
    return "\n".join(lines)


def landing_markdown(model: str, outcome: dict[str, Any]) -> str:
    """`monitor`: the batches this run took in from the landing location, and what it left."""
    if "skipped" in outcome:
        return f"## `{model}`: nothing taken in\n\n- {outcome['skipped']}"
    batches = outcome.get("batches", [])
    lines = [f"## `{model}`: {len(batches)} batch(es) taken in", ""]
    if batches:
        lines += _table(["batch", "index", "outcome", "note"],
                        [[f"`{b.get('batch')}`", b.get("batch_index"), f"**{b.get('outcome')}**",
                          b.get("reason") or ("resumed after an unfinished run" if b.get("resumed") else "")]
                         for b in batches])
        lines.append("")
    lines.append(f"- {len(outcome.get('ignored', []))} landed file(s) processed before and ignored; "
                 f"{len(outcome.get('waiting', []))} still being written")
    return "\n".join(lines)


def requeue_markdown(model: str, outcomes: list[dict[str, Any]]) -> str:
    """`requeue`: each quarantined batch run again, and its new decision."""
    lines = [f"## `{model}`: {len(outcomes)} quarantined batch(es) run again", ""]
    if outcomes:
        lines += _table(["batch", "rejected as", "now", "reasons"],
                        [[f"`{o.get('batch')}`", o.get("requeue_of"), f"**{o.get('decision') or 'not run'}**",
                          "; ".join(o.get("reasons") or [])] for o in outcomes])
    return "\n".join(lines)


def staleness_markdown(model: str, outcome: dict[str, Any]) -> str:
    """`staleness-check`: the champion's age, and the retrain it asked for or ran."""
    lines = [f"## `{model}`: {outcome.get('summary')}", ""]
    if not outcome.get("retrain"):
        lines.append("- no retrain needed")
    elif outcome.get("retrain_event_id"):
        lines.append(f"- {outcome.get('reason')}: retrain requested (the `retrain` flow run trains, judges and "
                     "promotes)")
    else:
        lines += [f"- {outcome.get('reason')}", f"- {RetrainOutcome.from_dict(outcome).summary()}"]
    return "\n".join(lines)


def fleet_markdown(results: list[dict[str, Any]]) -> str:
    """`monitor-fleet`: one row per model's cycle (its decision, or its error)."""
    failed = sum("error" in result for result in results)
    lines = [f"## Fleet: {len(results) - failed} of {len(results)} model cycles completed", ""]
    rows = []
    for result in results:
        record = result.get("record") or {}
        outcome = f"**{record.get('decision')}**" if "error" not in result else f"failed: {result['error']}"
        seconds = result.get("seconds")
        rows.append([f"`{Path(str(result.get('config'))).parent.name}`", f"`{Path(str(result.get('batch'))).name}`",
                     outcome, None if seconds is None else f"{seconds:.1f}"])
    lines += _table(["model", "batch", "decision", "seconds"], rows)
    return "\n".join(lines)
