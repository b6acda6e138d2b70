"""Streams with known change points for the benchmarks, generated with numpy (seeded, no download).

The generators follow the classic synthetic drift streams (river's Hyperplane, STAGGER-style concept
switches, ConceptDriftStream's gradual mixing, Friedman-drift) but are written as whole batches
(DataFrames), so a 50,000-row batch takes milliseconds. Each stream knows its change points and
stable stretches: what `retrainer backtest --truth` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

FEATURES = [f"x{i}" for i in range(8)]
SEGMENTS = ("north", "south", "east")


@dataclass(frozen=True)
class Stream:
    name: str
    description: str
    task: str
    batches: int
    rows: int
    make: Callable[[int, int, np.random.Generator], pd.DataFrame]  # (batch number from 1, rows, rng)
    change_points: list[tuple[int, str]] = field(default_factory=list)
    stable: list[tuple[int, int]] = field(default_factory=list)

    def batch_name(self, number: int) -> str:
        return f"b{number:02d}"

    def truth(self) -> dict[str, object]:
        return {"change_points": [{"batch": self.batch_name(n), "kind": kind} for n, kind in self.change_points],
                "stable": [[self.batch_name(a), self.batch_name(b)] for a, b in self.stable]}

    def write(self, folder: Path, seed: int = 0) -> tuple[Path, Path]:
        """The batch files (parquet, in name order) and the ground-truth file."""
        batches = folder / "batches"
        batches.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for number in range(1, self.batches + 1):
            self.make(number, self.rows, rng).to_parquet(batches / f"{self.batch_name(number)}.parquet", index=False)
        truth = folder / "truth.yaml"
        truth.write_text(yaml.safe_dump(self.truth(), sort_keys=False), encoding="utf-8")
        return batches, truth


def _inputs(rows: int, rng: np.random.Generator, shift: dict[str, float] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (rows, len(FEATURES))), columns=FEATURES)
    for column, offset in (shift or {}).items():
        frame[column] += offset
    frame["segment"] = rng.choice(SEGMENTS, size=rows, p=[0.5, 0.3, 0.2])
    return frame


def _noisy(labels: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    flip = rng.random(len(labels)) < noise
    return np.where(flip, 1 - labels, labels)


WEIGHTS_A = np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3, 0.0, 0.0])
WEIGHTS_B = np.array([-0.6, 0.9, 0.0, -0.7, 0.5, 0.0, 0.8, -0.3])


def _hyperplane(frame: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    bonus = np.where(frame["segment"] == "east", 0.5, 0.0)
    return (frame[FEATURES].to_numpy() @ weights + bonus > 0).astype(int)


def _concept(frame: pd.DataFrame, rng: np.random.Generator, weights: np.ndarray) -> pd.DataFrame:
    frame["y"] = _noisy(_hyperplane(frame, weights), rng)
    return frame


def abrupt_covariate(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # The label follows a curved boundary in x0; from b08 x0 (and four unrelated inputs) move 2.5 sd,
    # where the first model saw little data, so it extrapolates badly (accuracy 0.93 -> 0.86). The
    # concept itself never changes. (3 sd or more fails the drafted suite's mean check: rejected.)
    shift = {c: 2.5 for c in ("x0", "x4", "x5", "x6", "x7")} if number >= 8 else {}
    frame = _inputs(rows, rng, shift)
    frame["y"] = _noisy((frame["x1"] > 1.5 * np.sin(1.5 * frame["x0"])).astype(int).to_numpy(), rng)
    return frame


def abrupt_concept(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # Same inputs throughout; from b08 the labels follow another hyperplane.
    return _concept(_inputs(rows, rng), rng, WEIGHTS_B if number >= 8 else WEIGHTS_A)


def gradual(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # From b06 to b14 a growing share of rows follows the new concept (ConceptDriftStream's mixing).
    share = float(np.clip((number - 5) / 9, 0.0, 1.0))
    frame = _inputs(rows, rng)
    new = rng.random(rows) < share
    labels = np.where(new, _hyperplane(frame, WEIGHTS_B), _hyperplane(frame, WEIGHTS_A))
    frame["y"] = _noisy(labels, rng)
    return frame


def recurring(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # Concepts A and B take turns every six batches (A: b01-06, B: b07-12, A: b13-18, B: b19-24).
    return _concept(_inputs(rows, rng), rng, WEIGHTS_B if ((number - 1) // 6) % 2 else WEIGHTS_A)


def no_change(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # One concept; each batch's inputs wobble a little (±0.04 sd), as real batches do. Nothing that
    # matters changes, but a stat test on 50,000 rows notices the wobble.
    wobble = {c: float(rng.normal(0, 0.04)) for c in FEATURES}
    return _concept(_inputs(rows, rng, wobble), rng, WEIGHTS_A)


def invalid(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # One concept; b05 reports x3 in another unit (×100), b08 lost column x2, b11 has x0 missing in
    # 40 % of rows, b14 is a failed export whose labels are all 0.
    frame = _concept(_inputs(rows, rng), rng, WEIGHTS_A)
    if number == 5:
        frame["x3"] *= 100
    elif number == 8:
        frame = frame.drop(columns=["x2"])
    elif number == 11:
        frame.loc[rng.random(rows) < 0.4, "x0"] = np.nan
    elif number == 14:
        frame["y"] = 0
    return frame


def friedman(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    # Friedman #1 (y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise, 8 inputs on [0, 1]);
    # from b08 the inputs swap roles (river's FriedmanDrift, global abrupt drift).
    x = rng.uniform(0, 1, (rows, len(FEATURES)))
    a, b, c, d, e = (x[:, [5, 6, 7, 0, 1]] if number >= 8 else x[:, [0, 1, 2, 3, 4]]).T
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["segment"] = rng.choice(SEGMENTS, size=rows)
    frame["y"] = 10 * np.sin(np.pi * a * b) + 20 * (c - 0.5) ** 2 + 10 * d + 5 * e + rng.normal(0, 1, rows)
    return frame


def streams(rows: int = 2000, large_rows: int = 50_000) -> list[Stream]:
    return [
        Stream("abrupt-covariate", "inputs move where the model never saw data (5 of 9 features)",
               "classification", 18, rows, abrupt_covariate, [(8, "abrupt")], [(2, 7)]),
        Stream("abrupt-concept", "labels follow a new hyperplane; inputs unchanged",
               "classification", 18, rows, abrupt_concept, [(8, "abrupt")], [(2, 7)]),
        Stream("gradual", "a growing share of rows follows a new concept over 9 batches",
               "classification", 20, rows, gradual, [(6, "gradual")], [(2, 5)]),
        Stream("recurring", "concepts A and B take turns every 6 batches",
               "classification", 24, rows, recurring, [(7, "abrupt"), (13, "abrupt"), (19, "abrupt")], [(2, 6)]),
        Stream("no-change-large", f"one concept, {large_rows:,}-row batches with small per-batch wobble",
               "classification", 12, large_rows, no_change, [], [(2, 12)]),
        Stream("invalid-batches", "one concept; 4 broken batches (unit, lost column, nulls, one-class labels)",
               "classification", 16, rows, invalid, [], [(2, 16)]),
        Stream("regression", "Friedman #1; inputs swap roles at b08",
               "regression", 18, rows, friedman, [(8, "abrupt")], [(2, 7)]),
    ]
