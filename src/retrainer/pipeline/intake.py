"""Prefect tasks of the monitor deployment's intake: the steps of `steps.intake` with their retries."""

from __future__ import annotations

from retrainer.pipeline.tasks import READ_RETRIES, STORAGE_RETRIES, step_task
from retrainer.steps import intake
from retrainer.steps.intake import StagedBatch, drop_staged, ledger

__all__ = ["StagedBatch", "drop_staged", "ledger"]

ledger_entries = step_task(intake.ledger_entries, name="read ledger", **READ_RETRIES)
scan_landing = step_task(intake.scan_landing, name="scan landing location", **STORAGE_RETRIES)
stage_batch = step_task(intake.stage_batch, name="copy landed batch", **STORAGE_RETRIES)
claim_batch = step_task(intake.claim_batch, name="claim batch", **READ_RETRIES)
retry_claim = step_task(intake.retry_claim, name="retry unfinished batch", **READ_RETRIES)
refuse = step_task(intake.refuse, name="refuse landed file")
recorded_cycle = step_task(intake.recorded_cycle, name="recorded cycle")
remember = step_task(intake.remember, name="note new stamp")
requeue = step_task(intake.requeue, name="requeue set-aside batch")
finish_claim = step_task(intake.finish_claim, name="close claim", **READ_RETRIES)
give_up = step_task(intake.give_up, name="give up on batch")
