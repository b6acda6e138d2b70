"""Prefect flows: they only wire tasks. One definition of each flow, imported by the CLI and
by the deployment entrypoints in the repository's `flows/` folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow

from retrainer import tasks
from retrainer.data import batch_name
from retrainer.observability import StageTimer
from retrainer.records import BatchRecord


@flow(name="initialise-champion", log_prints=True)
def initialise_champion(config_path: str, batch_paths: list[str]) -> list[dict[str, Any]]:
    """Train champion v1 on the first batches and draft the expectation suite from them."""
    rt = tasks.runtime(config_path)
    tasks.refuse_if_initialised(rt)
    decision_id = tasks.new_decision_id()
    reads = [tasks.read_batch(path) for path in batch_paths]
    reference = tasks.combine(reads)
    trained = tasks.train_model(rt, reference)
    champion = tasks.register(rt, trained, reference, rt.config.mlflow.aliases.champion, ["initial champion"],
                              decision_id)
    tasks.draft(rt, reference)
    records = []
    for index, (path, read) in enumerate(zip(batch_paths, reads)):
        tasks.accept(rt, index, batch_name(Path(path)), read)
        record = BatchRecord(batch=batch_name(Path(path)), rows=read.rows, valid=True, decision="init",
                             reasons=["initial champion"], batch_index=index, decision_id=decision_id,
                             content_hash=read.content_hash,
                             champion_version=champion.version, new_champion_version=champion.version)
        records.append(tasks.record_cycle(rt, record, tasks.ValidationOutcome(valid=True), None, [],
                                          StageTimer()).model_dump())
    return records


@flow(name="retrain-evaluate-promote", log_prints=True)
def retrain_evaluate_promote(config_path: str, batch_index: int, window_start: int, decision_id: str,
                             reasons: list[str]) -> dict[str, Any]:
    """Train a challenger on accepted data, score both models on the same holdout, promote on a pass."""
    rt = tasks.runtime(config_path)
    champion = tasks.find_champion(rt)
    window = tasks.assemble_window(rt, window_start, batch_index)
    trained = tasks.train_model(rt, window.train)
    challenger = tasks.register(rt, trained, window.train, rt.config.mlflow.aliases.challenger, reasons, decision_id,
                                {"window_batches": ",".join(map(str, window.batches))})
    verdict = tasks.evaluate(rt, champion, challenger, window)
    promotion = tasks.promote(rt, challenger, champion, verdict)
    print(verdict.summary())
    return {"challenger_version": challenger.version, "promoted": promotion.promoted,
            "new_champion_version": challenger.version if promotion.promoted else None, "gate": verdict.to_dict(),
            "promotion_conflict": promotion.conflict}


@flow(name="monitor-batch", log_prints=True)
def monitor_batch(config_path: str, batch_path: str, move_rejected: bool = False) -> dict[str, Any]:
    """One cycle: score, validate, measure drift, decide; quarantine or accept; maybe retrain; record.

    `move_rejected` moves a rejected file out of its landing place (production); a replay copies.
    """
    rt = tasks.runtime(config_path)
    timer, name, past = StageTimer(), batch_name(Path(batch_path)), tasks.history(rt)
    index, decision_id = tasks.next_index(rt, past), tasks.new_decision_id()
    with timer.stage("read"):
        batch = tasks.read_batch(batch_path)
        delivered_rows = batch.rows
    champion = tasks.find_champion(rt)
    with timer.stage("score"):
        scoring = tasks.score_batch(rt, champion, batch)
    with timer.stage("validate"):
        outcome = tasks.validate(rt, batch, past)
        if outcome.rejected_rows is not None:
            batch = tasks.split_off_rows(rt, batch, name, outcome)
    with timer.stage("score"):
        scoring = tasks.measure_performance(rt, champion, batch, scoring)
    drift = ood = None
    if outcome.valid:
        with timer.stage("drift"):
            drift = tasks.measure_drift(rt, champion, batch, scoring)
        with timer.stage("ood"):
            ood = tasks.measure_ood(rt, champion, batch)
    with timer.stage("decide"):
        decided = tasks.decide(rt, index, batch, champion, outcome, drift, ood, scoring, past)
        decision = decided.decision
    quarantined = None
    if decision.action == "reject_batch":
        quarantined = tasks.quarantine(rt, batch_path, name, outcome)
    else:
        tasks.accept(rt, index, name, batch)
        tasks.save_predictions(rt, index, name, batch, scoring)
    promotion: dict[str, Any] = {}
    if decision.action == "retrain":
        with timer.stage("retrain"):
            retrain = retrain_evaluate_promote(config_path, index, decision.training_start(), decision_id,
                                               decision.reasons, return_state=True)
        promotion = tasks.retrain_outcome(retrain)
    with timer.stage("record"):
        folder = f"{index:06d}__{name}"
        reports = tasks.render_report(rt, champion, batch, drift, decision.action == "retrain", folder)
        reports += tasks.save_ood_rows(rt, ood, batch, folder)
    record = BatchRecord(
        batch=name, rows=delivered_rows, valid=outcome.valid, validation_failures=outcome.failures,
        validation_warnings=outcome.warnings, drift_share=drift.share if drift else None,
        dataset_drift=decision.dataset_drift if drift else None,
        drifted_features=drift.drifted_features if drift else [],
        prediction_drift=drift.prediction_drift if drift else None,
        drift_scores={f.column: f.score for f in drift.features} if drift else {},
        target_drift=drift.target_drift.score if drift and drift.target_drift else None,
        ood_share=ood.share if ood else None, shifted=decision.shifted if drift else None,
        champion_version=champion.version, champion_age_days=decided.champion_age_days,
        metric_name=rt.metric.name, metric=scoring.metric, metrics=scoring.metrics,
        labelled_rows=scoring.labelled_rows, new_labelled_rows=decided.new_labelled_rows,
        estimated_metric=scoring.estimate.value if scoring.estimate else None,
        estimated_metric_std=scoring.estimate.std if scoring.estimate else None,
        decision=decision.action, reasons=decision.reasons,
        signals=[asdict(check) for check in decision.checks],
        window_start=decision.window_start if decision.action == "retrain" else None, followup=decision.followup,
        batch_index=index, content_hash=batch.content_hash, quarantined_as=quarantined, decision_id=decision_id,
        **promotion,
    )
    record = tasks.record_cycle(rt, record, outcome, drift, reports, timer)
    if move_rejected and quarantined is not None:
        tasks.remove_landed(batch_path, quarantined)  # only once the cycle is on record
    # A webhook or Pushgateway that is down must not fail the cycle: its failure is a warning.
    tasks.warn_if_failed(tasks.log_cycle_json(rt, record, return_state=True), "JSON cycle log")
    tasks.warn_if_failed(tasks.push_metrics(rt, record, past, return_state=True), "metrics push")
    tasks.warn_if_failed(tasks.notify(rt, record, return_state=True), "webhook notification")
    return record.model_dump()


@flow(name="join-late-labels", log_prints=True)
def join_late_labels(config_path: str, labels_path: str) -> dict[str, Any]:
    """Labels that arrived after their batches: fill the accepted batches and re-score their records."""
    rt = tasks.runtime(config_path)
    prepared = tasks.read_labels(rt, labels_path)
    outcome = tasks.apply_labels(rt, prepared, labels_path)
    print(outcome.summary())
    return asdict(outcome)
