"""Observability through a real Prometheus Pushgateway: what a cycle pushes, the JSON log line per
cycle, the shipped Grafana dashboard against the pushed names, and a Pushgateway that is down."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.config import load_config
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

pytestmark = pytest.mark.integration

PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "grafana-retrainer.json"
ROWS = 1000
MAX_FEATURES = 4
URL_VARIABLE = "RETRAINER_OBSERVABILITY__PUSHGATEWAY_URL"
ALLOWED_LABELS = {"job", "model", "instance", "feature", "metric", "decision", "stage"}
STREAM = (
    ScriptedBatch("b1", "stable", "init"),
    ScriptedBatch("b2", "stable", "none"),
    ScriptedBatch("b3", "stable", "none"),
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode("utf-8"))


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Pushgateway on a free local port; its URL."""
    if not os.path.exists(PUSHGATEWAY):
        reason = f"{PUSHGATEWAY} not installed (Debian package prometheus-pushgateway)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: required under CI")
        pytest.skip(reason)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("pushgateway") / "pushgateway.log").open("w")
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}",
         f"--persistence.file={log.name}.data"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"{url}/metrics")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Pushgateway did not start on {url}: see {log.name}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def retrainer_samples(url: str) -> list[Sample]:
    """The retrainer_* samples the Pushgateway exposes, parsed with Prometheus' own text parser."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = []
    for family in text_string_to_metric_families(_get(f"{url}/metrics")):
        for sample in family.samples:
            if sample.name.startswith("retrainer_"):
                samples.append(Sample(sample.name, dict(sample.labels), float(sample.value)))
    return samples


def one(samples: list[Sample], name: str, **labels: str) -> Sample:
    found = [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def write_config(path: Path, observability: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET}, "observability": observability}),
                    encoding="utf-8")
    return path


@dataclass
class Pushed:
    result: BacktestResult
    samples: list[Sample]


@pytest.fixture(scope="module")
def pushed(prefect_api: str, pushgateway: str, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """A short backtest pushing to the Pushgateway; the URL comes from the environment, as the
    settings advise for deployments (the config file's own URL has its test below)."""
    root = tmp_path_factory.mktemp("observed-stream")
    write_scenario(root / "batches", rows=ROWS, seed=31, script=STREAM)
    config = write_config(root / "config" / "retrainer.yaml",
                          {"json_log": "cycles.jsonl", "max_features": MAX_FEATURES})
    with pytest.MonkeyPatch.context() as env:
        env.setenv(URL_VARIABLE, pushgateway)
        result = run_backtest(root / "batches", TARGET, workdir=root / "work", config_path=config, name="pumps")
    return Pushed(result, retrainer_samples(pushgateway))


def test_last_cycle_is_on_the_pushgateway(pushed: Pushed) -> None:
    """After a backtest the Pushgateway shows the last cycle's rows, drift share, decision and champion age."""
    last = pushed.result.records[-1]
    assert last.decision == "none"
    assert last.drift_share is not None
    assert last.champion_age_days is not None
    samples = pushed.samples
    assert samples, "nothing named retrainer_* on the Pushgateway"
    key = {"job": "retrainer", "model": "pumps"}
    assert one(samples, "retrainer_batch_rows", **key).value == last.rows
    assert one(samples, "retrainer_drift_share", **key).value == pytest.approx(last.drift_share)
    assert one(samples, "retrainer_decision", decision="none", **key).value == 1.0
    for other in ("retrain", "reject_batch", "init"):
        assert one(samples, "retrainer_decision", decision=other, **key).value == 0.0
    assert one(samples, "retrainer_champion_age_seconds", **key).value == pytest.approx(
        last.champion_age_days * 86_400, rel=1e-6)
    assert one(samples, "retrainer_batch_rejected", **key).value == 0.0
    assert one(samples, "retrainer_champion_version", **key).value == 1.0
    assert one(samples, "retrainer_metric", metric="accuracy", **key).value == pytest.approx(last.metric)


def test_feature_drift_series_are_bounded(pushed: Pushed) -> None:
    """One drift-score series per feature, at most observability.max_features, each the record's score."""
    last = pushed.result.records[-1]
    series = [s for s in pushed.samples if s.name == "retrainer_feature_drift_score"]
    features = [s.labels["feature"] for s in series]
    assert len(features) == len(set(features)) == MAX_FEATURES
    # With no observability.features, the first max_features features in column order.
    assert set(features) == set(load_config(pushed.result.config_path).model.features[:MAX_FEATURES])
    for sample in series:
        assert sample.value == pytest.approx(last.drift_scores[sample.labels["feature"]])


def test_only_low_cardinality_labels_are_pushed(pushed: Pushed) -> None:
    """Every pushed series carries only the job/model/instance/feature/metric/decision/stage labels."""
    used = set().union(*(s.labels for s in pushed.samples))
    assert used <= ALLOWED_LABELS, used - ALLOWED_LABELS
    assert {s.labels.get("model") for s in pushed.samples} == {"pumps"}
    assert {s.labels.get("job") for s in pushed.samples} == {"retrainer"}


def test_json_log_has_one_line_per_cycle(pushed: Pushed) -> None:
    """The JSON log file holds one ECS-shaped JSON object per monitored cycle, carrying its decision record."""
    path = pushed.result.workdir / "cycles.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    monitored = [r for r in pushed.result.records if r.decision != "init"]
    assert len(lines) == len(monitored) == len(STREAM) - 1
    for line, record in zip(lines, monitored, strict=True):
        document = json.loads(line)
        assert isinstance(document, dict)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["@timestamp"])
        assert document["log"]["level"] == "info"
        assert record.batch in document["message"]
        assert record.decision in document["message"]
        logged = document["retrainer"]
        assert logged["batch"] == record.batch
        assert logged["decision"] == record.decision
        assert logged["batch_index"] == record.batch_index
        assert logged["mlflow_run_id"] == record.mlflow_run_id


