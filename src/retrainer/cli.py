"""The `retrainer` command line. Imports stay inside commands: the stack takes ~15 s to import."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainer.backtest import BacktestResult
    from retrainer.comparison import GroundTruth

EPILOG = """examples:
  retrainer demo --workdir ./retrainer-demo
  retrainer backtest ./batches --target y --json timeline.json
  retrainer backtest ./batches --target y --baselines --truth truth.yaml --sweep
  retrainer init --config retrainer.yaml --data first_batch.parquet
  retrainer run --config retrainer.yaml landing/2026-03-02.csv
  retrainer labels --config retrainer.yaml landing/labels-2026-03-03.csv
  retrainer suite check --config retrainer.yaml --last 10
  retrainer check-large --config retrainer.yaml s3a://lake/events/2026-03-02/
  retrainer status --config retrainer.yaml
  retrainer promote --config retrainer.yaml 4
  retrainer rollback --config retrainer.yaml
  retrainer sign --config retrainer.yaml 4
  PREFECT_API_URL=http://127.0.0.1:4200/api retrainer serve --config retrainer.yaml
"""


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from retrainer.backtest import BacktestError
    from retrainer.config import ConfigError
    from retrainer.data import BatchReadError
    from retrainer.intake import IntakeError
    from retrainer.labels import LabelsError
    from retrainer.landing import LandingError, UnsafeBatchName
    from retrainer.locks import LockTimeout
    from retrainer.registry import RegistryError
    from retrainer.schema import SchemaError
    from retrainer.spark_session import SparkUnavailable
    from retrainer.training import TrainingError
    from retrainer.suite_commands import SuiteCommandError
    from retrainer.validation import SuiteError

    return (UserError, BacktestError, ConfigError, BatchReadError, IntakeError, LabelsError, LandingError, LockTimeout,
            RegistryError, UnsafeBatchName, SchemaError, SparkUnavailable, SuiteError, SuiteCommandError, TrainingError)


def cmd_demo(args: argparse.Namespace) -> int:
    from retrainer.demo import run_demo

    run_demo(Path(args.workdir), rows=args.rows, verbose=args.verbose)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from retrainer.backtest import run_backtest
    from retrainer.demo import TimelinePrinter, print_summary

    truth = _ground_truth(args.truth, Path(args.batch_dir)) if args.truth else None
    grid = _sweep_grid(args.sweep_param) if args.sweep else None
    printer = TimelinePrinter(sys.stdout)
    printer.start()
    result = run_backtest(
        Path(args.batch_dir), args.target, task=args.task, init_batches=args.init_batches,
        config_path=Path(args.config) if args.config else None,
        workdir=Path(args.workdir) if args.workdir else None,
        json_out=Path(args.json) if args.json else None, on_record=printer, verbose=args.verbose,
    )
    print_summary(result, sys.stdout)
    print(f"work dir: {result.workdir}" + (f"\ntimeline: {args.json}" if args.json else ""))
    if args.baselines:
        _compare_baselines(result, args.every_k, truth)
    if grid is not None:
        _sweep(result, Path(args.batch_dir), grid, truth)
    return 0


def _ground_truth(path: str, batch_dir: Path) -> GroundTruth:
    """The truth file, checked against the folder's batch names before the (long) replay starts."""
    from retrainer.comparison import GroundTruthError, check_ground_truth, load_ground_truth
    from retrainer.data import batch_name, list_batch_files

    try:
        truth = load_ground_truth(Path(path))
        if batch_dir.is_dir():
            check_ground_truth(truth, [batch_name(p) for p in list_batch_files(batch_dir)])
    except GroundTruthError as exc:
        raise UserError(str(exc)) from None
    return truth


def _sweep_grid(specs: list[str]) -> dict[str, tuple[float, ...]]:
    from retrainer.simulator import parse_grid

    return parse_grid(specs or [])


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for line in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))


