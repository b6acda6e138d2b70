"""Streams of real data that pip packages ship inside themselves (issue 16, "right decisions on data
nobody here wrote"): statsmodels' `fair` and `randhie`, scikit-learn's `digits`, plotly's `gapminder`.
Nothing is downloaded; every file is read from the installed package.

The rows are real; how they are cut into batches, and in which order, is ours, and each builder says
so. A stream is stationary only where its rows are shuffled across batches; where it changes, the
change is made by ordering or re-sampling real rows (or, for digits, by changing how the real digit
label maps to the binary target) at a known batch. Batches are deterministic for a given seed.

    from real_streams import real_streams
    for stream in real_streams():
        stream.write(Path("out") / stream.name)   # out/<name>/batches/b01.parquet ..., out/<name>/truth.yaml
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from streams import Stream

Build = Callable[[int], list[pd.DataFrame]]  # seed -> every batch of the stream, in order


@dataclass(frozen=True)
class RealStream(Stream):
    """A `Stream` whose batches are cut from one real data set at once (so `make` serves them by
    position); `source` names the package and data set, `file_format` the batch files written."""

    source: str = ""
    file_format: Literal["parquet", "csv"] = "parquet"
    build: Build | None = field(default=None, compare=False, repr=False)

    def frames(self, seed: int = 0) -> list[pd.DataFrame]:
        """The stream's batches in order (the first `batches` of them)."""
        assert self.build is not None
        return _cached(self.build, seed)[: self.batches]

    def write(self, folder: Path, seed: int = 0) -> tuple[Path, Path]:
        batches = folder / "batches"
        batches.mkdir(parents=True, exist_ok=True)
        for number, frame in enumerate(self.frames(seed), start=1):
            path = batches / f"{self.batch_name(number)}.{self.file_format}"
            if self.file_format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
        truth = folder / "truth.yaml"
        truth.write_text(yaml.safe_dump(self.truth(), sort_keys=False), encoding="utf-8")
        return batches, truth


@functools.cache
def _cached(build: Build, seed: int) -> list[pd.DataFrame]:
    return build(seed)


def _by_position(build: Build) -> Callable[[int, int, np.random.Generator], pd.DataFrame]:
    # Stream's `make` signature (batch number from 1, rows, rng); the rows are the data set's own.
    def make(number: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
        return _cached(build, 0)[number - 1].copy()
    return make


def _split(frame: pd.DataFrame, batches: int) -> list[pd.DataFrame]:
    """`frame` cut into `batches` consecutive parts of nearly equal size."""
    return [frame.iloc[part].reset_index(drop=True) for part in np.array_split(np.arange(len(frame)), batches)]


# --- 1. fair: weekly, stationary ---------------------------------------------------------------

FAIR_BATCHES = 19


def fair_weekly(seed: int) -> list[pd.DataFrame]:
    """statsmodels' `fair` (Fair 1978, 6,366 women's survey answers): y = 1 when `affairs` > 0 (32 %);
    `affairs` itself is dropped. Rows shuffled, then cut into 19 batches of 335-336 rows; each batch
    gets a `date` 7 days after the previous one (2024-01-01, 2024-01-08, ...). Nothing changes."""
    import statsmodels.api as sm

    data = sm.datasets.fair.load_pandas().data
    data = data.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    data["y"] = (data.pop("affairs") > 0).astype(int)
    out = []
    for number, batch in enumerate(_split(data, FAIR_BATCHES)):
        batch.insert(0, "date", (pd.Timestamp("2024-01-01") + pd.Timedelta(days=7 * number)).strftime("%Y-%m-%d"))
        out.append(batch)
    return out


# --- 2. digits: small batches, the labelling changes ---------------------------------------------

DIGITS_BATCHES = 22
DIGITS_CHANGE = 12


def digits_relabel(seed: int) -> list[pd.DataFrame]:
    """scikit-learn's `load_digits` (1,797 real 8x8 handwritten digits, 64 pixel columns 0-16). Rows
    shuffled and cut into 22 batches of 81-82 rows. The binary target is derived from the real digit:
    b01-b11 y = 1 when the digit is 5 or more; from b12 y = 1 when the digit is even (a relabelling,
    as when a label taxonomy changes; the images do not change). About 60 % of rows change label."""
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True)
    data = digits.frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    digit = data.pop("target")
    out = []
    start = 0
    for number, batch in enumerate(_split(data, DIGITS_BATCHES), start=1):
        labels = digit.iloc[start:start + len(batch)].to_numpy()
        start += len(batch)
        batch["y"] = (labels % 2 == 0).astype(int) if number >= DIGITS_CHANGE else (labels >= 5).astype(int)
        out.append(batch)
    return out


# --- 3. gapminder: an integer year that grows -------------------------------------------------------

def gapminder_years(seed: int) -> list[pd.DataFrame]:
    """plotly's `gapminder` (142 countries every 5 years, 1952-2007): regression, y = `lifeExp` from
    `year` (integer), `continent`, `pop`, `gdpPercap` (and `country`, 142 distinct names, which the
    schema inference leaves out as an identifier). One batch per year in year order: 12 batches of 142
    rows, so every batch after b01 has a year the reference never saw. Rows shuffled within a batch.
    The change is the real one: life expectancy and income rise over the 55 years (gradual)."""
    import plotly.express as px

    data = px.data.gapminder().drop(columns=["iso_alpha", "iso_num"]).rename(columns={"lifeExp": "y"})
    return [group.sample(frac=1.0, random_state=seed + int(year)).reset_index(drop=True)
            for year, group in data.groupby("year", sort=True)]


# --- 4. randhie by site: a category the reference never saw becomes common ---------------------------

