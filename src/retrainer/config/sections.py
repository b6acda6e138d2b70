"""The sections of a config file, one pydantic model each, with their defaults and what each setting
means (`retrainer.config` puts them together and loads them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from retrainer.errors import UserError

Task = Literal["classification", "regression"]
PromotionMode = Literal["auto", "manual"]



class ConfigError(UserError):
    """A configuration problem a user can fix; the message names the file and the setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Section):
    """What is predicted, from which columns."""

    name: str = Field("model", description="Registered model name in MLflow; also names the suite file.")
    target: str = Field(..., description="Label column.")
    task: Task | None = Field(None, description="Inferred from the target when absent.")
    features: list[str] | None = Field(None, description="Feature columns; inferred when absent.")
    categorical: list[str] | None = Field(None, description="Categorical features; inferred when absent.")
    id_column: str | None = Field(None, description="Row id; inferred ('id' or '*_id' with unique values).")
    time_column: str | None = Field(None, description="Event time; inferred from dtype or name.")
    estimator: str | None = Field(
        None,
        description="A named scikit-learn pipeline (hist_gradient_boosting, the default; random_forest; linear), "
        "or your own factory as an import path 'package.module:function' returning an unfitted scikit-learn-"
        "compatible estimator that takes the feature frame (called with schema= when its signature names it; "
        "see examples/custom_training).",
    )
    metric: str | None = Field(
        None,
        description="The primary metric the gate judges and the policy watches: accuracy (the default), f1, "
        "precision, recall, roc_auc, log_loss for classification; rmse (the default), mae for regression; or "
        "your own function as 'package.module:function' taking (y_true, y_pred, y_proba) and returning a number "
        "(y_proba: class probabilities in the model's class order, None for regression). Binary precision, "
        "recall and F1 are of the last of the model's sorted classes; with more classes, macro averages.",
    )
    metric_higher_is_better: bool | None = Field(
        None,
        description="Which way your own metric function is better (true for a score, false for a loss or cost); "
        "required with one, known for the built-in names.",
    )
    positive_class: str | None = Field(
        None,
        description="Binary classification: the class that precision, recall, F1 and ROC AUC are of (the rare "
        "event you care about, e.g. 'fail'); by default the last of the two sorted classes ('1' of 0/1).",
    )
    trusted_types: list[str] = Field(
        default_factory=list,
        description="Types (module.Class) a model may be built from when it is loaded, beyond scikit-learn's and "
        "the built-in estimators': your own transformer classes. Nothing else is ever deserialised.",
    )


