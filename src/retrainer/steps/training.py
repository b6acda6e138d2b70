"""Training a challenger: its window of accepted batches and holdout, the training, the
choice between the window since the change and the full one, registration; the first champion's
suite draft."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from retrainer.core.importance import top_features
from retrainer.core.records import trained_through
from retrainer.core.schema import (
    BatchSchema,
    feature_frame,
    parse_times,
    target_values,
    typed_view,
)
from retrainer.core.training import (
    TrainedModel,
    TrainingError,
    labelled_rows,
    measured,
    model_outputs,
    pick_candidate,
    plan_holdout,
    split_holdout,
    train,
)
from retrainer.monitoring import (
    fit_estimator,
)
from retrainer.registry import (
    ModelVersionInfo,
)
from retrainer.state import stores
from retrainer.steps.runtime import FEATURE_IMPORTANCE, PERFORMANCE_ESTIMATOR, Runtime, history
from retrainer.validation import draft_suite, save_suite


# -- training, evaluation, promotion ----------------------------------------------------------
def _window_tags(schema: BatchSchema, frame: pd.DataFrame) -> dict[str, str]:
    if schema.time_column and schema.time_column in frame.columns:
        times = parse_times(frame[schema.time_column])
        if not times.empty:
            return {"window_start": times.min().isoformat(), "trained_until": times.max().isoformat()}
    return {}


def _reproduction(rt: Runtime, frame: pd.DataFrame) -> dict[str, str]:
    """What it takes to make the same model again: the code that trained it, the seed, and a content
    hash of exactly the rows it was fitted on (the labelled rows of its window, typed as the accepted
    store keeps them: `init`'s delivered files and a retrain's stored window hash alike)."""
    from retrainer.build_info import git_commit, retrainer_version

    rows = typed_view(labelled_rows(frame, rt.schema).loc[:, [*rt.schema.features, rt.schema.target]], rt.schema)
    return {"seed": str(rt.config.training.seed), "training_rows": str(len(rows)), "training_rows_sha256": _sha256(rows),
            "retrainer_version": retrainer_version(), "git_commit": git_commit() or "unknown"}


def _sha256(frame: pd.DataFrame) -> str:
    """A content hash of a frame's rows (values and dtypes, not its index)."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def _digest(frame: pd.DataFrame) -> str:
    return _sha256(frame)[:16]


