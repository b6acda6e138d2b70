"""The cycle, written once: first champion, retrain → evaluate → promote, and one batch's monitoring.

Each function takes a `Runner` that says how its steps run:
- `flows.PREFECT`: every step a Prefect task (retries, states, artifacts), the retrain a subflow and
  the promotion inside a Prefect transaction whose rollback hook puts the aliases back;
- `PLAIN`: every step the plain function of `retrainer.steps` (no runs, states or API calls), for
  replays that run the same cycle many times, where Prefect's ~0.7 s per cycle would dominate (a
  threshold sweep, `benchmarks/orchestration_overhead.py`, which checks both take the same decisions).
The steps are looked up by the same names either way, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

from prefect import Task

from retrainer.config import load_config
from retrainer.core.records import BatchRecord, GateRecord, RetrainOutcome, build_record
from retrainer.data.batches import batch_name
from retrainer.observability import StageTimer
from retrainer.pipeline import tasks
from retrainer.steps import promotion as promotion_step
from retrainer.steps import record as record_step
from retrainer.steps.record import first_line, warn_failed
from retrainer.steps.suites import requeue_plan
from retrainer.validation import ValidationOutcome


@dataclass(frozen=True)
class Attempt:
    """A step that may fail without failing the cycle (a webhook, a retrain): its value or its error."""

    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Runner:
    """How a cycle's steps run (see the module's docstring)."""

    steps: Any
    # The retrain → evaluate → promote cycle as this runner runs it (a subflow, or `retrain` itself).
    retrain: Callable[..., dict[str, Any]]
    transaction: Callable[[], AbstractContextManager[Any]]
    attempt: Callable[..., Attempt]


def warn_if_failed(attempt: Attempt, what: str) -> None:
    """Warn in one line when the attempt at `what` failed; the cycle goes on."""
    if attempt.error is not None:
        warn_failed(what, attempt.error)


def retrain_outcome(attempt: Attempt) -> RetrainOutcome:
    """What the record says of a retrain: its result, or why it failed (the champion is untouched)."""
    if attempt.error is not None:
        return RetrainOutcome(retrain_error=first_line(attempt.error))
    return RetrainOutcome.from_dict(attempt.value)


# -- the cycle --------------------------------------------------------------------------------------
def initialise(r: Runner, config_path: str, batch_paths: list[str], redraft_suite: bool = False) -> list[dict[str, Any]]:
    """Train champion v1 on the first batches and draft the expectation suite from them (an existing
    suite is kept unless `redraft_suite`)."""
    s = r.steps
    rt = tasks.runtime(config_path)
    s.refuse_if_initialised(rt)
    decision_id = tasks.new_decision_id()
    reads = [s.read_batch(path) for path in batch_paths]
    reference = s.combine(reads)
    trained = s.train_model(rt, reference)
    champion = s.register(rt, trained, reference, rt.config.mlflow.aliases.champion, ["initial champion"],
                          decision_id)
    s.draft(rt, reference, redraft_suite, len(batch_paths))
    records = []
    for index, (path, read) in enumerate(zip(batch_paths, reads, strict=True)):
        s.accept(rt, index, batch_name(Path(path)), read)
        record = BatchRecord(batch=batch_name(Path(path)), rows=read.rows, valid=True, decision="init",
                             reasons=["initial champion"], batch_index=index, decision_id=decision_id,
                             content_hash=read.content_hash,
                             champion_version=champion.version, new_champion_version=champion.version)
        records.append(s.record_cycle(rt, record, ValidationOutcome(valid=True), None, [], StageTimer()).model_dump())
    return records


def adopt(r: Runner, config_path: str, model_uri: str, reference_path: str, adopted_by: str,
          redraft_suite: bool = False) -> dict[str, Any]:
    """Take a model trained elsewhere as the first champion: loaded under the safe-loading rules and
    measured on the reference data, registered as a version of this model with the reference as its
    training snapshot (the drift baseline) and its provenance in tags, @champion on it; the suite drafted
    from the reference (an existing one kept unless `redraft_suite`). From then on it is a champion like any."""
    s = r.steps
    rt = tasks.runtime(config_path)
    s.refuse_if_initialised(rt)
    decision_id = tasks.new_decision_id()
    read = s.read_batch(reference_path)
    reference = s.combine([read])
    trained = s.adopt_model(rt, model_uri, reference)
    reasons = [f"adopted {model_uri}"]
    champion = s.register(rt, trained, reference, rt.config.mlflow.aliases.champion, reasons, decision_id,
                          {"adopted_from": model_uri, "adopted_by": adopted_by,
                           "adopted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "adopted_reference": Path(reference_path).name})
    s.draft(rt, reference, redraft_suite, 1)
    s.accept(rt, 0, batch_name(Path(reference_path)), read)
    record = BatchRecord(batch=batch_name(Path(reference_path)), rows=read.rows, valid=True, decision="init",
                         reasons=reasons, batch_index=0, decision_id=decision_id, content_hash=read.content_hash,
                         champion_version=champion.version, new_champion_version=champion.version)
    return s.record_cycle(rt, record, ValidationOutcome(valid=True), None, [], StageTimer()).model_dump()


def retrain(r: Runner, config_path: str, batch_index: int, window_start: int, decision_id: str,
            reasons: list[str]) -> dict[str, Any]:
    """Train a challenger on accepted data, score both models on the same holdout, promote on a pass."""
    s = r.steps
    rt = tasks.runtime(config_path)
    champion = s.find_champion(rt)
    window = s.assemble_window(rt, window_start, batch_index, champion.version)
    trained = s.train_model(rt, window.train)
    tags: dict[str, str] = {}
    if window_start > 0 and rt.config.training.compare_full_window:
        # The same held-out rows as the narrow window's (drawn from the change on), so the scores compare.
        full = s.assemble_window(rt, 0, batch_index, champion.version, holdout_from=window_start)
        if len(full.batches) > len(window.batches):
            window, trained, tags["window_choice"] = s.choose_window(rt, window, trained, full,
                                                                     s.train_model(rt, full.train))
            print(tags["window_choice"])
    tags["window_batches"] = ",".join(map(str, window.batches))
    challenger = s.register(rt, trained, window.train, rt.config.mlflow.aliases.challenger, reasons, decision_id,
                            tags)
    verdict = s.evaluate(rt, champion, challenger, window)
    rolled_back = None
    # promotion.shadow_batches: a passing challenger first predicts the next labelled batches beside the champion.
    shadow = s.start_shadow(rt, challenger, champion, verdict, batch_index)
    if shadow is not None:
        promotion = promotion_step.Promotion(False)
    else:
        try:
            # The promotion and the check that the new @champion serves succeed together, or the
            # aliases are put back (the transaction's rollback hook, or `_verify_or_undo`).
            with r.transaction():
                promotion = s.promote(rt, challenger, champion, verdict)
                s.verify_promotion(rt, challenger, promotion, window)
        except promotion_step.PromotionCheckFailed as exc:
            promotion, rolled_back = promotion_step.after_rollback(rt, challenger, str(exc))
    print(verdict.summary())
    return RetrainOutcome(challenger_version=challenger.version, promoted=promotion.promoted,
                          new_champion_version=challenger.version if promotion.promoted else None,
                          gate=GateRecord.of(verdict), promotion_conflict=promotion.conflict,
                          promotion_rolled_back=rolled_back, shadow=shadow).to_dict()


def monitor(r: Runner, config_path: str, batch_path: str, move_rejected: bool = False, batch_index: int | None = None,
            name: str | None = None, retrain_trigger: Literal["inline", "event"] = "inline",
            requeue_of: int | None = None) -> dict[str, Any]:
    """One cycle: score, validate, measure drift, decide; quarantine or accept; maybe retrain; record.

    `move_rejected` moves a rejected file out of its landing place (`retrainer run`); a replay copies.
    The monitor deployment passes the `batch_index` and `name` its ledger claim holds, and may ask
    for a retrain by event (the retrain deployment trains) instead of training in this run.
    """
    s = r.steps
    rt = tasks.runtime(config_path)
    timer, past = StageTimer(), tasks.history(rt)
    name = name or batch_name(Path(batch_path))
    index = tasks.next_index(rt, past) if batch_index is None else batch_index
    # A claimed batch redone after a crash decides under the same id: a retrain it asked for before
    # the crash is then recognised, not asked for twice.
    decision_id = tasks.new_decision_id() if batch_index is None else tasks.claim_decision_id(rt, index, name)
    with timer.stage("read"):
        batch = s.read_batch(batch_path)
        delivered_rows = batch.rows
    champion = s.find_champion(rt)
    with timer.stage("score"):
        refused = s.check_champion(rt, champion)
        scoring = s.score_batch(rt, champion, batch) if refused is None else tasks.Scoring()
        refused = refused or scoring.failure
    with timer.stage("validate"):
        outcome = s.validate(rt, batch, past)
        if outcome.rejected_rows is not None:
            batch = s.split_off_rows(rt, batch, name, outcome)
    with timer.stage("score"):
        scoring = s.measure_performance(rt, champion, batch, scoring)
    drift = ood = None
    if outcome.valid and refused is None:
        with timer.stage("drift"):
            drift = s.measure_drift(rt, champion, batch, scoring)
        with timer.stage("ood"):
            ood = s.measure_ood(rt, champion, batch)
    with timer.stage("decide"):
        decided = s.decide(rt, index, batch, champion, outcome, drift, ood, scoring, past, refused, name)
        decision = decided.decision
    quarantined = None
    if decision.action == "reject_batch":
        quarantined = s.quarantine(rt, batch_path, name, outcome)
    else:
        s.accept(rt, index, name, batch)
        s.save_predictions(rt, index, name, batch, scoring)
    # A challenger in shadow predicts this batch beside the champion (its labels, once accepted): it may be
    # promoted or retired here. Its failure (the registry down, say) fails neither the cycle nor the shadow:
    # the batch just does not count.
    shadow = None
    if decision.action != "reject_batch" and refused is None:
        judged = r.attempt(s.shadow_batch, rt, champion, index, scoring.metric, past)
        warn_if_failed(judged, "shadow evaluation")
        shadow = judged.value
    if shadow is not None and shadow.outcome == "promoted" and decision.action == "retrain":
        # The challenger that answers this batch's signals serves from now: a retrain against it comes, if it
        # must, from the next batch's own signals.
        decision = replace(decision, action="none", reasons=[
            *decision.reasons, f"but challenger v{shadow.version} was promoted from shadow in this cycle"])
    retrained = None
    if decision.action == "retrain" and retrain_trigger == "inline":
        with timer.stage("retrain"):
            retrained = retrain_outcome(r.attempt(r.retrain, config_path, index, decision.training_start(),
                                                  decision_id, decision.reasons))
    with timer.stage("record"):
        folder = f"{index:06d}__{name}"
        reports = s.render_report(rt, champion, batch, drift, decision.action == "retrain", folder, scoring, name)
        reports += s.save_ood_rows(rt, ood, batch, folder)
    record = build_record(
        batch=name, rows=delivered_rows, batch_index=index, decision_id=decision_id, content_hash=batch.content_hash,
        validation=outcome.summary_fields(), drift=drift.summary_fields() if drift else None,
        ood_share=ood.share if ood else None,
        champion_version=champion.version, champion_refused=refused, champion_age_days=decided.champion_age_days,
        metric_name=rt.metric.name, scoring=scoring.summary_fields(), new_labelled_rows=decided.new_labelled_rows,
        decision=decision, quarantined_as=quarantined, retrain=retrained, requeue_of=requeue_of, shadow=shadow,
    )
    record = s.record_cycle(rt, record, outcome, drift, reports, timer)
    if decision.action == "retrain" and retrain_trigger == "event":
        # Asked for once the record exists, so the retrain run always finds the record to complete.
        record = s.request_recorded_retrain(rt, record)
    if move_rejected and quarantined is not None:
        s.remove_landed(batch_path, quarantined)  # only once the cycle is on record
    # A webhook or Pushgateway that is down must not fail the cycle: its failure is a warning.
    warn_if_failed(r.attempt(s.log_cycle_json, rt, record), "JSON cycle log")
    warn_if_failed(r.attempt(s.push_metrics, rt, record, past), "metrics push")
    warn_if_failed(r.attempt(s.notify, rt, record), "webhook notification")
    return record.model_dump()


def requeue(r: Runner, config_path: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the quarantined batches again, oldest first, each once, with the suite as it is now: every
    rejection no later cycle re-ran, or those of `names`. Each is a whole cycle (a retrain it decides on
    goes through the gate) whose record names the rejection it re-runs (`requeue_of`)."""
    outcomes: list[dict[str, Any]] = []
    for kept in requeue_plan(load_config(config_path), names):
        old = kept.record
        if kept.path is None:
            outcomes.append({"batch": old.batch, "requeue_of": old.batch_index, "decision": None,
                             "reasons": ["its quarantined copy is gone: nothing to run"]})
            continue
        record = monitor(r, config_path, str(kept.path), name=old.batch, requeue_of=old.batch_index)
        outcomes.append({"batch": old.batch, "requeue_of": old.batch_index, "decision": record["decision"],
                         "batch_index": record["batch_index"], "reasons": record["reasons"]})
    return outcomes


