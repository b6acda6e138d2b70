"""What the registry says of one model version: its number, run, tags and age, and the tag names
retrainer writes on a version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

TAG_PREFIX = "retrainer."
REGISTERED_BY = TAG_PREFIX + "registered_by"
MODEL_DIGEST = TAG_PREFIX + "model_digest"
MODEL_SIGNATURE = TAG_PREFIX + "model_signature"
REFERENCE_ARTIFACT = "reference/training_data.parquet"
# JSON documents a version carries beside its model (e.g. its performance estimator).
DOCUMENTS_FOLDER = "monitoring"
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version as retrainer reads it: number, run, tags (the `retrainer.*` ones say why it
    exists) and when it was created."""

    version: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    created: datetime | None = None

    def tag(self, key: str) -> str | None:
        """The value of the version's `retrainer.<key>` tag, if set."""
        return self.tags.get(TAG_PREFIX + key)

    @property
    def validation_metric(self) -> float | None:
        """The primary metric the version measured on its own validation rows when it was trained."""
        value = self.tag("validation_metric")
        return float(value) if value is not None else None

    @property
    def validation_std_error(self) -> float | None:
        """That metric's standard error on those rows (None for versions registered before it was kept)."""
        value = self.tag("validation_metric_std_error")
        return float(value) if value is not None else None

    @property
    def trained_until(self) -> datetime | None:
        """The newest event time of its training data (else when it was registered): its age counts from here."""
        value = self.tag("trained_until")
        return datetime.fromisoformat(value) if value else self.created
