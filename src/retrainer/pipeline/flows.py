"""Prefect flows: they only wire tasks. One definition of each flow, imported by the CLI and
by the deployment entrypoints in the repository's `flows/` folder.

No `from __future__ import annotations` here: Prefect validates a flow's parameters against its
annotations, and a flow shipped to a Dask worker carries only the globals its code uses, so
string annotations (`Literal[...]`) could not be resolved there."""


import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, cast

from prefect import flow
from prefect.states import Completed
from prefect.transactions import transaction

from retrainer.core.intake import LedgerEntry, is_processed, plan_intake
from retrainer.core.records import RetrainOutcome
from retrainer.data.landing import UnsafeBatchName, checked_landed_name
from retrainer.observability.logs import decision_message
from retrainer.pipeline import cycle, run_summaries, tasks
from retrainer.pipeline import intake as intake_tasks
from retrainer.pipeline.approval import AWAITING, approval_wanted, ask_for_approval
from retrainer.state.locks import LockTimeout, intake_lock


@flow(name="initialise-champion", log_prints=True)
def initialise_champion(config_path: str, batch_paths: list[str], redraft_suite: bool = False) -> list[dict[str, Any]]:
    """Train champion v1 on the first batches and draft the expectation suite from them (an existing
    suite is kept unless `redraft_suite`)."""
    records = cycle.initialise(PREFECT, config_path, batch_paths, redraft_suite)
    _summary(config_path, "champion", run_summaries.first_champion_markdown(records))
    return records


@flow(name="adopt-champion", log_prints=True)
def adopt_champion(config_path: str, model_uri: str, reference_path: str, adopted_by: str,
                   redraft_suite: bool = False) -> dict[str, Any]:
    """Take a model version trained elsewhere as the first champion (`pipeline.cycle.adopt`)."""
    record = cycle.adopt(PREFECT, config_path, model_uri, reference_path, adopted_by, redraft_suite)
    _summary(config_path, "champion", run_summaries.first_champion_markdown([record], model_uri))
    return record


@flow(name="retrain-evaluate-promote", log_prints=True)
def retrain_evaluate_promote(config_path: str, batch_index: int, window_start: int, decision_id: str,
                             reasons: list[str]) -> dict[str, Any]:
    """Train a challenger on accepted data, score both models on the same holdout, promote on a pass."""
    outcome = cycle.retrain(PREFECT, config_path, batch_index, window_start, decision_id, reasons)
    # Its own key: the `retrain` deployment's run (the parent, when started by event) writes `<model>-retrain`.
    _summary(config_path, "gate", tasks.retrain_markdown(RetrainOutcome.from_dict(outcome), None))
    return outcome


@flow(name="monitor-batch", log_prints=True)
def monitor_batch(config_path: str, batch_path: str, move_rejected: bool = False, batch_index: int | None = None,
                  name: str | None = None, retrain_trigger: Literal["inline", "event"] = "inline",
                  requeue_of: int | None = None) -> dict[str, Any]:
    """One cycle: score, validate, measure drift, decide; quarantine or accept; maybe retrain; record
    (`pipeline.cycle.monitor`)."""
    record = cycle.monitor(PREFECT, config_path, batch_path, move_rejected, batch_index, name, retrain_trigger,
                           requeue_of)
    # One line per batch decision in the run's log (a worker's log is otherwise its task runs' states).
    message = decision_message(tasks.runtime(config_path).config.model.name, str(record.get("batch")),
                               str(record.get("decision")), record.get("reasons") or [])
    print(message)
    if record.get("decision") == "reject_batch":
        # Listed as "Rejected", with the reasons, in the Prefect UI rather than as one more "Completed" run;
        # Prefect unwraps a returned state, so callers still get the record.
        return cast(dict[str, Any], Completed(data=record, name="Rejected", message=message))
    return record