# -- the plain runner -------------------------------------------------------------------------------
def _plain_attempt(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Attempt:
    try:
        return Attempt(function(*args, **kwargs))
    except Exception as exc:  # the step's own failure, reported as Prefect would report its state
        return Attempt(error=exc)


def _verify_or_undo(rt: tasks.Runtime, challenger: Any, promotion: promotion_step.Promotion, window: Any) -> None:
    """Without Prefect's transaction: the check, and on its failure the aliases put back here."""
    try:
        promotion_step.verify_promotion(rt, challenger, promotion, window)
    except promotion_step.PromotionCheckFailed:
        if promotion.undo is not None:
            promotion_step.undo_promotion(promotion.undo, rt.lock)
        raise


@contextmanager
def _no_transaction() -> Iterator[None]:
    yield


def _plain_steps() -> SimpleNamespace:
    """Every task of `pipeline.tasks` as the step function it wraps; the wrappers that exist only for
    Prefect (the transaction's undo data, the UI's artifacts) replaced by their plain steps."""
    steps = {name: value.fn for name, value in vars(tasks).items() if isinstance(value, Task)}
    steps.update(promote=promotion_step.promote, verify_promotion=_verify_or_undo,
                 record_cycle=record_step.record_cycle, request_recorded_retrain=tasks.request_recorded_retrain)
    return SimpleNamespace(**steps)


def _plain_retrain(*args: Any) -> dict[str, Any]:
    return retrain(PLAIN, *args)


PLAIN = Runner(_plain_steps(), _plain_retrain, _no_transaction, _plain_attempt)
