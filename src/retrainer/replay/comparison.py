"""Policies compared on one stream (pure): what each did per batch, and the figures a user
chooses a policy on — mean prequential metric, retrains, promotions, retrains on rejected data,
and, against a ground-truth file, detection delay after known change points and false retrains
on stretches known to be stable.

Every policy is judged on the same batches: those the configured policy's suite accepted and
that carry labels. A rejected batch's metric measures broken data, not the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from retrainer.errors import UserError

ChangeKind = Literal["abrupt", "gradual", "recurring"]


class GroundTruthError(UserError):
    """The ground-truth file cannot be used; the message says why."""


@dataclass(frozen=True)
class BatchOutcome:
    """One policy on one batch after the initial ones."""

    batch: str
    # The serving model's metric on this batch, before the batch's labels were used (prequential).
    metric: float | None
    retrained: bool = False
    promoted: bool = False
    # The policy refused the batch (only a policy that validates can).
    rejected: bool = False
    # A retrain whose training data held rows of a batch the suite rejects.
    trained_on_rejected: bool = False
    note: str = ""
    # This batch's retrain put its challenger in shadow (`promotion.shadow_batches`) instead of promoting it;
    # `promoted` on a batch without a retrain: the challenger in shadow was promoted there.
    shadowed: bool = False


@dataclass
class PolicyRun:
    """One policy's replay of the stream: its outcome per batch, and the seconds it took."""

    policy: str
    outcomes: list[BatchOutcome]
    seconds: float = 0.0


@dataclass(frozen=True)
class ChangePoint:
    """A known change in the stream: the batch it starts at, and its kind as the truth file gives it."""

    batch: str
    kind: ChangeKind = "abrupt"


@dataclass(frozen=True)
class GroundTruth:
    """What is known of a stream: where it changed, and the stretches where nothing did."""

    change_points: tuple[ChangePoint, ...] = ()
    # Inclusive (first, last) batch names of stretches where nothing changed.
    stable: tuple[tuple[str, str], ...] = ()


@dataclass
class PolicySummary:
    """One policy's figures on the stream: its mean metric over the judged batches, retrains, promotions
    and retrains on rejected data, and against a ground truth its detection delays and false retrains
    (None: no stable stretch was given)."""

    policy: str
    metric_name: str
    mean_metric: float | None
    scored_batches: int
    retrains: int
    promotions: int
    retrains_on_rejected: int
    seconds: float
    # Per change point: batches from the change to the first retrain before the next change (None: missed).
    detection_delays: dict[str, int | None] = field(default_factory=dict)
    false_retrains: int | None = None

    @property
    def missed_changes(self) -> int:
        """How many known changes no retrain followed before the next change."""
        return sum(delay is None for delay in self.detection_delays.values())

    @property
    def mean_delay(self) -> float | None:
        """The mean detection delay in batches over the changes that were detected (None: none was)."""
        found = [d for d in self.detection_delays.values() if d is not None]
        return sum(found) / len(found) if found else None

    def to_dict(self) -> dict[str, Any]:
        """The figures as the comparison's JSON document holds them, seconds rounded to hundredths."""
        return {"policy": self.policy, "metric_name": self.metric_name, "mean_metric": self.mean_metric,
                "scored_batches": self.scored_batches, "retrains": self.retrains, "promotions": self.promotions,
                "retrains_on_rejected": self.retrains_on_rejected, "seconds": round(self.seconds, 2),
                "detection_delays": self.detection_delays, "missed_changes": self.missed_changes,
                "false_retrains": self.false_retrains}


def _entry(item: Any, source: str) -> ChangePoint:
    if isinstance(item, (str, int)):
        return ChangePoint(str(item))
    if isinstance(item, dict) and "batch" in item:
        kind = item.get("kind", "abrupt")
        if kind not in ("abrupt", "gradual", "recurring"):
            raise GroundTruthError(f"{source}: change point '{item['batch']}': kind '{kind}' is not one of "
                                   "abrupt, gradual, recurring")
        return ChangePoint(str(item["batch"]), kind)
    raise GroundTruthError(f"{source}: a change point is a batch name or {{batch: NAME, kind: abrupt|gradual|recurring}}"
                           f", not {item!r}")


def parse_ground_truth(document: Any, source: str = "ground truth") -> GroundTruth:
    """`{change_points: [NAME | {batch, kind}], stable: [[FIRST, LAST], ...]}` (YAML or JSON)."""
    if not isinstance(document, dict) or not set(document) <= {"change_points", "stable"}:
        raise GroundTruthError(f"{source}: expected a mapping with 'change_points' and/or 'stable'")
    points = tuple(_entry(item, source) for item in document.get("change_points") or [])
    stable = []
    for item in document.get("stable") or []:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise GroundTruthError(f"{source}: a stable stretch is [FIRST, LAST] batch names, not {item!r}")
        stable.append((str(item[0]), str(item[1])))
    return GroundTruth(points, tuple(stable))


