"""The gate's fairness check (promotion.fairness): a challenger better on average that widens a gap between
groups is refused, one that does not is admitted, and the report shows the groups."""

from __future__ import annotations

import numpy as np

from retrainer.config import FairnessSettings, PromotionSettings
from retrainer.core.gate import GateVerdict, gate

ROWS = 1000


def _stream() -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(7)
    y = np.where(rng.random(ROWS) < 0.5, "1", "0").astype(object)
    region = np.where(np.arange(ROWS) < ROWS // 2, "north", "south").astype(object)
    return y, region, rng


def _flip(y: np.ndarray, share: float, rng: np.random.Generator, where: np.ndarray | None = None) -> np.ndarray:
    """`y` with a share of its labels (of the rows `where`, default all) turned into the other class."""
    flipped = rng.random(len(y)) < share
    if where is not None:
        flipped &= where
    return np.where(flipped, np.where(y == "1", "0", "1"), y).astype(object)


def _verdict(challenger: np.ndarray, champion: np.ndarray, y: np.ndarray, region: np.ndarray | None,
             **fairness: object) -> GateVerdict:
    settings = PromotionSettings(fairness=FairnessSettings(groups=["region"], **fairness))  # type: ignore[arg-type]
    return gate("classification", y, champion, challenger, settings,
                groups={"region": region})


def _check(verdict: GateVerdict) -> tuple[bool, str]:
    (check,) = [c for c in verdict.checks if c.name.startswith("fairness")]
    return check.passed, check.detail


def test_better_on_average_but_wider_between_groups_is_refused_with_the_groups_shown() -> None:
    """The challenger is right on every northern row, but in the south says 'failure' for half the healthy rows:
    accuracy 0.75 -> 0.87, selection rate north 0.50 / south 0.76 — demographic parity broken."""
    y, region, rng = _stream()
    champion = _flip(y, 0.25, rng)
    challenger = np.where((region == "south") & (y == "0") & (rng.random(ROWS) < 0.5), "1", y).astype(object)
    verdict = _verdict(challenger, champion, y, region)
    assert verdict.improvement > 0.08
    assert verdict.ci_low > 0
    passed, detail = _check(verdict)
    assert not passed
    assert [c.name for c in verdict.checks if not c.passed] == ["fairness: selection_rate gap across region"]
    assert "north" in detail
    assert "south" in detail
    assert "fairness: selection_rate gap across region" in verdict.summary()


def test_better_on_average_and_as_even_between_groups_is_admitted() -> None:
    y, region, rng = _stream()
    champion = _flip(y, 0.25, rng)
    challenger = _flip(y, 0.10, rng)
    verdict = _verdict(challenger, champion, y, region)
    assert _check(verdict)[0]
    assert verdict.passed


def test_equal_opportunity_judges_recall_on_each_groups_failures() -> None:
    """The challenger misses most southern failures: recall gap widens; on selection rate alone it would not
    show as much."""
    y, region, rng = _stream()
    champion = _flip(y, 0.10, rng)
    challenger = np.where((region == "south") & (y == "1") & (rng.random(ROWS) < 0.4), "0", y).astype(object)
    verdict = _verdict(challenger, champion, y, region, metric="recall")
    passed, detail = _check(verdict)
    assert not passed
    assert verdict.checks[-1].name == "fairness: recall gap across region"
    assert "south" in detail


def test_a_group_column_the_holdout_lacks_fails_the_check_instead_of_switching_it_off() -> None:
    y, _, rng = _stream()
    verdict = _verdict(_flip(y, 0.1, rng), _flip(y, 0.25, rng), y, None)
    passed, detail = _check(verdict)
    assert not passed
    assert "not a column of the held-out rows" in detail


def test_small_groups_are_not_judged() -> None:
    y, region, rng = _stream()
    champion = _flip(y, 0.25, rng)
    challenger = np.where((region == "south") & (y == "0"), "1", y).astype(object)
    passed, detail = _check(_verdict(challenger, champion, y, region, min_group_rows=600))
    assert passed
    assert "nothing to judge" in detail


def test_a_regression_with_fairness_configured_fails_the_check_with_why() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    settings = PromotionSettings(fairness=FairnessSettings(groups=["region"]))
    verdict = gate("regression", y, y + 0.5, y + 0.1, settings, groups={"region": np.array(["a"] * 200)})
    (check,) = [c for c in verdict.checks if c.name.startswith("fairness")]
    assert not check.passed
    assert "regression" in check.detail
