"""`retrainer demo`: the bundled scenario replayed end to end, with a readable timeline."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

from retrainer.core.records import BatchRecord, RetrainOutcome, summarise
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import SCRIPT, TARGET, write_scenario

MARKER = ".retrainer-demo"
MODEL_NAME = "pump-failure"


def _reuse_workdir(workdir: Path) -> None:
    """Only a previous demo's folder (it carries a marker file) is ever cleared."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).exists():
            raise SystemExit(f"retrainer: error: {workdir} is not empty and not a demo folder; choose another --workdir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("created by `retrainer demo`; the demo may delete this folder\n")


class TimelinePrinter:
    """Prints one line per batch as it completes: the demo's progress and its timeline."""

    header = f"{'batch':<8} {'rows':>5} {'valid':<5} {'drift':>5} {'metric':>6} {'decision':<12} {'champ':>5}  reason"

    def __init__(self, out: TextIO, events: dict[str, str] | None = None) -> None:
        self.out, self.events = out, events or {}

    def start(self) -> None:
        """Print the header line (with a column for the scripted events when there are any)."""
        print(self.header + ("   | scripted event" if self.events else ""), file=self.out, flush=True)

    def __call__(self, record: BatchRecord, done: int, total: int) -> None:
        """Print a finished batch's line, with its scripted event if it has one."""
        print(format_line(record, self.events.get(record.batch)), file=self.out, flush=True)


def format_line(record: BatchRecord, event: str | None = None) -> str:
    """One timeline line of a record: batch, rows, validity, drift share, metric, decision, champion and
    the reasons, with what a retrain came to; `event` is appended after a bar."""
    drift = f"{record.drift_share:.2f}" if record.drift_share is not None else "-"
    metric = f"{record.metric:.3f}" if record.metric is not None else "-"
    champion = f"v{record.champion_version}" if record.champion_version else "-"
    reason = "; ".join(record.reasons) or ("; ".join(record.validation_warnings[:1]) if record.validation_warnings else "")
    if record.retrain_error:
        reason += f" -> retrain failed: {record.retrain_error}"
    elif record.decision == "retrain":
        reason += (f" -> promoted v{record.new_champion_version}" if record.promoted
                   else f" -> {_not_promoted(record)}")
    if record.shadow is not None and record.shadow.outcome in ("promoted", "retired"):
        reason += f" -> shadow v{record.shadow.version} {record.shadow.outcome}: {record.shadow.reason}"
    line = (f"{record.batch:<8} {record.rows:>5} {'yes' if record.valid else 'NO':<5} {drift:>5} {metric:>6} "
            f"{record.decision:<12} {champion:>5}  {reason}")
    return line + (f"   | {event}" if event else "")


def _not_promoted(record: BatchRecord) -> str:
    """Why a retrain's challenger does not serve, in a few words: the gate's failed checks, or what stopped it."""
    return RetrainOutcome.from_dict(record.model_dump()).summary(figures=False).replace("challenger v", "v", 1)


def print_summary(result: BacktestResult, out: TextIO) -> None:
    """Print the replay's totals (retrains, promotions, rejections, mean metric) and its seconds per stage."""
    summary = summarise(result.records)
    mean = f"{summary.mean_metric:.3f}" if summary.mean_metric is not None else "-"
    print(f"\n{len(result.records)} batches in {result.seconds:.1f} s: {summary.retrains} retrain(s), "
          f"{summary.promotions} promotion(s), "
          f"rejected {', '.join(summary.rejected_batches) or 'none'}; mean {summary.metric_name} {mean}", file=out)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(result.stage_seconds.items(), key=lambda kv: -kv[1]))
    print(f"seconds per stage (all batches): {stages}; first champion + flow start-up {result.startup_seconds:.1f}",
          file=out)


def run_demo(workdir: Path, out: TextIO = sys.stdout, rows: int = 3000, verbose: bool = False) -> BacktestResult:
    """Write the bundled scenario into `workdir` and backtest it, printing the timeline to `out`.

    A non-empty `workdir` is cleared only when an earlier demo made it (its marker file); otherwise the
    demo stops with an error (SystemExit)."""
    workdir = workdir.resolve()
    _reuse_workdir(workdir)
    batches = workdir / "batches"
    write_scenario(batches, rows=rows)
    print(f"retrainer demo: {len(SCRIPT)} daily batches of {rows} pump readings in {batches}", file=out)
    print("starting Prefect (local ephemeral API) and training champion v1 …", file=out, flush=True)
    printer = TimelinePrinter(out, {spec.name: spec.expected for spec in SCRIPT})
    printer.start()
    # The config lands at DIR/retrainer.yaml, so status/promote/rollback work on the demo's registry.
    result = run_backtest(batches, TARGET, init_batches=1, workdir=workdir, name=MODEL_NAME,
                          json_out=workdir / "timeline.json", on_record=printer, verbose=verbose)
    print_summary(result, out)
    print(f"\ntimeline: {workdir / 'timeline.json'}\nconfig:   {workdir / 'retrainer.yaml'}\n"
          f"MLflow UI: mlflow ui --backend-store-uri sqlite:///{workdir / 'mlflow.db'}", file=out)
    return result