def load_ground_truth(path: Path) -> GroundTruth:
    """Read a ground-truth file (YAML or JSON); raises GroundTruthError when it cannot be read or used."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GroundTruthError(f"{path}: cannot read the ground-truth file ({exc})") from exc
    return parse_ground_truth(document, str(path))


def check_ground_truth(truth: GroundTruth, batches: Sequence[str]) -> None:
    """Every batch the file names is in the stream, stretches in order: a typo must not read as 'missed'."""
    known = set(batches)
    named = [p.batch for p in truth.change_points] + [name for pair in truth.stable for name in pair]
    unknown = [name for name in named if name not in known]
    if unknown:
        raise GroundTruthError(f"ground truth names batch(es) not in the stream: {', '.join(unknown)}")
    for first, last in truth.stable:
        if batches.index(first) > batches.index(last):
            raise GroundTruthError(f"ground truth: stable stretch [{first}, {last}] ends before it starts")


def detection_delays(retrain_positions: Iterable[int], change_positions: Sequence[int],
                     end: int) -> list[int | None]:
    """For each change (positions sorted), batches until the first retrain at or after it and
    before the next change; None when there is none."""
    retrains = sorted(retrain_positions)
    delays: list[int | None] = []
    for i, start in enumerate(change_positions):
        stop = change_positions[i + 1] if i + 1 < len(change_positions) else end
        hit = next((p for p in retrains if start <= p < stop), None)
        delays.append(None if hit is None else hit - start)
    return delays


def summarise_run(run: PolicyRun, order: Sequence[str], scored: set[str], metric_name: str,
                  truth: GroundTruth | None = None) -> PolicySummary:
    """`order`: every batch name of the stream in replay order; `scored`: the batches all policies are judged on."""
    values = [o.metric for o in run.outcomes
              if o.batch in scored and o.metric is not None and math.isfinite(o.metric)]
    summary = PolicySummary(
        policy=run.policy, metric_name=metric_name,
        mean_metric=sum(values) / len(values) if values else None, scored_batches=len(values),
        retrains=sum(o.retrained for o in run.outcomes), promotions=sum(o.promoted for o in run.outcomes),
        retrains_on_rejected=sum(o.trained_on_rejected for o in run.outcomes), seconds=run.seconds,
    )
    if truth is not None:
        position = {name: i for i, name in enumerate(order)}
        retrains = [position[o.batch] for o in run.outcomes if o.retrained]
        points = sorted(truth.change_points, key=lambda p: position[p.batch])
        delays = detection_delays(retrains, [position[p.batch] for p in points], len(order))
        summary.detection_delays = {p.batch: d for p, d in zip(points, delays, strict=True)}
        summary.false_retrains = sum(
            any(position[first] <= p <= position[last] for first, last in truth.stable) for p in retrains
        ) if truth.stable else None
    return summary


def pareto_frontier(points: Sequence[tuple[float | None, int]], higher_is_better: bool) -> list[bool]:
    """Which (metric, retrains) points no other point beats: as good a metric with no more retrains,
    and strictly better in one of the two."""
    def better_or_equal(a: float, b: float) -> bool:
        return a >= b if higher_is_better else a <= b

    flags = []
    for i, (metric, retrains) in enumerate(points):
        if metric is None:
            flags.append(False)
            continue
        dominated = any(
            j != i and other is not None and better_or_equal(other, metric) and other_retrains <= retrains
            and (other != metric or other_retrains < retrains)
            for j, (other, other_retrains) in enumerate(points)
        )
        flags.append(not dominated)
    return flags


def run_from_records(policy: str, records: Sequence[Any], accepted: set[int], window_batches: int,
                     seconds: float = 0.0) -> PolicyRun:
    """The configured policy's run, read off its timeline (`BatchRecord`s, initial ones skipped).

    A retrain trained on the accepted batches of its window (from the change it names, at most
    `window_batches` back); `accepted` holds the indices the accepted store has, so a rejected
    batch that reached the store would show up here as a retrain on rejected data."""
    rejected = {r.batch_index for r in records if r.decision == "reject_batch"}
    outcomes = []
    for r in records:
        if r.decision == "init":
            continue
        on_rejected = False
        if r.decision == "retrain":
            first = max(r.window_start or 0, r.batch_index - window_batches + 1)
            on_rejected = any(i in accepted and i in rejected for i in range(first, r.batch_index + 1))
        note = "; ".join(r.reasons[:1])
        outcomes.append(BatchOutcome(r.batch, r.metric, retrained=r.decision == "retrain", promoted=r.champion_moved,
                                     rejected=r.decision == "reject_batch", trained_on_rejected=on_rejected,
                                     note=note, shadowed=r.decision == "retrain" and r.shadow is not None
                                     and r.shadow.outcome == "started"))
    return PolicyRun(policy, outcomes, seconds)