SITE_BATCHES = 18
SITE_ROWS = 300
SITE_CHANGE = 8
SITE_NEW = 5
SITE_SHARE = 0.4
SITE_COLUMNS = ["site", "xage", "female", "child", "linc", "logc", "idp", "lpi", "fmde", "physlm", "disea",
                "hlthg", "hlthf", "hlthp"]


def _randhie_source() -> pd.DataFrame:
    # The full RAND Health Insurance Experiment file statsmodels ships beside its 10-column loader.
    import statsmodels

    return pd.read_csv(Path(os.path.dirname(statsmodels.__file__)) / "datasets" / "randhie" / "src" / "randhie.csv")


def randhie_new_site(seed: int) -> list[pd.DataFrame]:
    """statsmodels' RAND Health Insurance Experiment person-years (datasets/randhie/src/randhie.csv, 20,190
    rows, 6 experiment sites): y = 1 when the person had any outpatient visit that year (`mdvis` > 0);
    features: `site` (as text "site1".."site6"), age, sex, child, log income and the 9 features of
    statsmodels' own randhie loader. 18 batches of 300 rows sampled without replacement: b01-b07 from
    sites 1, 2, 3, 4, 6 only; from b08 40 % of every batch comes from site 5 (which b01-b07 never held;
    53 % of its person-years had a visit against 75 % at sites 1-4), the rest from the same five sites
    as before. A person may appear in several batches (different years)."""
    rng = np.random.default_rng(seed)
    data = _randhie_source()
    data = data.assign(y=(data["mdvis"] > 0).astype(int), site="site" + data["site"].astype(str))
    data = data[[*SITE_COLUMNS, "y"]]
    new = data[data["site"] == f"site{SITE_NEW}"]
    old = data[data["site"] != f"site{SITE_NEW}"]
    old_order = rng.permutation(len(old))
    new_order = rng.permutation(len(new))
    out = []
    taken_old = taken_new = 0
    for number in range(1, SITE_BATCHES + 1):
        from_new = round(SITE_ROWS * SITE_SHARE) if number >= SITE_CHANGE else 0
        from_old = SITE_ROWS - from_new
        parts = [old.iloc[old_order[taken_old:taken_old + from_old]], new.iloc[new_order[taken_new:taken_new + from_new]]]
        taken_old += from_old
        taken_new += from_new
        batch = pd.concat(parts).sample(frac=1.0, random_state=seed + number).reset_index(drop=True)
        out.append(batch)
    return out


# --- 5. randhie, 2-month cadence: stationary regression ---------------------------------------------

RANDHIE_BATCHES = 12
RANDHIE_ROWS = 1500


def randhie_bimonthly(seed: int) -> list[pd.DataFrame]:
    """statsmodels' `randhie` loader (20,190 person-years, 10 columns): regression, y = `mdvis` (outpatient
    visits in the year, 0-77) from the other 9 columns. Rows shuffled; 12 batches of 1,500 rows (18,000
    rows used); each batch gets a `period` (datetime) 2 months after the previous one (2023-01-01,
    2023-03-01, ...). Nothing changes."""
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data
    data = data.sample(frac=1.0, random_state=seed).reset_index(drop=True).rename(columns={"mdvis": "y"})
    out = []
    for number in range(RANDHIE_BATCHES):
        batch = data.iloc[number * RANDHIE_ROWS:(number + 1) * RANDHIE_ROWS].reset_index(drop=True)
        batch.insert(0, "period", pd.Timestamp("2023-01-01") + pd.DateOffset(months=2 * number))
        out.append(batch)
    return out


def _stream(name: str, description: str, task: str, batches: int, rows: int, build: Build, source: str,
            change_points: list[tuple[int, str]], stable: list[tuple[int, int]],
            file_format: Literal["parquet", "csv"] = "parquet") -> RealStream:
    return RealStream(name, description, task, batches, rows, _by_position(build), change_points, stable,
                      source=source, file_format=file_format, build=build)


def real_streams() -> list[RealStream]:
    """The real-data streams, each with its known change points and stable stretches."""
    return [
        _stream("fair-weekly", "statsmodels fair, shuffled, weekly `date` (CSV); nothing changes",
                "classification", FAIR_BATCHES, 335, fair_weekly, "statsmodels.datasets.fair",
                [], [(2, FAIR_BATCHES)], file_format="csv"),
        _stream("digits-relabel", f"sklearn digits, ~82-row batches; the binary label changes meaning at "
                f"b{DIGITS_CHANGE}", "classification", DIGITS_BATCHES, 82, digits_relabel,
                "sklearn.datasets.load_digits", [(DIGITS_CHANGE, "abrupt")], [(2, DIGITS_CHANGE - 1)]),
        _stream("gapminder-years", "plotly gapminder, one batch per year 1952-2007, y = lifeExp",
                "regression", 12, 142, gapminder_years, "plotly.express.data.gapminder",
                [(2, "gradual")], []),
        _stream("randhie-new-site", f"RAND HIE, site{SITE_NEW} absent until b{SITE_CHANGE - 1:02d}, then "
                f"{SITE_SHARE:.0%} of rows", "classification", SITE_BATCHES, SITE_ROWS, randhie_new_site,
                "statsmodels datasets/randhie/src/randhie.csv", [(SITE_CHANGE, "abrupt")], [(2, SITE_CHANGE - 1)]),
        _stream("randhie-bimonthly", "statsmodels randhie, shuffled, 2-month `period`, y = mdvis; nothing changes",
                "regression", RANDHIE_BATCHES, RANDHIE_ROWS, randhie_bimonthly, "statsmodels.datasets.randhie",
                [], [(2, RANDHIE_BATCHES)]),
    ]