class PolicySettings(_Section):
    """Every threshold the retraining decision uses (see retrainer.core.policy)."""

    drift_share_threshold: float = Field(
        0.3, ge=0, le=1, description="Dataset drift when more than this share of features drift."
    )
    drift_persistence_batches: int = Field(
        2, ge=1, description="Dataset drift must persist this many batches to retrain on drift alone."
    )
    max_relative_drop: float = Field(
        0.05, ge=0, description="Retrain when the champion's metric is worse than its own validation "
        "metric by more than this fraction (0.05 = 5 %).",
    )
    drop_confidence: float = Field(
        0.95, ge=0.5, lt=1, description="A measured drop retrains only when it exceeds max_relative_drop at the "
        "optimistic end of this one-sided confidence interval, given the batch's labelled rows (its standard "
        "error): a 300-row batch's accuracy wanders ±2.6 points by chance. 0.5: the point estimate alone.",
    )
    max_relative_gain: float | None = Field(
        0.10, ge=0, description="Retrain when the champion's metric is better than its own validation metric "
        "by more than this fraction for drift_persistence_batches batches in a row: it was validated on data "
        "that has passed (a champion trained during a gradual change), so a challenger trained on the settled "
        "data may do better. Once per champion; null disables.",
    )
    max_champion_age_days: float | None = Field(
        30.0, gt=0, description="Retrain a champion that has served this many days (on the stream's clock) "
        "without being verified against the present, even without drift: verified when it was trained, when "
        "a batch's labels showed its metric holding, or when the gate kept it against a fresh challenger. "
        "null disables.",
    )
    retrain_every_days: float | None = Field(
        None, gt=0, description="A hard age limit: retrain a champion whose training data is older than this "
        "whatever its verification, at most once per period (a compliance rule). null (default): off.",
    )
    rejection_streak_batches: int | None = Field(
        3, ge=1, description="When the same critical expectation (or structural check) rejects this many batches "
        "in a row, the record says so with what to do, `status` shows it, and the `rejection_streak` webhook "
        "event goes out once; null: never.",
    )
    cooldown_batches: int = Field(
        1, ge=0, description="Batches after a retrain (or the first champion) during which no rule can retrain "
        "again: a gate that keeps failing must not turn every batch into a retrain."
    )
    min_new_labelled_rows: int = Field(
        200, ge=0, description="Labelled rows accepted since the champion's training window (this batch "
        "included) before a retrain is worth it.",
    )
    max_estimated_drop: float | None = Field(
        0.05, ge=0, description="When a batch has no labels: retrain when the champion's estimated metric "
        "(calibrated confidence) is worse than its validation metric by more than this fraction; null disables.",
    )
    max_ood_share: float | None = Field(
        0.2, ge=0, le=1, description="A shift when more than this share of rows is out of the training "
        "distribution; counts like dataset drift for the persistence rule. null disables.",
    )
    followup_after_batches: int | None = Field(
        2, ge=1, description="After a retrain on a narrow post-change window, retrain once more when this many "
        "accepted batches of the new regime arrived (widening the window); null disables.",
    )


class DriftSettings(_Section):
    """How drift is measured (Evidently's stat tests)."""

    sample_size: int = Field(
        10_000, ge=100, description="Drift runs on a uniform sample of at most this many rows."
    )
    stattests: dict[str, str] = Field(
        default_factory=dict, description="Per-column Evidently stat test names, e.g. {x1: psi}."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per-column thresholds.")
    render_report: Literal["on_drift", "always", "never"] = Field(
        "on_drift", description="When to render the full Evidently HTML report."
    )
    out_of_distribution: bool = Field(
        True, description="Score rows with an isolation forest fitted on the champion's training data.",
    )
    ood_reference_quantile: float = Field(
        0.01, gt=0, lt=0.5, description="A row is out of distribution when its normality score is below the "
        "score this share of the training rows fall under (the share flagged on unchanged data).",
    )
    ood_top_rows: int = Field(50, ge=0, description="The most unusual rows of a batch kept for review.")


class ValidationSettings(_Section):
    """Batch validation beyond the suite file itself."""

    row_level_quarantine: bool = Field(
        False, description="Split off rows failing row-wise critical expectations and accept the rest.",
    )
    max_rejected_row_share: float = Field(
        0.05, ge=0, le=1, description="Above this share of failing rows the whole batch is rejected.",
    )
    # Drafting: what a new suite rejects beyond the reference's own columns (edit the suite to change
    # an existing one).
    min_rows_share: float = Field(
        0.05, ge=0, le=1, description="A batch with fewer rows than both this share of the reference's rows "
        "per batch and min_rows is rejected (a near-empty export); drafted as a critical row count; 0: not drafted.",
    )
    min_rows: int = Field(
        30, ge=1, description="See min_rows_share: a batch of at least this many rows is never too small.",
    )
    max_duplicate_share: float | None = Field(
        0.5, ge=0, le=1, description="Largest share of rows that repeat another row (on the reference's two most "
        "distinct features) in a batch without an id column; more rejects it (a broken export). Drafted only when "
        "the reference's rows are distinct there; null: not drafted.",
    )


class SearchSettings(_Section):
    """Hyperparameter search by scikit-learn's successive halving (HalvingRandomSearchCV) with
    cross-validation inside the training rows only: never the validation rows or the gate's holdout."""

    parameters: dict[str, list[Any]] = Field(
        ..., min_length=1, description="Candidate values per parameter of the estimator, in scikit-learn's "
        "names (a built-in pipeline's model is 'model': {model__learning_rate: [0.03, 0.1, 0.3]}).",
    )
    candidates: int | Literal["exhaust"] = Field(
        "exhaust", description="Candidates sampled in the first round; 'exhaust': as many as the rows allow.",
    )
    folds: int = Field(3, ge=2, description="Cross-validation folds within the training rows.")
    scoring: str | None = Field(None, description="A scikit-learn scorer name; default: the estimator's score.")


class TrainingSettings(_Section):
    """How a challenger is trained: its window of accepted batches, the gate's holdout, its validation share."""

    window_batches: int = Field(3, ge=1, description="Most recent accepted batches a challenger trains on.")
    holdout_fraction: float = Field(
        0.3, gt=0, lt=1, description="Share of the triggering batch kept out of training for the gate."
    )
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of the training window used for the model's own validation metric."
    )
    compare_full_window: bool = Field(
        True, description="When a change narrows the window to the batches since it, also train on the full "
        "window and keep whichever scores better on the holdout: a covariate shift leaves the older batches' "
        "concept intact, a concept change does not, and the holdout tells them apart.",
    )
    search: SearchSettings | None = Field(
        None, description="Tune the estimator's hyperparameters at every training (built-in names and factories; "
        "a training function tunes itself). Off by default.",
    )
    seed: int = 0