def _dashboard_metric_names() -> set[str]:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return {name for expr in exprs for name in re.findall(r"retrainer_[a-z_]+", expr)}


def test_dashboard_queries_only_pushed_metrics(pushed: Pushed) -> None:
    """Every metric the shipped Grafana dashboard queries is one a real cycle pushed."""
    queried = _dashboard_metric_names()
    assert len(queried) >= 10  # the dashboard's panels were found
    seen = {s.name for s in pushed.samples}
    assert queried <= seen, f"queried but never pushed: {sorted(queried - seen)}"


def test_pushgateway_url_in_the_config_file_is_used(prefect_api: str, pushgateway: str, tmp_path: Path) -> None:
    """A backtest whose config file sets observability.pushgateway_url pushes its cycles there."""
    write_scenario(tmp_path / "batches", rows=800, seed=32, script=STREAM[:2])
    config = write_config(tmp_path / "config" / "retrainer.yaml",
                          {"pushgateway_url": pushgateway, "job": "retrainer-config-file"})
    assert os.environ.get(URL_VARIABLE) is None  # the file is the only place the URL is set
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", config_path=config, name="pumps")
    assert [r.decision for r in result.records] == ["init", "none"]
    samples = [s for s in retrainer_samples(pushgateway) if s.labels.get("job") == "retrainer-config-file"]
    assert samples, f"nothing pushed under job 'retrainer-config-file' to {pushgateway}"
    assert one(samples, "retrainer_batch_rows", model="pumps").value == 800


def test_pushgateway_down_does_not_fail_the_cycle(prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """With the Pushgateway unreachable the backtest completes with its normal decisions, the failed push a warning."""
    port = _free_port()  # nothing listens there
    write_scenario(tmp_path / "batches", rows=800, seed=31, script=STREAM[:2])
    config = write_config(tmp_path / "config" / "retrainer.yaml", {"timeout_seconds": 2})
    monkeypatch.setenv(URL_VARIABLE, f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="retrainer"):
        result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", config_path=config,
                              name="pumps")
    assert [r.decision for r in result.records] == ["init", "none"]
    assert result.records[-1].mlflow_run_id is not None
    warnings = [r.getMessage() for r in caplog.records if "metrics push failed" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert f"127.0.0.1:{port}" in warnings[0]
