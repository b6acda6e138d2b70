"""Shadow evaluation (`promotion.shadow_batches`): the verdict on a challenger that predicted the labelled
batches after its gate beside the champion. Pure: both models' outputs on those batches' rows in, a verdict out.

A gate's holdout is part of one batch and may be small or unlucky; the shadow batches are the next live
batches, which neither model trained on, scored prequentially. The challenger is promoted only when the same
paired test as the gate's (`core.gate.paired_comparison`: improvement at least the margin, its bootstrap
interval above zero and the margin) favours it over all of their rows together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retrainer.config import PromotionSettings, Task
from retrainer.core.gate import Check, PairedComparison, check_line, paired_comparison
from retrainer.core.metrics import MetricSpec, Outputs


@dataclass(frozen=True)
class ShadowVerdict:
    """Whether the challenger in shadow is promoted, and the figures over the shadow batches' rows."""

    promote: bool
    metric_name: str
    batches: int
    comparison: PairedComparison

    @property
    def checks(self) -> list[Check]:
        """The paired test's checks, as the gate names them."""
        return self.comparison.checks

    def reason(self) -> str:
        """The verdict for a person, in one line: the figures, and the checks that failed."""
        c = self.comparison
        head = (f"shadow over {self.batches} labelled batch(es), {c.rows} rows: {self.metric_name} champion "
                f"{c.champion_metric:.4f}, challenger {c.challenger_metric:.4f}, "
                f"interval [{c.ci_low:+.4f}, {c.ci_high:+.4f}]")
        if self.promote:
            return f"{head}: the challenger wins"
        failed = "; ".join(check_line(check.passed, check.name, check.detail).removeprefix("- ")
                           for check in c.checks if not check.passed)
        return f"{head}: not better ({failed})"


def shadow_verdict(task: Task, spec: MetricSpec, y_true: npt.ArrayLike, champion: Outputs, challenger: Outputs,
                   settings: PromotionSettings, batches: int, seed: int = 0) -> ShadowVerdict:
    """The paired test over the shadow batches' labelled rows (both models' outputs on the same rows)."""
    y = np.asarray(y_true, dtype=object if task == "classification" else float)
    if not (len(y) == len(champion.predictions) == len(challenger.predictions)):
        raise ValueError("shadow evaluation needs both models' outputs on the same rows")
    comparison = paired_comparison(task, spec, y, champion, challenger, settings, seed, "shadow", "shadow rows")
    return ShadowVerdict(comparison.passed, spec.name, batches, comparison)