class FairnessSettings(_Section):
    """A group-gap check in the gate (classification): each model's metric per value of each group column on
    the held-out rows, and the largest gap between two groups; a challenger that widens it by more than
    `max_gap_increase` is refused, whatever its mean. `selection_rate` (how often the positive class is
    predicted) checks demographic parity, `recall` equal opportunity, `false_positive_rate` the other half of
    equalised odds."""

    groups: list[str] = Field(min_length=1, description="Columns of the batches whose values are the groups.")
    metric: Literal["selection_rate", "recall", "precision", "false_positive_rate", "accuracy"] = Field(
        "selection_rate", description="The per-group rate whose largest gap between groups is judged.",
    )
    max_gap_increase: float = Field(
        0.02, ge=0, description="How much wider than the champion's the challenger's largest gap may be.",
    )
    min_group_rows: int = Field(
        30, ge=1, description="A group with fewer held-out rows the rate is computed on (for recall: its positive "
        "rows) is not judged.",
    )


class PromotionSettings(_Section):
    """The gate a challenger must pass, and what a pass does (auto: move @champion; manual: wait for a person)."""

    mode: PromotionMode = Field("auto", description="auto: a passing gate moves @champion; manual: tag only.")
    margin: float = Field(
        0.0, ge=0, description="Minimum improvement of the primary metric (absolute) for the gate."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence of the bootstrap interval.")
    bootstrap_resamples: int = Field(1000, ge=100)
    min_holdout_rows: int = Field(
        30, ge=2, description="A holdout smaller than this gives no trustworthy interval: the gate fails."
    )
    slices: list[str] = Field(
        default_factory=list, description="Columns whose values are judged one by one: no value with "
        "min_slice_rows rows may get worse by more than slice_tolerance (metric scale).",
    )
    min_slice_rows: int = Field(30, ge=1, description="A slice with fewer holdout rows is not judged.")
    slice_tolerance: float = Field(0.02, ge=0, description="Largest allowed worsening of a slice's metric.")
    max_churn: float | None = Field(
        None, ge=0, le=1, description="Largest share of holdout predictions allowed to change; null: recorded only.",
    )
    fairness: FairnessSettings | None = Field(
        None, description="Refuse a challenger that widens a gap between groups (off by default).",
    )
    shadow_batches: int = Field(
        0, ge=0, description="auto mode: a challenger that passed the gate first predicts this many labelled "
        "batches beside the champion, in shadow (@challenger), and is promoted only if a paired test over their "
        "rows favours it by the margin; otherwise it is retired. 0: promote on the gate alone.",
    )
    max_latency_ratio: float = Field(3.0, gt=0, description="Challenger's prediction time ÷ champion's, at most.")
    max_size_ratio: float = Field(5.0, gt=0, description="Challenger's serialized size ÷ champion's, at most.")
    baseline: bool = Field(True, description="The challenger must beat a simple baseline trained on the same window.")
    prefect_concurrency_limit: bool = Field(
        True, description="With PREFECT_API_URL in the environment (a worker), also hold the one-slot Prefect "
        "global concurrency limit retrainer-promote-<model> while promoting.",
    )
    lock_url: str | None = Field(
        None, description="PostgreSQL database for the promotion lock when MLflow is a server "
        "(default: the tracking store itself when it is PostgreSQL, else a file lock in the work dir).",
    )
    lock_timeout_seconds: float = Field(
        120.0, gt=0, description="How long a promotion waits for another one of the same model.",
    )
    approval_in_prefect: bool = Field(
        True, description="manual mode, in a deployed retrain flow run: pause for a person's approve/reject "
        "(with a comment) in the Prefect UI. The MLflow-UI path (`awaiting-approval` tag) works either way.",
    )
    approval_timeout_seconds: int = Field(
        86400, ge=10, description="How long a paused retrain waits for a decision; then the version stays "
        "tagged awaiting-approval for `retrainer promote` or the MLflow UI.",
    )


class IntakeSettings(_Section):
    """Where new batches land, and the ledger that makes the monitor deployment process each once."""

    landing: str | None = Field(
        None, description="Folder (relative to the config file) or fsspec URI (file:///…, s3://bucket/prefix "
        "with s3fs installed) that the monitor deployment scans for new batch files.",
    )
    pattern: str = Field("*", description="Glob on file names in the landing location; only .csv/.parquet/.pq "
                         "files are batches.")
    ledger_url: str | None = Field(
        None, description="SQLAlchemy URL of the intake ledger (default sqlite:///<workdir>/intake.db). Use "
        "PostgreSQL when workers run on several machines; set it from the environment "
        "(RETRAINER_INTAKE__LEDGER_URL).",
    )
    max_batches_per_run: int = Field(100, ge=1, description="New batches one monitor run takes on; the rest wait "
                                     "for the next run, in order.")
    lock_timeout_seconds: float = Field(
        5.0, ge=0, description="How long a monitor run waits for another one of the same model before it "
        "leaves the landing to that one.",
    )
    settle_seconds: float = Field(
        10.0, ge=0, description="A landed file changed less than this long ago may still be being written: it "
        "waits for the next run. Upstream jobs should still write elsewhere and move the file in.",
    )
    max_attempts: int = Field(
        5, ge=1, description="Cycles started on one batch (the first and the resumes after a failure or a crash) "
        "before it is set aside as failed, with an alert, so the batches behind it go on; dropping the file "
        "again (a new timestamp) gives it another round.",
    )


class ServeSettings(_Section):
    """The deployments `retrainer serve` runs (see prefect.yaml for the worker-pool equivalent)."""

    monitor_interval_seconds: float | None = Field(
        600.0, gt=0, description="Scan the landing location this often (ignored when monitor_cron is set).",
    )
    monitor_cron: str | None = Field(None, description="Cron schedule of the monitor deployment, e.g. '*/15 * * * *'.")
    staleness_cron: str | None = Field("0 6 * * *", description="Cron schedule of the staleness check; null: off.")
    timezone: str = Field("UTC", description="Time zone of the cron schedules.")
    retrain_trigger: Literal["event", "inline"] = Field(
        "event", description="event: a deployed monitor run that decides to retrain emits "
        "`retrainer.retrain.requested` and the retrain deployment, triggered by it, trains (possibly on another "
        "worker); inline: the monitor run trains itself (always so when the flow is called outside a deployment).",
    )


class StorageSettings(_Section):
    """Where a model's state lives on disk; each method names one of its folders or files."""

    workdir: Path = Field(Path("."), description="Where state, accepted batches and quarantine live.")
    suites_dir: Path | None = Field(
        None, description="Folder of expectation suites; default: expectations/ beside the config file."
    )

    def model_dir(self, model: str) -> Path:
        """Everything retrainer keeps for one model."""
        return self.workdir / "models" / model

    def accepted_dir(self, model: str) -> Path:
        """Accepted batches, one parquet file each: training windows come from here."""
        return self.model_dir(model) / "accepted"

    def quarantine_dir(self, model: str) -> Path:
        """Rejected batches and rows, each beside the evidence of why."""
        return self.model_dir(model) / "quarantine"

    def predictions_dir(self, model: str) -> Path:
        """The champion's predictions per batch, kept for labels that arrive later."""
        return self.model_dir(model) / "predictions"

    def labels_dir(self, model: str) -> Path:
        """Late label files taken in by `retrainer labels`."""
        return self.model_dir(model) / "labels"

    def incoming_dir(self, model: str) -> Path:
        """Copies of landed files while their cycle runs (the monitor deployment's intake)."""
        return self.model_dir(model) / "incoming"

    def timeline_path(self, model: str) -> Path:
        """The journal of cycles: one JSON line per batch."""
        return self.model_dir(model) / "timeline.jsonl"

    def suite_path(self, model: str) -> Path:
        """The model's expectation suite file (suites_dir is set by `load_config`)."""
        assert self.suites_dir is not None, "resolved by load_config"
        return self.suites_dir / f"{model}.json"


NotificationEvent = Literal["reject_batch", "retrain", "promote", "rollback", "intake_failed", "champion_refused",
                            "rejection_streak", "none"]
DEFAULT_NOTIFICATION_EVENTS: tuple[NotificationEvent, ...] = ("reject_batch", "retrain", "promote", "rollback",
                                                             "intake_failed", "champion_refused", "rejection_streak")


class NotificationSettings(_Section):
    """Webhook notifications. Keep the URL out of committed files: set
    RETRAINER_NOTIFICATIONS__WEBHOOK_URL in the deployment's environment."""

    webhook_url: str | None = Field(None, description="POST the decision record here as JSON; null: off.")
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(DEFAULT_NOTIFICATION_EVENTS),
        description="Which outcomes notify (a promotion is also a retrain).",
    )
    timeout_seconds: float = Field(5.0, gt=0)