@flow(name="requeue", log_prints=True)
def requeue_quarantined(config_path: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """The quarantined batches through the cycle again, each once (`pipeline.cycle.requeue`)."""
    outcomes = cycle.requeue(PREFECT, config_path, names)
    _summary(config_path, "requeue", run_summaries.requeue_markdown(_model(config_path), outcomes))
    return outcomes


def _model(config_path: str) -> str:
    return tasks.runtime(config_path).config.model.name


def _summary(config_path: str | None, kind: str, markdown: str) -> None:
    """The flow run's own page in the Prefect UI; failing to write it (or to read the model's name) does not
    fail the run."""
    try:
        model = _model(config_path) if config_path is not None else "fleet"
    except Exception as exc:  # the run's work is done: its page is not worth failing it
        cycle.warn_if_failed(cycle.Attempt(error=exc), "run summary artifact")
        return
    cycle.warn_if_failed(_attempt(tasks.summary_artifact, model, kind, markdown), "run summary artifact")


def _attempt(function: Any, *args: Any, **kwargs: Any) -> cycle.Attempt:
    """A task or subflow run for its state: its failure is the caller's to report, not the flow's."""
    state = function(*args, return_state=True, **kwargs)
    if state.is_completed():
        return cycle.Attempt(state.result())
    return cycle.Attempt(error=state.result(raise_on_failure=False))


PREFECT = cycle.Runner(tasks, retrain_evaluate_promote, transaction, _attempt)


# -- many models or segments in one flow run ---------------------------------------------------
def _model_cycle(config_path: str, batch_path: str) -> dict[str, Any]:
    """One model's cycle, as a `monitor-batch` subflow run where the task runner placed it."""
    started_at, started = time.time(), time.perf_counter()
    record = monitor_batch(config_path, batch_path)
    return {"config": config_path, "batch": batch_path, "record": record, "seconds": time.perf_counter() - started,
            "started_at": started_at, "finished_at": time.time()}


model_cycle = tasks.step_task(_model_cycle, name="model cycle")


@flow(name="monitor-fleet", log_prints=True)
def monitor_fleet(jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One cycle per (config, batch) pair — many models, or one model per segment — fanned out over the
    flow's task runner (a Dask cluster: `retrainer.pipeline.fleet`). A model whose cycle fails is reported with
    its error; the others go on. A model appears once per run: its batches are taken in order."""
    configs = [config for config, _ in jobs]
    repeated = sorted({config for config in configs if configs.count(config) > 1})
    if repeated:
        raise ValueError(f"one batch per model per fleet run; given several for: {', '.join(repeated)}")
    futures = [model_cycle.submit(config, batch) for config, batch in jobs]
    results: list[dict[str, Any]] = []
    for (config, batch), future in zip(jobs, futures, strict=True):
        try:
            results.append(future.result())
        except Exception as exc:  # one model's failure is its own, reported beside the others' records
            results.append({"config": config, "batch": batch, "error": f"{type(exc).__name__}: {exc}"})
    failed = [r for r in results if "error" in r]
    print(f"{len(results) - len(failed)} of {len(results)} model cycles completed"
          + (f"; failed: {', '.join(Path(r['config']).parent.name for r in failed)}" if failed else ""))
    _summary(None, "fleet", run_summaries.fleet_markdown(results))
    return results


@flow(name="join-late-labels", log_prints=True)
def join_late_labels(config_path: str, labels_path: str) -> dict[str, Any]:
    """Labels that arrived after their batches: fill the accepted batches and re-score their records."""
    rt = tasks.runtime(config_path)
    prepared = tasks.read_labels(rt, labels_path)
    outcome = tasks.apply_labels(rt, prepared, labels_path)
    print(outcome.summary())
    _summary(config_path, "late-labels", f"## `{rt.config.model.name}`: {outcome.summary()}")
    return asdict(outcome)


# -- the deployments of `retrainer serve` and prefect.yaml ------------------------------------
@flow(name="monitor", log_prints=True)
def monitor_landing(config_path: str) -> dict[str, Any]:
    """Take every new batch of the landing location through its cycle, exactly once, in name order.

    Runs of one model exclude each other (an overlapping schedule leaves the landing to the run
    that holds it); a claim left unfinished by a killed worker is redone first, under its index.
    """
    rt = tasks.runtime(config_path)
    try:
        with intake_lock(rt.config):
            outcome = _take_in(config_path, rt)
    except LockTimeout as exc:
        print(f"another monitor run of '{rt.config.model.name}' is taking batches in: {exc}; leaving it to that one")
        outcome = {"skipped": f"another monitor run is taking batches in: {exc}", "batches": []}
    _summary(config_path, "landing", run_summaries.landing_markdown(rt.config.model.name, outcome))
    return outcome


def _take_in(config_path: str, rt: tasks.Runtime) -> dict[str, Any]:
    settings = rt.config.intake
    entries = intake_tasks.ledger_entries(rt)
    plan = plan_intake(intake_tasks.scan_landing(rt), entries, time.time(), settings.settle_seconds)
    batches: list[dict[str, Any]] = []
    for entry in plan.resume:
        if len(batches) >= settings.max_batches_per_run:
            break
        if entry.attempts >= settings.max_attempts and intake_tasks.recorded_cycle(rt, entry) is None:
            reason = f"set aside after {entry.attempts} unfinished attempts (copy kept at {entry.staged_path})"
            intake_tasks.give_up(rt, entry, reason)
            batches.append({"batch": entry.name, "batch_index": entry.batch_index, "outcome": "failed",
                            "reason": reason})
            continue
        batches.append(_cycle(config_path, rt, intake_tasks.retry_claim(rt, entry), resumed=True))
    ignored = [f.file_name for f in plan.known]
    for landed_file in plan.candidates:
        if len(batches) >= settings.max_batches_per_run:
            break  # the rest waits for the next run, in order
        try:
            name = checked_landed_name(landed_file)
        except UnsafeBatchName as exc:
            print(str(exc))
            intake_tasks.refuse(rt, landed_file, str(exc))
            batches.append({"batch": landed_file.file_name, "outcome": "refused", "reason": str(exc)})
            continue
        staged = intake_tasks.stage_batch(rt, landed_file, name)
        if staged is None:
            continue
        known = is_processed(entries, landed_file.file_name, staged.content_hash)
        if known is not None and known.status == "failed":
            # Dropped again after it was set aside: another round, under its own index.
            entry = intake_tasks.requeue(rt, known, landed_file, staged)
            batches.append(_cycle(config_path, rt, entry, resumed=True))
            continue
        if known is not None:
            intake_tasks.drop_staged(staged)  # the same bytes under the same name: processed already
            intake_tasks.remember(rt, known, landed_file)
            ignored.append(landed_file.file_name)
            continue
        entry = intake_tasks.claim_batch(rt, landed_file, staged)
        batches.append(_cycle(config_path, rt, entry, resumed=False))
    waiting = [f.file_name for f in plan.unsettled]
    print(f"{len(batches)} batch(es) taken in, {len(ignored)} landed file(s) processed before and ignored, "
          f"{len(waiting)} still being written")
    return {"batches": batches, "ignored": ignored, "waiting": waiting}


def _retrain_trigger(rt: tasks.Runtime) -> Literal["inline", "event"]:
    """By event only in a deployment's run, where the retrain deployment listens; a flow called in
    process (a test, a script) has no one to hear the event and retrains inline."""
    from prefect.runtime import deployment

    return "event" if rt.config.serve.retrain_trigger == "event" and deployment.id is not None else "inline"


def _cycle(config_path: str, rt: tasks.Runtime, entry: LedgerEntry, resumed: bool) -> dict[str, Any]:
    """One claimed batch through `monitor-batch`, unless its cycle reached the journal before a crash
    (then only a retrain request it did not get to send is sent)."""
    trigger = _retrain_trigger(rt)
    recorded = intake_tasks.recorded_cycle(rt, entry) if resumed else None
    if recorded is None:
        assert entry.staged_path is not None
        assert entry.batch_index is not None
        outcome = monitor_batch(config_path, entry.staged_path, batch_index=entry.batch_index, name=entry.name,
                                retrain_trigger=trigger)["decision"]
    else:
        outcome = recorded.decision
        if trigger == "event" and recorded.decision == "retrain" and not recorded.retrain_event_id:
            tasks.request_recorded_retrain(rt, recorded)
    intake_tasks.finish_claim(rt, entry, outcome)
    return {"batch": entry.name, "batch_index": entry.batch_index, "outcome": outcome, "resumed": resumed}


@flow(name="retrain", log_prints=True)
def retrain_on_request(config_path: str, batch_index: int, window_start: int, decision_id: str,
                       reasons: list[str]) -> dict[str, Any]:
    """The retrain deployment: triggered by a `retrainer.retrain.requested` event (or run by hand).
    Trains, judges and promotes; in manual mode may pause for a person's answer; writes the outcome
    into the record of the cycle that asked, and notifies."""
    rt = tasks.runtime(config_path)
    done = tasks.earlier_retrain(rt, batch_index, decision_id)
    if done is not None:
        line = f"decision {decision_id} was carried out already: {RetrainOutcome.from_dict(done).summary()}"
        print(line)
        _summary(config_path, "retrain", f"## Retrain: nothing to do\n\n- {line}")
        return done
    outcome = cycle.retrain_outcome(_attempt(retrain_evaluate_promote, config_path, batch_index, window_start,
                                             decision_id, reasons)).to_dict()
    if approval_wanted(rt.config, outcome):
        # On record before the pause: a run whose pause times out is failed by the server and
        # runs no task after it.
        tasks.record_retrain(rt, batch_index, decision_id, outcome | {"approval": AWAITING})
        answer = ask_for_approval(rt.config, outcome)
        if answer is None:
            line = f"no answer in time: version {outcome['challenger_version']} stays {AWAITING}"
            print(line)
            _summary(config_path, "retrain", f"## Retrain: challenger v{outcome['challenger_version']} {AWAITING}"
                                             f"\n\n- {line}")
            return outcome | {"approval": AWAITING}
        outcome |= tasks.apply_approval(rt, outcome["challenger_version"], answer)
    record = tasks.record_retrain(rt, batch_index, decision_id, outcome)
    if record is not None and record.promoted:
        cycle.warn_if_failed(_attempt(tasks.notify, rt, record, ["promote"]), "webhook notification")
    batch = record.batch if record is not None else None
    cycle.warn_if_failed(_attempt(tasks.retrain_artifact, rt, outcome, batch), "retrain artifact")
    print(f"retrain for {f'batch {batch!r}' if batch else 'the staleness check'} (decision {decision_id}): "
          f"{RetrainOutcome.from_dict(outcome).summary()}")
    return outcome


@flow(name="staleness-check", log_prints=True)
def staleness_check(config_path: str) -> dict[str, Any]:
    """Daily: a champion unverified past `policy.max_champion_age_days` (on the wall clock, for a landing location
    that went quiet) gets a retrain on the latest accepted window, when there are enough new labels."""
    rt = tasks.runtime(config_path)
    champion = tasks.find_champion(rt)
    check = tasks.check_staleness(rt, champion)
    if check.reason is None:
        print(check.summary)
        _summary(config_path, "staleness", run_summaries.staleness_markdown(rt.config.model.name,
                                                                            {"summary": check.summary}))
        return {"retrain": False, "summary": check.summary}
    decision_id = tasks.new_decision_id()
    print(f"{check.summary}: {check.reason}")
    asked = {"retrain": True, "summary": check.summary, "reason": check.reason, "decision_id": decision_id}
    if _retrain_trigger(rt) == "event":
        event_id = tasks.request_retrain(rt, check.batch_index, check.window_start, decision_id, [check.reason])
        asked |= {"retrain_event_id": event_id}
    else:
        asked |= cycle.retrain_outcome(_attempt(retrain_evaluate_promote, config_path, check.batch_index,
                                                check.window_start, decision_id, [check.reason])).to_dict()
    _summary(config_path, "staleness", run_summaries.staleness_markdown(rt.config.model.name, asked))
    return asked