@dataclass
class TrainingWindow:
    """A challenger's data: the rows it trains on, the holdout the gate judges on, the batches used, and
    where the held-out rows came from (for the gate report)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    batches: list[int]
    holdout_source: str = ""
    # The batches' names (their files' names), as a person knows them.
    names: list[str] | None = None


def assemble_window(rt: Runtime, window_start: int, index: int, champion_version: str | None = None,
                    holdout_from: int | None = None) -> TrainingWindow:
    """Accepted batches from the change (at most `window_batches`), minus the gate's holdout.

    The holdout is `holdout_fraction` of the newest batch with labels (the triggering batch, unless its
    labels are late); when that is fewer than `promotion.min_holdout_rows` rows (small batches), it
    takes from the next newest labelled batches since `holdout_from` (default: the window's start) that
    the champion did not train on (`core.training.plan_holdout`). A narrow and a full window given the
    same `holdout_from` hold out the same rows, so their scores compare.
    """
    first = max(window_start, index - rt.config.training.window_batches + 1)
    store = stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name))
    frames = store.each(first, index)
    batches = list(frames)
    counts = {i: len(labelled_rows(frames[i], rt.schema)) for i in batches}
    labelled = [i for i in reversed(batches) if counts[i]]
    if not labelled:
        raise TrainingError(f"no labelled rows in the training window (batches {first}..{index}): "
                            "labels may still be on their way (`retrainer labels`)")
    newest = labelled[0]
    fresh_after = trained_through(history(rt), champion_version)
    since = window_start if holdout_from is None else holdout_from
    eligible = [newest, *(i for i in labelled[1:] if i >= since and i > fresh_after)]
    plan = plan_holdout([(i, counts[i]) for i in eligible], rt.config.training.holdout_fraction,
                        rt.config.promotion.min_holdout_rows)
    rests, held = {}, []
    for i in plan:  # newest first
        rests[i], part = split_holdout(frames[i], rt.schema, plan[i], rt.config.training.seed)
        held.append(part)
    # The newest batch's remaining rows go last, as they always have: the same rows in the same order
    # train the same model.
    parts = [rests.get(i, frames[i]) for i in batches if i != newest] + [rests[newest]]
    nonempty = [part for part in parts if not part.empty]
    window = pd.concat(nonempty, ignore_index=True) if nonempty else rests[newest]
    holdout = held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
    paths = store.paths()
    source = ", ".join(f"{plan[i]} of '{store.name_of(paths[i])}'" for i in plan)
    return TrainingWindow(window, holdout, batches, source, [store.name_of(paths[i]) for i in batches])


def train_model(rt: Runtime, frame: pd.DataFrame) -> TrainedModel:
    """Fit the configured estimator on the labelled rows of `frame` (`core.training.train`)."""
    return train(frame, rt.schema, rt.config.model.estimator, rt.config.training, rt.metric)


def adopt_model(rt: Runtime, model_uri: str, frame: pd.DataFrame) -> TrainedModel:
    """A version registered elsewhere, loaded under the safe-loading rules and measured on the reference
    `frame` (`retrainer adopt`)."""
    return measured(rt.registry.load_external(model_uri), frame, rt.schema, f"adopted {model_uri}", rt.metric)


def _window_label(window: TrainingWindow) -> str:
    """The window by its batches' names ('day-11'..'day-13'), else by their positions in the store."""
    first, last = (window.names[0], window.names[-1]) if window.names else (f"#{window.batches[0]}",
                                                                           f"#{window.batches[-1]}")
    return f"'{first}'" if first == last else f"'{first}'..'{last}'" if window.names else f"{first}-{last}"


def choose_window(rt: Runtime, narrow: TrainingWindow, narrow_model: TrainedModel, full: TrainingWindow,
                  full_model: TrainedModel) -> tuple[TrainingWindow, TrainedModel, str]:
    """The challenger trained since the change against one trained on the full window, on the gate's
    holdout: the better goes on to the gate, and a line says why. A tie goes to the full window: as
    good where it is judged, and fitted on more rows.

    Both windows hold out the same rows of the same newest batch (same split, same seed), so the
    scores compare; the gate then judges the chosen one on those rows against the champion.
    """
    if _digest(full.holdout) != _digest(narrow.holdout):
        # Labels landed between the two reads and moved the newest labelled batch: no fair comparison.
        return narrow, narrow_model, "window comparison skipped: the two windows' holdouts differ"
    schema = rt.schema
    inputs = feature_frame(narrow.holdout, schema)
    candidates = [(full, full_model), (narrow, narrow_model)]
    best, scores = pick_candidate(schema.task, target_values(narrow.holdout, schema),
                                  [model_outputs(model.pipeline, inputs, schema.task) for _, model in candidates],
                                  rt.metric)
    window, model = candidates[best]
    note = (f"window {_window_label(window)} chosen: {rt.metric.name} {scores[best]:.4f} on the holdout "
            f"against {scores[1 - best]:.4f} trained on {_window_label(candidates[1 - best][0])}")
    return window, model, note


def _version_documents(trained: TrainedModel, metric_name: str) -> dict[str, dict[str, Any]]:
    """JSON documents stored with a version: its confidence calibration (a classifier), and which features it
    leans on (its permutation importance on its validation rows)."""
    documents: dict[str, dict[str, Any]] = {}
    if trained.importance is not None:
        documents[FEATURE_IMPORTANCE] = {"metric": metric_name, "validation_rows": trained.validation_rows,
                                         "shares": trained.importance}
    if trained.validation_confidence is None or trained.validation_right is None:
        return documents
    estimator = fit_estimator(trained.validation_confidence, trained.validation_right)
    return {**documents, PERFORMANCE_ESTIMATOR: estimator.to_dict()} if estimator else documents


def register(
    rt: Runtime, trained: TrainedModel, frame: pd.DataFrame, alias: str, reasons: list[str], decision_id: str,
    extra_tags: dict[str, str] | None = None,
) -> ModelVersionInfo:
    """Register a trained model as a new version and point `alias` at it: its training rows as the
    reference, the tags that reproduce it and why it was trained (`reasons`, `decision_id`)."""
    schema = rt.schema
    reference = labelled_rows(frame, schema).loc[:, [*schema.features, schema.target]]
    # Late labels arrive as text classes while on-time batches may hold ints: one type for parquet.
    reference[schema.target] = target_values(reference, schema)
    metric = rt.metric
    reproduce = _reproduction(rt, frame)
    tags = {
        **reproduce,
        "validation_metric": f"{trained.validation_metric:.6f}",
        **({} if trained.validation_std_error is None
           else {"validation_metric_std_error": f"{trained.validation_std_error:.6f}"}),
        "metric_name": metric.name,
        "decision_id": decision_id,
        "reasons": "; ".join(reasons),
        "estimator": trained.estimator,
        "train_rows": str(trained.train_rows),
        **({} if trained.importance is None else {"top_features": top_features(trained.importance)}),
        **_window_tags(schema, frame),
        **(extra_tags or {}),
    }
    # Why first: the start of a description is what the MLflow models list shows.
    description = (
        f"Why: {'; '.join(reasons)}.\nTrained by retrainer ({trained.estimator}) on {trained.train_rows} rows; "
        f"validation {metric.name} {trained.validation_metric:.4f}."
    )
    rt.registry.ensure_registered_model()
    info = rt.registry.register(
        trained.pipeline,
        reference,
        feature_frame(reference.head(5), schema),
        params={"estimator": trained.estimator, "features": ",".join(schema.features), "target": schema.target,
                **{f"training.{key}": value for key, value in rt.config.training.model_dump().items()},
                # What training.search chose for this version: the hyperparameters and their CV score.
                **{f"search.{key}": value for key, value in (trained.search or {}).items()},
                **reproduce},
        metrics={f"validation_{metric.name}": trained.validation_metric, "train_rows": trained.train_rows,
                 "validation_rows": trained.validation_rows},
        tags=tags,
        description=description,
        run_name=f"train-{decision_id}",
        documents=_version_documents(trained, metric.name),
    )
    rt.registry.move_alias(alias, info.version, "retrainer", f"decision {decision_id}: {'; '.join(reasons)}")
    return info


# -- first champion ---------------------------------------------------------------------------
def refuse_if_initialised(rt: Runtime) -> None:
    """Refuse a model that has a champion already: `init` trains the first one only."""
    rt.registry.refuse_if_initialised()


def draft(rt: Runtime, frame: pd.DataFrame, replace: bool = False, batches: int = 1) -> bool:
    """Draft the suite from the first champion's data (`batches` batches of it), unless a suite is there
    already (a data engineer's edits are never overwritten unless `replace`). Returns whether it drafted."""
    path = rt.config.suite_path
    if path.exists() and not replace:
        print(f"kept the existing suite {path} (init --force drafts a new one over it)")
        return False
    save_suite(draft_suite(frame, rt.schema, rt.config.model.name, rt.config.validation, batches), path)
    return True
