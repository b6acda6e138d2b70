"""Per-cycle metrics pushed to a Prometheus Pushgateway.

Base units (seconds, ratios 0–1, rows) and low-cardinality labels only: ``job`` and ``model``
as the grouping key, plus ``feature`` (a bounded, configured set), ``metric``, ``decision`` and
``stage`` (small fixed sets). Each push replaces the model's group, so a series shows the latest
cycle; totals over the model's history are pushed as ``*_count`` gauges computed from the journal
(the Pushgateway is not a place for counters a process would increment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from retrainer.config import ObservabilitySettings
from retrainer.core.records import BatchRecord
from retrainer.errors import ServiceError

DECISIONS = ("none", "retrain", "reject_batch", "init")


class PushError(ServiceError):
    """The Pushgateway did not take the metrics; the message says why in one line."""


@dataclass(frozen=True)
class Sample:
    """One gauge value to push: its metric name, help text, value and labels."""

    name: str
    documentation: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def pushed_features(settings: ObservabilitySettings, features: Sequence[str]) -> list[str]:
    """The bounded, stable set of features whose drift score is pushed."""
    chosen = settings.features if settings.features is not None else list(features)
    return list(chosen)[: settings.max_features]


def cycle_samples(record: BatchRecord, history: Sequence[BatchRecord], settings: ObservabilitySettings,
                  features: Sequence[str], cycle_time: float) -> list[Sample]:
    """The metrics of one cycle (pure): what a dashboard and an alert rule need."""
    samples: list[Sample] = []

    def add(name: str, documentation: str, value: float | None, **labels: str) -> None:
        if value is not None and value == value:  # NaN is "not measured", not a value
            samples.append(Sample(f"retrainer_{name}", documentation, float(value), labels))

    add("last_cycle_timestamp_seconds", "When the last cycle finished (Unix time).", cycle_time)
    add("batch_rows", "Rows in the last batch.", record.rows)
    add("batch_rejected", "1 when the last batch was rejected by validation.", 0.0 if record.valid else 1.0)
    streak = record.rejection_streak.batches if record.rejection_streak else float(record.decision == "reject_batch")
    add("rejection_streak_batches", "Batches rejected in a row for the same reason, ending with the last one "
        "(0: it was accepted); alert at policy.rejection_streak_batches.", streak)
    for decision in DECISIONS:
        add("decision", "The last cycle's decision (1 for the one taken).", float(record.decision == decision),
            decision=decision)
    add("promoted", "1 when the last cycle promoted a new champion.", float(record.champion_moved))
    add("drift_share", "Share of features drifting in the last batch (0-1).", record.drift_share)
    add("dataset_drift", "1 when the last batch's drift share crossed the threshold.",
        None if record.dataset_drift is None else float(record.dataset_drift))
    add("prediction_drift_score", "Drift of the champion's predictions (distance).", record.prediction_drift)
    add("target_drift_score", "Drift of the labels against the training labels.", record.target_drift)
    add("ood_share", "Share of rows out of the training distribution (0-1).", record.ood_share)
    for feature in pushed_features(settings, features):
        add("feature_drift_score", "Per-feature drift score of the feature's stat test (p-value or distance).",
            record.drift_scores.get(feature), feature=feature)
    # A rejected batch's metric measures broken data, not the model: it stays out of the series.
    if record.metric_name and record.decision != "reject_batch":
        add("metric", "The champion's realized metric on the last batch's labels.", record.metric,
            metric=record.metric_name)
        add("estimated_metric", "The champion's estimated metric from calibrated confidence.",
            record.estimated_metric, metric=record.metric_name)
        add("estimated_metric_stddev", "Standard deviation of the estimated metric.", record.estimated_metric_std,
            metric=record.metric_name)
    add("champion_age_seconds", "Age of the champion's training data on the batch's clock.",
        None if record.champion_age_days is None else record.champion_age_days * 86_400)
    add("new_labelled_rows", "Labelled rows accepted since the champion's training window.", record.new_labelled_rows)
    if record.champion_version and record.champion_version.isdigit():
        add("champion_version", "Registry version number of the champion that scored the last batch.",
            float(record.champion_version))
    for stage, seconds in record.stage_seconds.items():
        add("stage_duration_seconds", "Seconds the last cycle spent per stage.", seconds, stage=stage)
    everything = [*history, record]
    add("retrains_count", "Retrains over the model's journal.", sum(r.decision == "retrain" for r in everything))
    add("promotions_count", "Promotions over the model's journal.", sum(r.champion_moved for r in everything))
    add("rejected_batches_count", "Rejected batches over the model's journal.",
        sum(r.decision == "reject_batch" for r in everything))
    return samples


def push_cycle(url: str, job: str, model: str, samples: Sequence[Sample], timeout_seconds: float) -> None:
    """Replace the model's group on the Pushgateway with these samples."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for sample in samples:
        if sample.name not in gauges:
            gauges[sample.name] = Gauge(sample.name, sample.documentation, labelnames=sorted(sample.labels),
                                        registry=registry)
        gauge = gauges[sample.name]
        (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)
    try:
        push_to_gateway(url, job=job, registry=registry, grouping_key={"model": model}, timeout=timeout_seconds)
    except OSError as exc:  # URLError and socket errors are OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise PushError(f"Pushgateway {url} did not take the metrics: {reason}") from None
