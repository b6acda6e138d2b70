"""The `retrainer` command line: the parser, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence

from retrainer.cli.cycle import cmd_adopt, cmd_check_large, cmd_init, cmd_labels, cmd_requeue, cmd_run, cmd_serve
from retrainer.cli.models import cmd_promote, cmd_rollback, cmd_sign, cmd_status
from retrainer.cli.replay import cmd_backtest, cmd_demo
from retrainer.cli.suites import cmd_suite_check, cmd_suite_docs, cmd_suite_draft
from retrainer.errors import ServiceError, UserError

EPILOG = """examples:
  retrainer demo --workdir ./retrainer-demo
  retrainer backtest ./batches --target y --json timeline.json
  retrainer backtest ./batches --target y --baselines --truth truth.yaml --sweep
  retrainer init --config retrainer.yaml --data first_batch.parquet
  retrainer adopt --config retrainer.yaml --model-uri models:/churn/3 --reference reference.parquet
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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `retrainer` command, each with its handler set as `handler`."""
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
    backtest.add_argument("--json", help="write the timeline (one record per batch, see README 'The timeline') to this file")
    backtest.add_argument("--baselines", action="store_true",
                          help="also replay the stream under never, every-k, every-batch and drift-trigger; "
                               "prints a comparison and writes policies.{json,png,html} into the work dir")
    backtest.add_argument("--every-k", type=int, default=5, metavar="K", help="the every-k baseline's K (default 5)")
    backtest.add_argument("--shadow", type=int, default=None, metavar="N",
                          help="with --baselines: also replay the configured policy with promotion.shadow_batches N "
                               "(0: shadow off), to compare shadow evaluation on and off")
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

    adopt = add("adopt", cmd_adopt, "Take a model version trained elsewhere as the first champion.",
                "retrainer adopt --config retrainer.yaml --model-uri models:/churn/3 --reference reference.parquet")
    adopt.add_argument("--config", required=True)
    adopt.add_argument("--model-uri", required=True, help="models:/NAME/VERSION in the config's tracking store "
                       "(a scikit-learn model saved with serialization_format='skops')")
    adopt.add_argument("--reference", required=True, help="labelled data the model is measured on; it becomes "
                       "the drift baseline and drafts the suite")
    adopt.add_argument("--force", action="store_true",
                       help="draft a new suite over an existing one (by default an existing suite is kept)")

    run = add("run", cmd_run, "Run one monitoring cycle on one batch and print its decision record (JSON, alone on "
              "stdout). Exit status 0 when the cycle completed, whatever it decided; with --fail-on-reject, 1 when "
              "the batch was rejected.",
              "retrainer run --config retrainer.yaml --fail-on-reject landing/2026-03-02.csv")
    run.add_argument("--config", required=True)
    run.add_argument("batch", help="batch file (.csv or .parquet)")
    run.add_argument("--keep-rejected", action="store_true",
                     help="copy a rejected batch to quarantine instead of moving it there")
    run.add_argument("--fail-on-reject", action="store_true",
                     help="exit with status 1 when the batch is rejected (the record is printed all the same)")

    requeue = add("requeue", cmd_requeue,
                  "Run the quarantined batches through the cycle again, oldest first, each once, with the suite as "
                  "it is now (after `retrainer suite check` showed the fix).",
                  "retrainer requeue --config retrainer.yaml")
    requeue.add_argument("--config", required=True)
    requeue.add_argument("--batch", action="append", metavar="NAME",
                         help="only this quarantined batch (repeatable; default: every one waiting)")
    requeue.add_argument("--json", action="store_true", help="print the outcomes as JSON")

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
    promote.add_argument("--force", action="store_true",
                         help="promote even a version the gate did not pass (needs --reason; the history notes the "
                              "override)")

    rollback = add("rollback", cmd_rollback, "Restore @previous-champion as @champion.",
                   "retrainer rollback --config retrainer.yaml --reason 'complaints since v5'")
    rollback.add_argument("--config", required=True)
    rollback.add_argument("--reason", help="why, for the alias history")
    rollback.add_argument("--force", action="store_true",
                          help="restore @previous-champion even when it failed its gate (it served only by --force)")

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
    """Run one `retrainer` command; returns its exit status.

    0 on success, 2 for a usage or configuration error (`UserError`), 3 when a service fails (MLflow,
    Prefect, a database, the network; with -v a library's own error is raised instead, with its
    traceback), 130 when interrupted; any other error is raised."""
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
    if args.command == "backtest" and args.shadow is not None and (args.shadow < 0 or not args.baselines):
        print("retrainer: error: --shadow N (N >= 0) compares shadow on and off within --baselines", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("retrainer: interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"retrainer: error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"retrainer: error: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:
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
    return f"{SERVICE_PACKAGES.get(package, 'connection')}: {first_line.strip()}"
