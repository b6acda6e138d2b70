"""The bundled demo scenario: a seeded stream of machine sensor readings with scripted events.

Each batch is one day of readings from a fleet of pumps; the label says whether the pump
failed within 24 hours. Events, in order: a stable stretch; humidity drifts (covariate drift
on a feature the label does not depend on); a day whose export lost the vibration column; a
day whose temperature sensor firmware reported °F instead of °C; a maintenance-policy change
after which failures depend on the features differently (concept change); recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "failure"
MACHINE_TYPES = ("centrifugal", "piston", "diaphragm")
SITES = ("north", "south", "east", "west")


@dataclass(frozen=True)
class ScriptedBatch:
    """One day of the scenario: its name, the scripted event and the outcome expected of it, and how its
    readings are made (humidity shifted, a column dropped, °F for °C, which concept labels them)."""

    name: str
    event: str
    expected: str
    humidity_shift: float = 0.0
    drop_column: str | None = None
    fahrenheit: bool = False
    concept: int = 0


SCRIPT: tuple[ScriptedBatch, ...] = (
    ScriptedBatch("day-01", "stable", "init: champion v1 + draft suite"),
    *(ScriptedBatch(f"day-{d:02d}", "stable", "none") for d in range(2, 6)),
    ScriptedBatch("day-06", "humidity drifts +20 points", "none: one feature drifts, performance holds", humidity_shift=20),
    ScriptedBatch("day-07", "humidity drift persists", "none", humidity_shift=22),
    ScriptedBatch("day-08", "export lost 'vibration_mm_s'", "reject_batch", drop_column="vibration_mm_s"),
    ScriptedBatch("day-09", "temperature in °F", "reject_batch", fahrenheit=True),
    ScriptedBatch("day-10", "stable", "none"),
    ScriptedBatch("day-11", "concept change", "retrain: accuracy drops; promote v2", concept=1),
    ScriptedBatch("day-12", "new concept", "none: v2 serves, accuracy recovers", concept=1),
    ScriptedBatch("day-13", "new concept", "retrain: follow-up on days 11-13; the gate decides", concept=1),
    *(ScriptedBatch(f"day-{d:02d}", "new concept", "none", concept=1) for d in range(14, 17)),
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_batch(spec: ScriptedBatch, day: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """The readings of one scripted day (`day` days after 1 March 2026), with their failure labels."""
    start = datetime(2026, 3, 1) + timedelta(days=day)
    machine = rng.choice(MACHINE_TYPES, size=rows, p=[0.5, 0.3, 0.2])
    temperature = rng.normal(55, 8, rows) + np.where(machine == "piston", 4.0, 0.0)
    vibration = rng.gamma(2.0, 1.5, rows)
    pressure = rng.normal(6.0, 0.6, rows)
    humidity = np.clip(rng.normal(45 + spec.humidity_shift, 10, rows), 2, 99)
    rpm = rng.normal(1500, 200, rows)
    load = rng.uniform(20, 100, rows)
    flow = rng.normal(120, 15, rows)
    site = rng.choice(SITES, size=rows)
    shift = rng.choice(("day", "night"), size=rows, p=[0.6, 0.4])

    if spec.concept == 0:
        logit = (0.25 * (temperature - 58) + 0.9 * (vibration - 3) + 0.05 * (load - 60)
                 + np.where(machine == "diaphragm", 1.2, 0.0) - 0.5)
    else:
        # After the maintenance change hot pumps are serviced first: failures now come from
        # pressure spikes and high rpm on night shifts, and heat no longer predicts them.
        logit = (3.0 * (pressure - 6.0) + 0.012 * (rpm - 1500) - 0.2 * (temperature - 58)
                 + np.where(shift == "night", 1.0, -0.3) - 0.2)
    failure = (rng.random(rows) < _sigmoid(2.0 * logit)).astype(int)

    frame = pd.DataFrame({
        "reading_id": [f"{start:%Y%m%d}-{i:05d}" for i in range(rows)],
        "event_time": pd.to_datetime(start) + pd.to_timedelta(np.sort(rng.uniform(0, 86_400, rows)), unit="s"),
        "machine_type": machine,
        "site": site,
        "shift": shift,
        "temperature_c": np.round(temperature * 1.8 + 32 if spec.fahrenheit else temperature, 2),
        "vibration_mm_s": np.round(vibration, 3),
        "pressure_bar": np.round(pressure, 3),
        "humidity_pct": np.round(humidity, 1),
        "rpm": np.round(rpm, 0),
        "load_pct": np.round(load, 1),
        "flow_m3h": np.round(flow, 1),
        TARGET: failure,
    })
    if spec.drop_column:
        frame = frame.drop(columns=[spec.drop_column])
    return frame


def write_scenario(folder: Path, rows: int = 3000, seed: int = 7, script: tuple[ScriptedBatch, ...] = SCRIPT) -> list[Path]:
    """Write the scripted batches as CSV files named in stream order; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for day, spec in enumerate(script):
        path = folder / f"{spec.name}.csv"
        make_batch(spec, day, rows, rng).to_csv(path, index=False)
        paths.append(path)
    return paths
