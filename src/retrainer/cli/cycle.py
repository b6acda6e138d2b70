"""The production cycle's commands: `init`, `adopt`, `run`, `requeue`, `labels`, `serve`, `check-large`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from retrainer.errors import UserError


def _first_champion(args: argparse.Namespace, data: list[str]) -> tuple[Any, Any, bool]:
    """Before `init` or `adopt` runs its flow: refused for a model that has a champion already (before
    anything is written: a second init must not rewrite the saved column settings), the columns resolved
    from `data` and saved, Prefect's environment set. Returns (config, column settings, suite kept)."""
    import pandas as pd

    from retrainer.config import load_config
    from retrainer.core.schema import resolve_model_settings
    from retrainer.data.batches import BatchReadError, read_batch
    from retrainer.pipeline.local_api import prepare_local_run
    from retrainer.registry import ModelRegistry, connect
    from retrainer.state.stores import save_model_settings

    config = load_config(args.config)
    ModelRegistry(connect(config), config).refuse_if_initialised()
    kept_suite = config.suite_path.exists() and not args.force
    frames = []
    for path in data:
        try:
            frames.append(read_batch(Path(path)))
        except BatchReadError as exc:
            raise UserError(f"{path}: {exc}") from None
    model = resolve_model_settings(pd.concat(frames, ignore_index=True), config.model)
    save_model_settings(config, model)
    prepare_local_run(config.storage.workdir / "prefect", verbose=args.verbose)
    return config, model, kept_suite


def cmd_init(args: argparse.Namespace) -> int:
    """`retrainer init`: save the column settings, train the first champion and draft the suite.

    Refuses a model that is initialised already; an existing suite is kept unless `--force`."""
    config, model, kept_suite = _first_champion(args, args.data)
    from retrainer.pipeline.flows import initialise_champion

    records = initialise_champion(str(Path(args.config).resolve()), [str(Path(p).resolve()) for p in args.data],
                                  redraft_suite=args.force)
    print(json.dumps({"champion_version": records[0]["champion_version"], "suite": str(config.suite_path),
                      "suite_drafted": not kept_suite, "columns": model.model_dump(mode="json")}, indent=2))
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    """`retrainer adopt`: take a model version trained elsewhere as the first champion, measured on the
    reference data, which becomes its drift baseline and the suite's source. Refuses an initialised model."""
    import getpass

    config, model, kept_suite = _first_champion(args, [args.reference])
    from retrainer.pipeline.flows import adopt_champion

    record = adopt_champion(str(Path(args.config).resolve()), args.model_uri, str(Path(args.reference).resolve()),
                            getpass.getuser(), redraft_suite=args.force)
    print(json.dumps({"champion_version": record["champion_version"], "adopted_from": args.model_uri,
                      "suite": str(config.suite_path), "suite_drafted": not kept_suite,
                      "columns": model.model_dump(mode="json")}, indent=2))
    return 0


def _flow_on_file(args: argparse.Namespace, path: str, what: str) -> None:
    """Before a flow runs on one file: the config loads, the file exists, Prefect's environment is set
    (before Prefect is imported)."""
    from retrainer.config import load_config
    from retrainer.pipeline.local_api import prepare_local_run

    config = load_config(args.config)
    if not Path(path).is_file():
        raise UserError(f"{path}: {what} file not found (give a .csv or .parquet file)")
    prepare_local_run(config.storage.workdir / "prefect", verbose=args.verbose)


def cmd_run(args: argparse.Namespace) -> int:
    """`retrainer run`: one monitoring cycle on one local batch file; prints its decision record."""
    from retrainer.data.landing import checked_local_batch

    # Not resolved: a rejected batch is moved from where it was given, and a link is refused below
    # rather than followed (moving "the batch" would take the link's target away).
    batch = Path(os.path.abspath(args.batch))
    checked_local_batch(batch)
    _flow_on_file(args, str(batch), "batch")
    from retrainer.pipeline.flows import monitor_batch

    record = monitor_batch(str(Path(args.config).resolve()), str(batch), move_rejected=not args.keep_rejected)
    print(json.dumps(record, indent=2, default=str))
    # A rejected batch is an outcome of a completed cycle (exit 0); a cron or Airflow job that must fail
    # on one asks for it, as `check-large` does.
    return 1 if args.fail_on_reject and record.get("decision") == "reject_batch" else 0