class ObservabilitySettings(_Section):
    """Metrics to a Prometheus Pushgateway and a JSON log line per cycle (for ELK and the like).
    Set the Pushgateway from the environment: RETRAINER_OBSERVABILITY__PUSHGATEWAY_URL."""

    pushgateway_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:9091; null: metrics are not pushed.",
    )
    job: str = Field("retrainer", description="The Pushgateway job label; the model name is the other label.")
    features: list[str] | None = Field(
        None, description="Features whose drift score is pushed (keeps series bounded); default: the first "
        "`max_features` features in column order.",
    )
    max_features: int = Field(20, ge=0, description="Most per-feature drift series pushed per model.")
    timeout_seconds: float = Field(5.0, gt=0)
    json_log: str | None = Field(
        None, description="Where the one-line JSON record of each cycle goes: 'stderr', 'stdout', or a file "
        "path (appended; relative to the work dir); null: off.",
    )


class AliasNames(_Section):
    """The MLflow aliases retrainer moves, should a team name them differently."""

    champion: str = "champion"
    challenger: str = "challenger"
    previous_champion: str = "previous-champion"


class MlflowSettings(_Section):
    """Tracking and registry settings; ``mlflow_config/mlflow.yaml`` holds the production ones."""

    tracking_uri: str | None = Field(None, description="Default: sqlite:///<workdir>/mlflow.db.")
    artifact_location: str | None = Field(
        None, description="Artifact root for new experiments; default: the MLflow server's own artifact store, "
        "or <workdir>/mlartifacts without a server."
    )
    registered_model: str | None = Field(None, description="Registered model name; default: model.name.")
    training_experiment: str = Field("{model}-training", description="'{model}' is replaced by model.name.")
    cycles_experiment: str = Field("{model}-cycles", description="One run per monitoring cycle.")
    aliases: AliasNames = Field(default_factory=AliasNames)