def _compare_baselines(result: BacktestResult, every_k: int, truth: GroundTruth | None) -> None:
    from retrainer.baselines import default_baselines
    from retrainer.comparison import GroundTruthError
    from retrainer.policy_report import summary_rows
    from retrainer.simulator import compare_policies

    print(f"\nreplaying the same stream under the baselines (never, every-{every_k}, every-batch, drift-trigger) …",
          flush=True)
    try:
        comparison = compare_policies(result, default_baselines(every_k), result.workdir, truth)
    except GroundTruthError as exc:
        raise UserError(str(exc)) from None
    print(f"\npolicies on the same {len(comparison.order)} batches "
          f"({'higher' if comparison.higher_is_better else 'lower'} {comparison.metric_name} is better; "
          "baselines validate nothing and promote whatever they train):")
    _print_table(*summary_rows(comparison.summaries, truth is not None))
    print("\n".join(f"{kind}: {path}" for kind, path in comparison.files.items()))


def _sweep(result: BacktestResult, batch_dir: Path, grid: dict[str, tuple[float, ...]],
           truth: GroundTruth | None) -> None:
    from retrainer.comparison import GroundTruthError
    from retrainer.simulator import grid_points, run_sweep

    out = result.workdir / "sweep"
    print(f"\nsweep: {len(grid_points(grid))} policy settings, each a replay of the stream …", flush=True)
    try:
        points = run_sweep(result, batch_dir, grid, out, truth,
                           on_point=lambda p, n, total: print(f"  {n}/{total} {p.summary.policy}: mean "
                                                              f"{p.summary.mean_metric or float('nan'):.4f}, "
                                                              f"{p.summary.retrains} retrains", flush=True))
    except GroundTruthError as exc:
        raise UserError(str(exc)) from None
    metric = points[0].summary.metric_name if points else "metric"
    header = [*grid, f"mean {metric}", "retrains", "promotions", "frontier"]
    rows = [[f"{p.settings[k]:g}" for k in grid]
            + ["-" if p.summary.mean_metric is None else f"{p.summary.mean_metric:.4f}", str(p.summary.retrains),
               str(p.summary.promotions), ("yes" if p.on_frontier else "") + (" (configured)" if p.configured else "")]
            for p in points]
    print(f"\n{metric}/retrain-count frontier (frontier: no other setting has as good a metric with fewer retrains):")
    _print_table(header, rows)
    print(f"sweep: {out / 'sweep.json'}")


def cmd_init(args: argparse.Namespace) -> int:
    import pandas as pd

    from retrainer.config import load_config
    from retrainer.data import BatchReadError, read_batch, save_model_settings
    from retrainer.observability import prepare_environment
    from retrainer.schema import resolve_model_settings

    from retrainer.registry import ModelRegistry, connect

    config = load_config(args.config)
    # Refused before anything is written: a second init must not rewrite the saved column settings.
    ModelRegistry(connect(config), config).refuse_if_initialised()
    kept_suite = config.suite_path.exists() and not args.force
    frames = []
    for path in args.data:
        try:
            frames.append(read_batch(Path(path)))
        except BatchReadError as exc:
            raise UserError(f"{path}: {exc}") from None
    model = resolve_model_settings(pd.concat(frames, ignore_index=True), config.model)
    save_model_settings(config, model)
    prepare_environment(prefect_home=config.storage.workdir / "prefect", verbose=args.verbose)
    from retrainer.flows import initialise_champion

    records = initialise_champion(str(Path(args.config).resolve()), [str(Path(p).resolve()) for p in args.data],
                                  redraft_suite=args.force)
    print(json.dumps({"champion_version": records[0]["champion_version"], "suite": str(config.suite_path),
                      "suite_drafted": not kept_suite, "columns": model.model_dump(mode="json")}, indent=2))
    return 0


def _flow_on_file(args: argparse.Namespace, path: str, what: str) -> None:
    """Before a flow runs on one file: the config loads, the file exists, Prefect's environment is set
    (before Prefect is imported)."""
    from retrainer.config import load_config
    from retrainer.observability import prepare_environment

    config = load_config(args.config)
    if not Path(path).is_file():
        raise UserError(f"{path}: {what} file not found (give a .csv or .parquet file)")
    prepare_environment(prefect_home=config.storage.workdir / "prefect", verbose=args.verbose)


