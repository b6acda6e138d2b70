"""One structured JSON line per cycle, in the shape log shippers (Filebeat → Elasticsearch) expect.

Fields follow the Elastic Common Schema where one exists (``@timestamp``, ``log.level``,
``message``, ``event.*``, ``labels``); the decision record travels whole under ``retrainer``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrainer.core.records import BatchRecord


def decision_message(model: str, batch: str, decision: str, reasons: Sequence[str]) -> str:
    """A cycle's decision in one line for a person: `model: batch NAME -> decision (reasons)`."""
    message = f"{model}: batch {batch} -> {decision}"
    return f"{message} ({'; '.join(reasons)})" if reasons else message


def cycle_log_line(model: str, record: BatchRecord, when: datetime | None = None) -> str:
    """The cycle as one JSON object on one line (pure)."""
    when = when or datetime.now(UTC)
    # Log shippers want UTC with a Z; a naive time is taken as UTC.
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    level = "warning" if record.decision == "reject_batch" or record.retrain_error else "info"
    message = decision_message(model, record.batch, record.decision, record.reasons)
    document: dict[str, Any] = {
        "@timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "log": {"level": level, "logger": "retrainer.cycle"},
        "message": message,
        "event": {"kind": "event", "category": ["process"], "action": record.decision,
                  "outcome": "failure" if not record.valid else "success", "dataset": "retrainer.cycle"},
        "labels": {"model": model, "decision": record.decision},
        "retrainer": json.loads(record.model_dump_json()),
    }
    return json.dumps(document, separators=(",", ":"), default=str)


def write_cycle_log(target: str, workdir: Path, line: str) -> None:
    """Append the line to stderr, stdout, or a file (relative paths under the work dir)."""
    # Written, not print()ed: a Prefect flow with log_prints turns print() into its own log records.
    if target in ("stderr", "stdout"):
        stream = sys.stderr if target == "stderr" else sys.stdout
        stream.write(line + "\n")
        stream.flush()
    else:
        path = Path(target) if Path(target).is_absolute() else workdir / target
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
