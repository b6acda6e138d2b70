"""Shadow evaluation (`promotion.shadow_batches`): a challenger that passed the gate stays @challenger and
predicts each next labelled batch beside the champion; after `shadow_batches` of them it is promoted only if
the paired test over their rows favours it (`core.shadow`), and otherwise retired, with the reason.

The state lives on the challenger's version (tags `shadow`, `shadow_since`, `shadow_champion`) and in the
records (`BatchRecord.shadow`), so any process — `run`, `serve`'s deployments, a backtest — carries on a
shadow another one started. The shadow batches are read back from the accepted store: the rows kept after
validation, with their labels, which neither model trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from retrainer.core.gate import GateVerdict
from retrainer.core.metrics import MetricError, Outputs, measure
from retrainer.core.records import BatchRecord, ShadowRecord, open_shadow
from retrainer.core.schema import feature_frame, target_values
from retrainer.core.shadow import ShadowVerdict, shadow_verdict
from retrainer.core.training import labelled_rows, model_outputs
from retrainer.registry import ModelVersionInfo, PromotionConflict, UntrustedModel
from retrainer.state import stores
from retrainer.steps.runtime import Runtime

SHADOW, SINCE, AGAINST = "shadow", "shadow_since", "shadow_champion"
ACTOR = "retrainer (shadow evaluation)"


@dataclass(frozen=True)
class InShadow:
    """The challenger in shadow: its version, the batch whose retrain put it there, the champion it is judged against."""

    version: ModelVersionInfo
    since: int
    champion: str


def start_shadow(rt: Runtime, challenger: ModelVersionInfo, champion: ModelVersionInfo, verdict: GateVerdict,
                 batch_index: int) -> ShadowRecord | None:
    """After a retrain's gate. A challenger still in shadow is retired whatever the verdict: @challenger moved
    to the new one. Then a challenger that passed, in auto mode with `promotion.shadow_batches`, is kept as
    @challenger in shadow instead of promoted (None: promote, or not, as usual)."""
    needed = rt.config.promotion.shadow_batches
    replaced = [v for v in rt.registry.versions() if v.tag(SHADOW) == "running" and v.version != challenger.version]
    for version in replaced:
        _retire(rt, version.version, f"replaced by version {challenger.version}, a newer challenger")
    if not verdict.passed or needed == 0 or rt.config.promotion.mode != "auto":
        return None
    rt.registry.tag_version(challenger.version, SINCE, str(batch_index))
    rt.registry.tag_version(challenger.version, AGAINST, champion.version)
    rt.registry.tag_version(challenger.version, SHADOW, "running")
    reason = (f"passed the gate; predicts the next {needed} labelled batch(es) beside champion version "
              f"{champion.version} before it may be promoted")
    rt.registry.describe_version(challenger.version, f"In shadow: {reason}.", lead=True)
    return ShadowRecord(version=challenger.version, outcome="started", needed=needed, reason=reason,
                        replaced=replaced[-1].version if replaced else None)


def in_shadow(rt: Runtime) -> InShadow | None:
    """The @challenger in shadow, if there is one."""
    version = rt.registry.version_by_alias(rt.config.mlflow.aliases.challenger)
    if version is None or version.tag(SHADOW) != "running":
        return None
    return InShadow(version, int(version.tag(SINCE) or -1), version.tag(AGAINST) or "")


def shadow_batch(rt: Runtime, champion: ModelVersionInfo, index: int, champion_metric: float | None,
                 past: list[BatchRecord]) -> ShadowRecord | None:
    """The challenger in shadow on this accepted batch: its metric beside the champion's (`champion_metric`, as
    the cycle measured it on the batch's labelled rows; None: no labels, the batch does not count), and once
    `promotion.shadow_batches` labelled batches are in, promoted or retired by the paired test over their rows.
    A champion moved meanwhile (a person, a rollback) retires it: its gate and shadow were against another
    model. None: no challenger in shadow."""
    if rt.config.promotion.shadow_batches == 0 and open_shadow(past) is None:
        return None  # shadow off and none left open: no registry call on every cycle
    shadow = in_shadow(rt)
    if shadow is None:
        return None
    version, needed = shadow.version.version, rt.config.promotion.shadow_batches
    counted = [r.batch_index for r in past if r.shadow is not None and r.shadow.version == version
               and r.shadow.outcome == "running" and r.shadow.counted and r.batch_index > shadow.since]
    if shadow.champion != champion.version:
        return _retired(rt, version, len(counted), needed,
                        f"@champion moved to version {champion.version} (it was judged against version "
                        f"{shadow.champion})")
    if needed == 0:
        return _retired(rt, version, len(counted), needed, "promotion.shadow_batches is 0 now: no shadow to finish")
    if champion_metric is None:
        return ShadowRecord(version=version, outcome="running", batches=len(counted), needed=needed)
    store = stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name))
    try:
        challenger_model = rt.registry.load_model(shadow.version)
    except UntrustedModel as exc:  # its files changed since its gate, say: it can never serve
        return _retired(rt, version, len(counted), needed, f"refused: {exc}")
    this = labelled_rows(store.read(index), rt.schema)
    try:
        metric = _metric(rt, challenger_model, this)
    except MetricError as exc:  # the team's metric failed on this batch: it does not count
        logging.getLogger("retrainer").warning("retrainer: warning: shadow evaluation: %s", exc)
        return ShadowRecord(version=version, outcome="running", batches=len(counted), needed=needed)
    batches = len(counted) + 1
    running = ShadowRecord(version=version, outcome="running", metric=metric, champion_metric=champion_metric,
                           batches=batches, needed=needed, counted=True)
    if batches < needed:
        return running
    rows = pd.concat([*(labelled_rows(store.read(i), rt.schema) for i in counted), this], ignore_index=True)
    if len(rows) < rt.config.promotion.min_holdout_rows:
        # Too few rows to judge yet (small batches): it goes on predicting until there are enough.
        return running.model_copy(update={"reason": f"{len(rows)} labelled rows so far, fewer than "
                                                    f"promotion.min_holdout_rows {rt.config.promotion.min_holdout_rows}"})
    return _conclude(rt, champion, challenger_model, rows, running)


def _conclude(rt: Runtime, champion: ModelVersionInfo, challenger_model: object, rows: pd.DataFrame,
              running: ShadowRecord) -> ShadowRecord:
    """The paired test over all the shadow batches' rows: promoted (in auto mode, if @champion is still the one
    it was judged against), awaiting approval (manual mode), or retired with the figures."""
    version, batches, needed = running.version, running.batches, running.needed
    metric, champion_metric = running.metric, running.champion_metric
    verdict = _verdict(rt, rt.registry.load_model(champion), challenger_model, rows, batches)
    if not verdict.promote:
        return _retired(rt, version, batches, needed, verdict.reason(), metric, champion_metric)
    if rt.config.promotion.mode != "auto":
        # Switched to manual meanwhile: a person decides, with the shadow's figures in the description.
        rt.registry.tag_version(version, "awaiting-approval", "true")
        rt.registry.tag_version(version, SHADOW, "won")
        rt.registry.describe_version(version, f"Won its shadow, awaiting approval: {verdict.reason()}.", lead=True)
        return running.model_copy(update={"outcome": "won", "reason": verdict.reason()})
    try:
        with rt.lock(rt.config):
            rt.registry.promote(version, expected_champion=champion.version, actor=ACTOR, reason=verdict.reason())
    except PromotionConflict as exc:
        return _retired(rt, version, batches, needed, f"another promotion came first: {exc}", metric, champion_metric)
    except UntrustedModel as exc:
        return _retired(rt, version, batches, needed, f"refused: {exc}", metric, champion_metric)
    rt.registry.tag_version(version, SHADOW, "promoted")
    rt.registry.describe_version(version, f"Promoted from shadow: {verdict.reason()}.", lead=True)
    return running.model_copy(update={"outcome": "promoted", "reason": verdict.reason()})


def _outputs(rt: Runtime, model: object, rows: pd.DataFrame) -> Outputs:
    return model_outputs(model, feature_frame(rows, rt.schema), rt.schema.task)


def _metric(rt: Runtime, model: object, rows: pd.DataFrame) -> float:
    return measure(rt.metric, rt.schema.task, target_values(rows, rt.schema), _outputs(rt, model, rows))


def _verdict(rt: Runtime, champion: object, challenger: object, rows: pd.DataFrame, batches: int) -> ShadowVerdict:
    return shadow_verdict(rt.schema.task, rt.metric, target_values(rows, rt.schema), _outputs(rt, champion, rows),
                          _outputs(rt, challenger, rows), rt.config.promotion, batches, seed=rt.config.training.seed)


def _retire(rt: Runtime, version: str, reason: str) -> None:
    """Out of shadow for good: tagged retired, the reason in its description, @challenger taken off it."""
    rt.registry.tag_version(version, SHADOW, "retired")
    rt.registry.describe_version(version, f"Retired from shadow: {reason}.", lead=True)
    challenger = rt.registry.version_by_alias(rt.config.mlflow.aliases.challenger)
    if challenger is not None and challenger.version == version:
        rt.registry.move_alias(rt.config.mlflow.aliases.challenger, None, ACTOR, f"retired from shadow: {reason}")


def _retired(rt: Runtime, version: str, batches: int, needed: int, reason: str, metric: float | None = None,
             champion_metric: float | None = None) -> ShadowRecord:
    _retire(rt, version, reason)
    return ShadowRecord(version=version, outcome="retired", metric=metric, champion_metric=champion_metric,
                        batches=batches, needed=needed, reason=reason)