def cmd_run(args: argparse.Namespace) -> int:
    from retrainer.landing import checked_local_batch

    # Not resolved: a rejected batch is moved from where it was given, and a link is refused below
    # rather than followed (moving "the batch" would take the link's target away).
    batch = Path(os.path.abspath(args.batch))
    checked_local_batch(batch)
    _flow_on_file(args, str(batch), "batch")
    from retrainer.flows import monitor_batch

    record = monitor_batch(str(Path(args.config).resolve()), str(batch), move_rejected=not args.keep_rejected)
    print(json.dumps(record, indent=2, default=str))
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    _flow_on_file(args, args.labels, "labels")
    from retrainer.flows import join_late_labels

    outcome = join_late_labels(str(Path(args.config).resolve()), str(Path(args.labels).resolve()))
    print(json.dumps(outcome, indent=2, default=str))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.landing import list_landed
    from retrainer.observability import prepare_environment

    config = load_config(args.config)
    if not config.intake.landing:
        raise UserError(f"{args.config}: intake.landing is not set: name the folder or fsspec URI where new batch "
                        "files land")
    list_landed(config.intake.landing, config.intake.pattern)  # an unreachable landing fails now, in one line
    # A long-running worker: Prefect's own logs are its log.
    prepare_environment(verbose=True)
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():  # the environment or the active Prefect profile
        raise UserError("serve needs a Prefect server for its schedules and events: start one "
                        "(`prefect server start`, or deploy/run-stack.sh) and set "
                        "PREFECT_API_URL=http://127.0.0.1:4200/api")

    from retrainer.deployments import build_deployments

    deployments = build_deployments(config, Path(args.config).resolve())
    serve(*deployments, limit=args.limit, pause_on_shutdown=False)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.registry_commands import RegistryCommands, format_status

    status = RegistryCommands.open(load_config(args.config)).status(history=args.history)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.registry_commands import RegistryCommands

    before, after = RegistryCommands.open(load_config(args.config)).promote(args.version, args.reason, args.force)
    print(f"@champion: {before or '-'} -> {after} (previous-champion: {before or '-'})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.registry_commands import RegistryCommands

    before, after = RegistryCommands.open(load_config(args.config)).rollback(args.reason)
    print(f"@champion: {before} -> {after} (previous-champion: {before}; `retrainer rollback` again rolls forward)")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.registry_commands import RegistryCommands

    digest = RegistryCommands.open(load_config(args.config)).sign(args.version)
    print(f"version {args.version} signed (model files digest {digest[:16]}…)")
    return 0


def cmd_suite_draft(args: argparse.Namespace) -> int:
    from retrainer import suite_commands
    from retrainer.config import load_config

    path = suite_commands.draft(load_config(args.config), [Path(p) for p in args.data],
                                Path(args.out) if args.out else None, args.force)
    print(f"drafted {path}: review it, adjust bounds and severities, and commit it")
    return 0


def cmd_suite_check(args: argparse.Namespace) -> int:
    from retrainer import suite_commands
    from retrainer.config import load_config

    config = load_config(args.config)
    rows = suite_commands.check(config, args.last)
    print(f"suite {config.suite_path} on the last {len(rows)} batch(es) (dry run: nothing is recorded or moved)")
    print(f"{'batch':<16} {'recorded':<9} {'now':<9} detail")
    for row in rows:
        now = row.now.upper() if row.changed else row.now
        print(f"{row.batch:<16} {row.recorded:<9} {now:<9} {row.detail}")
    changed = sum(row.changed for row in rows)
    print(f"{changed} of {len(rows)} batch(es) would change outcome")
    return 0


def cmd_suite_docs(args: argparse.Namespace) -> int:
    from retrainer import suite_commands
    from retrainer.config import load_config

    index = suite_commands.docs(load_config(args.config), args.last, Path(args.out) if args.out else None)
    print(f"Data Docs: {index}")
    return 0


def cmd_check_large(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.observability import prepare_environment

    prepare_environment(verbose=args.verbose)
    from retrainer.spark_check import check_large_batch

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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retrainer",
        description="Validate, monitor, retrain and promote a production model: Great Expectations, "
        "Evidently, MLflow and Prefect, wired into one auditable cycle per batch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str, example: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
        command.set_defaults(handler=handler)
        return command

    demo = add("demo", cmd_demo, "Run the bundled scenario end to end and print the per-batch timeline.",
               "retrainer demo --workdir ./retrainer-demo")
    demo.add_argument("--workdir", default="retrainer-demo", help="folder for the demo (default: ./retrainer-demo)")
    demo.add_argument("--rows", type=int, default=3000, help="rows per batch (default: 3000)")

    backtest = add("backtest", cmd_backtest, "Replay a folder of batch files through the production cycle.",
                   "retrainer backtest ./batches --target y --json timeline.json")
    backtest.add_argument("batch_dir", help="folder of .csv/.parquet batch files, replayed in file-name order")
    backtest.add_argument("--target", required=True, help="label column")
    backtest.add_argument("--task", choices=["classification", "regression"], help="default: inferred from the target")
    backtest.add_argument("--init-batches", type=int, default=1, help="batches that train the first champion (default 1)")
    backtest.add_argument("--config", help="config file (optional: everything is inferred without one)")
    backtest.add_argument("--workdir", help="empty folder for the replay (default: ./retrainer-backtest-<folder>)")
    backtest.add_argument("--json", help="write the timeline record (DESIGN.md) to this file")
    backtest.add_argument("--baselines", action="store_true",
                          help="also replay the stream under never, every-k, every-batch and drift-trigger; "
                               "prints a comparison and writes policies.{json,png,html} into the work dir")
    backtest.add_argument("--every-k", type=int, default=5, metavar="K", help="the every-k baseline's K (default 5)")
    backtest.add_argument("--truth", metavar="FILE",
                          help="ground truth (YAML/JSON: change_points, stable stretches) for detection delay "
                               "and false retrains")
    backtest.add_argument("--sweep", action="store_true",
                          help="replay the stream once per point of a grid of policy thresholds and show the "
                               "metric/retrain-count frontier (writes sweep/sweep.json into the work dir)")
    backtest.add_argument("--sweep-param", action="append", metavar="NAME=V1,V2",
                          help="a sweep axis (repeatable), e.g. max_relative_drop=0.02,0.05,0.1; default: "
                               "drift_share_threshold=0.2,0.3,0.5 and max_relative_drop=0.02,0.05,0.1")

    init = add("init", cmd_init, "Train the first champion and draft the expectation suite.",
               "retrainer init --config retrainer.yaml --data first_batch.parquet")
    init.add_argument("--config", required=True)
    init.add_argument("--data", required=True, nargs="+", help="reference batch file(s)")
    init.add_argument("--force", action="store_true",
                      help="draft a new suite over an existing one (by default an existing suite is kept)")

    run = add("run", cmd_run, "Run one monitoring cycle on one batch and print its decision record.",
              "retrainer run --config retrainer.yaml landing/2026-03-02.csv")
    run.add_argument("--config", required=True)
    run.add_argument("batch", help="batch file (.csv or .parquet)")
    run.add_argument("--keep-rejected", action="store_true",
                     help="copy a rejected batch to quarantine instead of moving it there")

    late = add("labels", cmd_labels,
               "Join labels that arrived after their batches (by id) and update those batches' performance.",
               "retrainer labels --config retrainer.yaml landing/labels-2026-03-03.csv")
    late.add_argument("--config", required=True)
    late.add_argument("labels", help="file (.csv or .parquet) with the id column and the target column")

    serving = add("serve", cmd_serve,
                  "Serve the model's deployments (monitor, staleness-check, retrain) with Prefect, no work pool "
                  "needed; runs until stopped.",
                  "PREFECT_API_URL=http://127.0.0.1:4200/api retrainer serve --config retrainer.yaml")
    serving.add_argument("--config", required=True)
    serving.add_argument("--limit", type=_positive, default=4, help="flow runs at once in this process (default 4)")

    status = add("status", cmd_status, "Show where the aliases point and the history of their moves.",
                 "retrainer status --config retrainer.yaml --json")
    status.add_argument("--config", required=True)
    status.add_argument("--json", action="store_true", help="print JSON (champion, previous_champion, challenger, "
                        "awaiting_approval, history)")
    status.add_argument("--history", type=_positive, default=100, help="latest alias moves shown (default 100)")

    promote = add("promote", cmd_promote, "Move @champion to a version (approve a manual-mode challenger).",
                  "retrainer promote --config retrainer.yaml 4 --reason 'reviewed the gate report'")
    promote.add_argument("--config", required=True)
    promote.add_argument("version", help="model version number")
    promote.add_argument("--reason", help="why, for the alias history")
    promote.add_argument("--force", action="store_true", help="promote even a version that failed its gate")

    rollback = add("rollback", cmd_rollback, "Restore @previous-champion as @champion.",
                   "retrainer rollback --config retrainer.yaml --reason 'complaints since v5'")
    rollback.add_argument("--config", required=True)
    rollback.add_argument("--reason", help="why, for the alias history")

    sign = add("sign", cmd_sign,
               "Vouch for a version made before signing was on, or under an older key: checks its format and "
               "types, then signs its model files as they are now (RETRAINER_SIGNING_KEY).",
               "RETRAINER_SIGNING_KEY=... retrainer sign --config retrainer.yaml 4")
    sign.add_argument("--config", required=True)
    sign.add_argument("version", help="model version number")

    large = add("check-large", cmd_check_large,
                "Validate a batch too large for memory on Spark (Great Expectations' Spark datasource) and "
                "measure its drift against @champion on Evidently's Spark engine; nothing is recorded. "
                "Exit status 1 when the batch is rejected. Needs the spark extra and Java 17.",
                "retrainer check-large --config retrainer.yaml s3a://lake/events/2026-03-02/ --master yarn")
    large.add_argument("--config", required=True)
    large.add_argument("batch", help="CSV (with a header) or parquet file or folder, any path Spark reads")
    large.add_argument("--master", help="Spark master URL (default: an active session, else local[*])")
    large.add_argument("--no-drift", action="store_true", help="validate only")
    large.add_argument("--json", action="store_true", help="print the verdict as JSON")

    suite = sub.add_parser("suite", help="Draft, dry-run and document the expectation suite.",
                           description="Work on a model's expectation suite (expectations/<model>.json).")
    suite_sub = suite.add_subparsers(dest="suite_command", required=True, metavar="SUITE_COMMAND")

    def add_suite(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                  example: str) -> argparse.ArgumentParser:
        command = suite_sub.add_parser(name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("--config", required=True)
        command.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
        command.set_defaults(handler=handler)
        return command

    suite_draft = add_suite("draft", cmd_suite_draft, "Profile reference data into a draft suite.",
                            "retrainer suite draft --config retrainer.yaml --data reference.parquet")
    suite_draft.add_argument("--data", required=True, nargs="+", help="reference batch file(s)")
    suite_draft.add_argument("--out", help="write here instead of the model's suite file")
    suite_draft.add_argument("--force", action="store_true", help="replace an existing suite file")
    suite_check = add_suite("check", cmd_suite_check,
                            "Dry-run the suite as it is now on the last batches and show what would change.",
                            "retrainer suite check --config retrainer.yaml --last 10")
    suite_check.add_argument("--last", type=_positive, default=10, help="how many recent batches (default 10)")
    suite_docs = add_suite("docs", cmd_suite_docs, "Build Great Expectations Data Docs to a static folder.",
                           "retrainer suite docs --config retrainer.yaml --out ./data-docs")
    suite_docs.add_argument("--last", type=_positive, default=5,
                            help="validation results of this many batches (default 5)")
    suite_docs.add_argument("--out", help="folder for the site (default: <workdir>/models/<model>/data_docs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        # Library warnings (deprecations, numpy on one-row batches) are noise in a timeline;
        # what matters is in the decision records. -v shows them.
        warnings.simplefilter("ignore")
    if args.command == "backtest" and args.init_batches < 1:
        print("retrainer: error: --init-batches must be at least 1", file=sys.stderr)
        return 2
    if args.command == "backtest" and args.every_k < 1:
        print("retrainer: error: --every-k must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("retrainer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            print(f"retrainer: error: {exc}", file=sys.stderr)
            return 2
        service = _service_error(exc)
        if service and not args.verbose:
            print(f"retrainer: error: {service} (run with -v for details)", file=sys.stderr)
            return 3
        raise


# Errors of the services behind the pipeline (MLflow store or server, Prefect API, databases).
SERVICE_PACKAGES = {"mlflow": "MLflow", "sqlalchemy": "database", "requests": "network", "urllib3": "network",
                    "httpx": "network", "prefect": "Prefect", "psycopg": "PostgreSQL"}


def _service_error(exc: BaseException) -> str | None:
    package = type(exc).__module__.split(".")[0]
    if package not in SERVICE_PACKAGES and not isinstance(exc, ConnectionError):
        return None
    first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return f"{SERVICE_PACKAGES.get(package, 'connection')}: {first_line[:300]}"


if __name__ == "__main__":
    sys.exit(main())