def cmd_requeue(args: argparse.Namespace) -> int:
    """`retrainer requeue`: run the quarantined batches through the cycle again, oldest first, each once,
    with the suite as it is now (after a fix); prints a line per batch and exits 0 whatever they decide."""
    from retrainer.config import load_config
    from retrainer.pipeline.local_api import prepare_local_run
    from retrainer.steps.suites import requeue_plan

    config = load_config(args.config)
    plan = requeue_plan(config, args.batch)
    if not plan:
        print("no quarantined batch is waiting to be run again")
        return 0
    prepare_local_run(config.storage.workdir / "prefect", verbose=args.verbose)
    from retrainer.pipeline.flows import requeue_quarantined
    from retrainer.state.locks import intake_lock

    # The lock of the runs that take batches in: a monitor run or a second requeue waits, so no
    # quarantined batch runs twice (the flow reads what is still waiting once it holds the lock).
    with intake_lock(config):
        outcomes = requeue_quarantined(str(Path(args.config).resolve()), args.batch)
    if args.json:
        print(json.dumps(outcomes, indent=2))
    else:
        for outcome in outcomes:
            print(f"{outcome['batch']:<16} {outcome['decision'] or '-':<12} {'; '.join(outcome['reasons'])}")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    """`retrainer labels`: join a file of late labels to their batches; prints what was joined."""
    _flow_on_file(args, args.labels, "labels")
    from retrainer.pipeline.flows import join_late_labels

    outcome = join_late_labels(str(Path(args.config).resolve()), str(Path(args.labels).resolve()))
    print(json.dumps(outcome, indent=2, default=str))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`retrainer serve`: serve the model's Prefect deployments in this process until stopped."""
    from retrainer.config import load_config
    from retrainer.data.landing import list_landed
    from retrainer.observability import prepare_environment

    config = load_config(args.config)
    if not config.intake.landing:
        raise UserError(f"{args.config}: intake.landing is not set: name the folder or fsspec URI where new batch "
                        "files land")
    list_landed(config.intake.landing, config.intake.pattern)  # an unreachable landing fails now, in one line
    # A long-running worker: Prefect's own logs are its log — its flow runs and their one line per batch
    # decision; each task run's "Completed()" only with -v (hundreds a day otherwise bury the decisions).
    if not args.verbose:
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    prepare_environment(verbose=True)
    from retrainer.pipeline.deployments import serve_deployments

    serve_deployments(config, Path(args.config).resolve(), limit=args.limit)
    return 0


def cmd_check_large(args: argparse.Namespace) -> int:
    """`retrainer check-large`: validate a batch on Spark and measure its drift against @champion.

    Nothing is recorded; the exit status is 1 when the batch is rejected, 0 otherwise."""
    from retrainer.config import load_config
    from retrainer.observability import prepare_environment

    prepare_environment(verbose=args.verbose)
    from retrainer.spark.check import check_large_batch

    result = check_large_batch(load_config(args.config), args.batch, args.master, drift=not args.no_drift,
                               verbose=args.verbose)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.validation.summary(f"{result.batch} ({result.rows} rows)"))
        if result.drift is not None:
            drifted = ", ".join(result.drift.drifted_features) or "none"
            print(f"  drift vs @champion v{result.champion_version}: {result.drift.share:.0%} of features drifted "
                  f"({drifted}){'; dataset drift' if result.drift.dataset_drift else ''}")
    # Like a failed check in a pipeline: a rejected batch is a non-zero exit the upstream job can act on.
    return 0 if result.validation.valid else 1
