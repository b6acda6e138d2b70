"""Judging and promoting a challenger: both models on the same holdout (`core.gate` decides),
the compare-and-set promotion under the model's lock, and the check that the new champion serves."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from retrainer.core.gate import GateVerdict, ModelCosts, gate, serves
from retrainer.core.importance import importance_shift
from retrainer.core.schema import (
    feature_frame,
    target_values,
)
from retrainer.core.training import (
    model_outputs,
    train_baseline,
)
from retrainer.registry import (
    ModelVersionInfo,
    PromotionConflict,
)
from retrainer.steps.runtime import FEATURE_IMPORTANCE, PromotionLock, Runtime, runtime
from retrainer.steps.training import TrainingWindow, _digest

LATENCY_ROUNDS = 5


def _serving_costs(champion: Any, challenger: Any, inputs: pd.DataFrame) -> ModelCosts:
    """Prediction time per 1,000 rows and pickled size. The two models take turns, best of
    LATENCY_ROUNDS each: a burst of load on a shared worker then slows both rather than one (CI saw
    a 3× ratio from three back-to-back runs of one model caught by other processes)."""
    best = {"champion": float("inf"), "challenger": float("inf")}
    for _ in range(LATENCY_ROUNDS):
        for role, model in (("champion", champion), ("challenger", challenger)):
            started = time.perf_counter()
            model.predict(inputs)
            best[role] = min(best[role], time.perf_counter() - started)
    per_1k = 1000 / max(len(inputs), 1)
    return ModelCosts(best["champion"] * per_1k, best["challenger"] * per_1k, len(pickle.dumps(champion)),
                      len(pickle.dumps(challenger)))


def evaluate(rt: Runtime, champion: ModelVersionInfo, challenger: ModelVersionInfo, window: TrainingWindow) -> GateVerdict:
    """Both models on the same held-out rows (digest tagged on both versions); the gate decides."""
    schema, settings = rt.schema, rt.config.promotion
    holdout = window.holdout
    inputs = feature_frame(holdout, schema)
    champion_model = rt.registry.load_model(champion)
    challenger_model = rt.registry.load_model(challenger)
    baseline = model_outputs(train_baseline(window.train, schema), inputs, schema.task) if settings.baseline else None
    verdict = gate(
        schema.task,
        target_values(holdout, schema),
        model_outputs(champion_model, inputs, schema.task),
        model_outputs(challenger_model, inputs, schema.task),
        settings,
        seed=rt.config.training.seed,
        slices={column: holdout[column].to_numpy() if column in holdout.columns else None
                for column in settings.slices},
        baseline_predictions=baseline,
        costs=_serving_costs(champion_model, challenger_model, inputs),
        holdout_source=window.holdout_source,
        metric=rt.metric,
        groups={column: holdout[column].to_numpy() if column in holdout.columns else None
                for column in (settings.fairness.groups if settings.fairness else [])},
    )
    verdict = replace(verdict, importance_shift=_importance_shift(rt, champion, challenger))
    digest = _digest(holdout)
    # The same digest on both: a comparison is only ever between scores on the same rows.
    for version in (champion.version, challenger.version):
        rt.registry.tag_version(version, "holdout_digest", digest)
    rt.registry.tag_version(challenger.version, "gate", "passed" if verdict.passed else "failed")
    # Which champion the verdict is about: approving it later only makes sense against that one.
    rt.registry.tag_version(challenger.version, "gate_champion", champion.version)
    rt.registry.describe_version(challenger.version, verdict.summary(), lead=True)
    return verdict


def _importance_shift(rt: Runtime, champion: ModelVersionInfo, challenger: ModelVersionInfo) -> list[str]:
    """The features the challenger leans on differently from the champion, each version's permutation importance
    on its own validation rows compared (a champion made before importance was kept, or adopted with none: [])."""
    documents = [rt.registry.load_document(version, FEATURE_IMPORTANCE) for version in (champion, challenger)]
    if any(document is None or document.get("metric") != rt.metric.name for document in documents):
        return []
    before, after = (document["shares"] for document in documents if document is not None)
    return [shift.describe() for shift in importance_shift(before, after)]


@dataclass
class Promotion:
    """What `promote` did with a verdict: whether @champion moved (or why not), and how to undo it."""

    promoted: bool
    # Why a passing challenger was not promoted: another promotion moved @champion first.
    conflict: str | None = None
    # What it takes to put the aliases back should a later check fail (`undo_promotion`).
    undo: dict[str, Any] | None = None


def promote(rt: Runtime, challenger: ModelVersionInfo, champion: ModelVersionInfo, verdict: GateVerdict) -> Promotion:
    """auto: a passing gate moves @champion; manual: the version waits for a person.

    One promotion of a model at a time (the promotion lock), and only if @champion is still the
    version the challenger was judged against (compare-and-set): otherwise the verdict is stale.
    """
    if not verdict.passed:
        return Promotion(False)
    if rt.config.promotion.mode == "manual":
        rt.registry.tag_version(challenger.version, "awaiting-approval", "true")
        return Promotion(False)
    reason = (f"gate passed: {verdict.metric_name} {verdict.champion_metric:.4f} -> "
              f"{verdict.challenger_metric:.4f}, interval [{verdict.ci_low:+.4f}, {verdict.ci_high:+.4f}]")
    try:
        with rt.lock(rt.config):
            previous = rt.registry.version_by_alias(rt.config.mlflow.aliases.previous_champion)
            rt.registry.promote(challenger.version, expected_champion=champion.version, actor="retrainer (auto)",
                                reason=reason)
    except PromotionConflict as exc:
        return Promotion(False, str(exc))
    return Promotion(True, undo={"config_path": str(rt.config_path), "promoted": challenger.version,
                                 "champion_before": champion.version,
                                 "previous_before": previous.version if previous else None})


def undo_promotion(undo: dict[str, Any], lock: PromotionLock) -> None:
    """A check after a promotion failed after @champion moved: put the aliases back."""
    rt = runtime(undo["config_path"], lock)
    with rt.lock(rt.config):
        restored = rt.registry.undo_promotion(undo["promoted"], undo["champion_before"], undo["previous_before"],
                                              actor="retrainer (transaction rollback)",
                                              reason=f"checks after promoting version {undo['promoted']} failed")
    if restored:
        rt.registry.tag_version(undo["promoted"], "gate", "failed-after-promotion")


class PromotionCheckFailed(Exception):
    """The new @champion did not load or predict as served; the promotion is rolled back."""


def load_served_model(rt: Runtime, champion: ModelVersionInfo) -> Any:
    """The champion loaded afresh from the store, as a serving process loads it (a store that did not
    answer is asked again before the check judges)."""
    return rt.registry.load_model(champion, fresh=True)


def verify_promotion(rt: Runtime, challenger: ModelVersionInfo, promotion: Promotion, window: TrainingWindow,
                     load: Callable[[Runtime, ModelVersionInfo], Any] = load_served_model) -> None:
    """After a promotion, load @champion from the store as a serving process would (`load`: the
    pipeline's retries a store that did not answer) and predict the holdout: a model that does not
    load or gives non-finite outputs must not stay @champion."""
    if not promotion.promoted:
        return
    try:
        champion = rt.registry.champion()
    except Exception as exc:
        # Not knowing is no evidence against the new champion: keep the promotion, say so.
        logging.getLogger("retrainer").warning("retrainer: warning: could not check the new @champion: %s", exc)
        return
    if champion is None or champion.version != challenger.version:
        return  # moved on since (a person, or a later promotion): not this transaction's to check
    inputs = feature_frame(window.holdout, rt.schema)
    try:
        model: Any = load(rt, champion)
        predictions = np.asarray(model.predict(inputs))
    except Exception as exc:
        raise PromotionCheckFailed(f"@champion (version {champion.version}) does not serve: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not serves(predictions, len(inputs)):
        raise PromotionCheckFailed(f"@champion (version {champion.version}) gave unusable predictions")


def after_rollback(rt: Runtime, challenger: ModelVersionInfo, failure: str) -> tuple[Promotion, str]:
    """What a failed check left: the rollback hook restored @champion, or it could not (then say so)."""
    try:
        champion = rt.registry.champion()
    except Exception as exc:
        return Promotion(False), f"{failure}; whether @champion was restored is unknown ({exc})"
    if champion is not None and champion.version == challenger.version:
        return Promotion(True), f"{failure}; the rollback did NOT restore @champion: it is still version " \
                                f"{challenger.version}"
    return Promotion(False), f"{failure}; @champion restored to version {champion.version if champion else '-'}"
