"""What each flow run's page in the Prefect UI says (`pipeline.run_summaries`): read as a person would."""

from __future__ import annotations

from retrainer.pipeline import run_summaries


def test_a_landing_scan_lists_every_batch_and_what_it_left() -> None:
    page = run_summaries.landing_markdown("pumps", {
        "batches": [{"batch": "day-3", "batch_index": 3, "outcome": "retrain", "resumed": True},
                    {"batch": "bad name.csv", "outcome": "refused", "reason": "bad name.csv: a space"}],
        "ignored": ["day-1.csv", "day-2.csv"], "waiting": ["day-4.csv"]})
    assert page.splitlines()[0] == "## `pumps`: 2 batch(es) taken in"
    assert "| `day-3` | 3 | **retrain** | resumed after an unfinished run |" in page
    assert "| `bad name.csv` | - | **refused** | bad name.csv: a space |" in page
    assert page.endswith("- 2 landed file(s) processed before and ignored; 1 still being written")
    skipped = run_summaries.landing_markdown("pumps", {"skipped": "another monitor run holds the lock", "batches": []})
    assert skipped == "## `pumps`: nothing taken in\n\n- another monitor run holds the lock"


def test_a_fleet_run_shows_each_models_decision_or_error() -> None:
    page = run_summaries.fleet_markdown([
        {"config": "/m/pumps/retrainer.yaml", "batch": "/l/day-3.csv", "record": {"decision": "none"}, "seconds": 4.25},
        {"config": "/m/fans/retrainer.yaml", "batch": "/l/day-3.csv", "error": "TrainingError: boom"}])
    assert page.splitlines()[0] == "## Fleet: 1 of 2 model cycles completed"
    assert "| `pumps` | `day-3.csv` | **none** | 4.2 |" in page
    assert "| `fans` | `day-3.csv` | failed: TrainingError: boom | - |" in page


def test_a_staleness_check_says_whether_it_retrained_and_how_that_ended() -> None:
    quiet = run_summaries.staleness_markdown("pumps", {"summary": "champion age 3 d (limit 30 d)"})
    assert quiet == "## `pumps`: champion age 3 d (limit 30 d)\n\n- no retrain needed"
    asked = run_summaries.staleness_markdown("pumps", {"summary": "s", "retrain": True, "reason": "too old",
                                                       "retrain_event_id": "e1"})
    assert "- too old: retrain requested" in asked
    ran = run_summaries.staleness_markdown("pumps", {"summary": "s", "retrain": True, "reason": "too old",
                                                     "challenger_version": "4", "promoted": False,
                                                     "retrain_error": None})
    assert "challenger v4" in ran


def test_requeue_and_first_champion_pages() -> None:
    page = run_summaries.requeue_markdown("pumps", [{"batch": "day-8", "requeue_of": 8, "decision": "none",
                                                     "reasons": ["within limits"]},
                                                    {"batch": "day-9", "requeue_of": 9, "decision": None,
                                                     "reasons": ["its quarantined copy is gone: nothing to run"]}])
    assert "| `day-8` | 8 | **none** | within limits |" in page
    assert "| `day-9` | 9 | **not run** | its quarantined copy is gone: nothing to run |" in page
    champion = run_summaries.first_champion_markdown([{"champion_version": "1", "batch": "ref", "rows": 900}],
                                                     "models:/churn/3")
    assert champion == "## Champion v1 adopted from `models:/churn/3`\n\n- reference batch `ref`: 900 rows"
