"""The `retrainer` command line. Imports stay inside commands: the stack takes ~15 s to import."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EPILOG = """examples:
  retrainer demo --workdir ./retrainer-demo
  retrainer backtest ./batches --target y --json timeline.json
  retrainer init --config retrainer.yaml --data first_batch.parquet
  retrainer run --config retrainer.yaml landing/2026-03-02.csv
"""


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from retrainer.backtest import BacktestError
    from retrainer.config import ConfigError
    from retrainer.data import BatchReadError
    from retrainer.registry import RegistryError
    from retrainer.schema import SchemaError
    from retrainer.training import TrainingError
    from retrainer.validation import SuiteError

    return (UserError, BacktestError, ConfigError, BatchReadError, RegistryError, SchemaError, SuiteError,
            TrainingError)


def cmd_demo(args: argparse.Namespace) -> int:
    from retrainer.demo import run_demo

    run_demo(Path(args.workdir), rows=args.rows, verbose=args.verbose)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from retrainer.backtest import run_backtest
    from retrainer.demo import TimelinePrinter, print_summary

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
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    import pandas as pd

    from retrainer.config import load_config
    from retrainer.data import BatchReadError, read_batch
    from retrainer.observability import prepare_environment
    from retrainer.schema import resolve_model_settings

    config = load_config(args.config)
    frames = []
    for path in args.data:
        try:
            frames.append(read_batch(Path(path)))
        except BatchReadError as exc:
            raise UserError(f"{path}: {exc}") from None
    model = resolve_model_settings(pd.concat(frames, ignore_index=True), config.model)
    settings_file = config.storage.model_dir(model.name) / "model_settings.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(model.model_dump_json(indent=2))
    prepare_environment(prefect_home=config.storage.workdir / "prefect", verbose=args.verbose)
    from retrainer.flows import initialise_champion

    records = initialise_champion(str(Path(args.config).resolve()), [str(Path(p).resolve()) for p in args.data])
    print(json.dumps({"champion_version": records[0]["champion_version"], "suite": str(config.suite_path),
                      "columns": model.model_dump(mode="json")}, indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from retrainer.config import load_config
    from retrainer.observability import prepare_environment

    config = load_config(args.config)
    if not Path(args.batch).exists():
        raise UserError(f"{args.batch}: batch file not found")
    prepare_environment(prefect_home=config.storage.workdir / "prefect", verbose=args.verbose)
    from retrainer.flows import monitor_batch

    print(json.dumps(monitor_batch(str(Path(args.config).resolve()), str(Path(args.batch).resolve())), indent=2,
                     default=str))
    return 0


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

    init = add("init", cmd_init, "Train the first champion and draft the expectation suite.",
               "retrainer init --config retrainer.yaml --data first_batch.parquet")
    init.add_argument("--config", required=True)
    init.add_argument("--data", required=True, nargs="+", help="reference batch file(s)")

    run = add("run", cmd_run, "Run one monitoring cycle on one batch and print its decision record.",
              "retrainer run --config retrainer.yaml landing/2026-03-02.csv")
    run.add_argument("--config", required=True)
    run.add_argument("batch", help="batch file (.csv or .parquet)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "backtest" and args.init_batches < 1:
        print("retrainer: error: --init-batches must be at least 1", file=sys.stderr)
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
