"""Batch validation: structural checks first, then the model's Great Expectations suite."""

from retrainer.validation.runner import ValidationOutcome, validate_batch
from retrainer.validation.structure import StructureReport, check_structure
from retrainer.validation.suites import SuiteError, draft_suite, load_suite, save_suite

__all__ = [
    "StructureReport",
    "SuiteError",
    "ValidationOutcome",
    "check_structure",
    "draft_suite",
    "load_suite",
    "save_suite",
    "validate_batch",
]
