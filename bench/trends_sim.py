"""A pure-numpy campaign for the trend benchmark: thousands of precincts, hourly ID counts, injected shifts.

Per precinct: a skewed daily ID volume (log-normal), a mean support score and a distribution of
voter scores around it (beta), a small model miscalibration, and a weekly and daily rhythm of
canvassing. Per precinct-day the contacted mix wanders (turfs differ), so the raw support rate is
noisier than the model residual. Each ID is drawn as a voter: a model score s, a true support
probability p = s + bias (+ an opinion shift after its onset), and a yes/no answer.

Opinion shifts move p so that the precinct's mean support moves by exactly the stated points:
up by d·(1 - s)/(1 - m), down by |d|·s/m, where m is the precinct's mean score (no clipping at 0 or
1 eats the shift). A mix shift moves whom canvassers reach (the mean score of the contacted
voters) without changing anyone's opinion.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from models.trends.geography import Hierarchy, Level

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ShiftKind = Literal["region", "county", "precinct", "mix"]

# Canvassing by local hour (IDs happen 09:00-21:00) and by weekday (Monday first; weekends busiest).
HOUR_PROFILE = np.array([0.0] * 9 + [0.5, 0.8, 1.0, 1.0, 0.9, 1.0, 1.1, 1.2, 1.2, 1.0, 0.7, 0.4] + [0.0] * 3)
HOUR_PROFILE = HOUR_PROFILE / HOUR_PROFILE.sum()
WEEKDAY_PROFILE = np.array([0.8, 0.8, 0.85, 0.9, 1.0, 1.5, 1.35])
WEEKDAY_PROFILE = WEEKDAY_PROFILE / WEEKDAY_PROFILE.mean()
START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class CampaignConfig:
    precincts: int = 3000
    regions: int = 5
    counties_per_region: int = 8
    days: int = 56
    monitor_from_day: int = 28  # flags before this day are warm-up, not scored
    median_ids_per_day: float = 6.0  # per precinct; log-normal, so the mean is ~9 and ~4% see 30+ a day
    ids_log_sd: float = 0.9
    ramp_per_day: float = 0.005  # volume grows towards election day
    mean_score: float = 0.45
    precinct_score_logit_sd: float = 0.5
    score_concentration: float = 2.5  # voters' scores within a precinct: beta with this a+b
    turf_sd: float = 0.04  # day-to-day sd of the contacted mix's mean score in a precinct
    county_bias_sd: float = 0.01  # model miscalibration
    precinct_bias_sd: float = 0.02


@dataclass(frozen=True)
class Shift:
    kind: ShiftKind
    level: Level
    unit: int  # index at `level`
    precincts: IntArray
    size: float  # signed, in proportion units (0.05 = 5 points)
    onset_hour: int  # hours since the campaign's start

    def onset(self) -> datetime:
        return START + timedelta(hours=self.onset_hour)


@dataclass(frozen=True)
class Campaign:
    config: CampaignConfig
    hierarchy: Hierarchy
    daily_ids: FloatArray  # per precinct, before weekday and ramp factors
    mean_score: FloatArray
    bias: FloatArray
    shifts: tuple[Shift, ...] = field(default=())


@dataclass(frozen=True)
class DayData:
    """One day of hourly per-precinct sums, arrays shaped (24, precincts)."""

    day: int
    ids: FloatArray
    supporters: FloatArray
    score_sum: FloatArray
    score_var: FloatArray  # Σ s(1-s)


def build_campaign(config: CampaignConfig, rng: np.random.Generator) -> Campaign:
    rows: list[tuple[str, str, str]] = []
    per_region = np.full(config.regions, config.precincts // config.regions)
    per_region[: config.precincts % config.regions] += 1
    county_effect: list[float] = []
    precinct_county: list[int] = []
    for region in range(config.regions):
        weights = rng.lognormal(0.0, 0.5, config.counties_per_region)
        floor = 15
        spare = int(per_region[region]) - floor * config.counties_per_region
        sizes = floor + np.floor(spare * weights / weights.sum()).astype(int)
        sizes[: int(per_region[region]) - int(sizes.sum())] += 1
        for c, size in enumerate(sizes):
            county = f"R{region + 1}-C{c + 1:02d}"
            county_effect.append(float(rng.normal(0.0, 0.3)))
            for _ in range(int(size)):
                rows.append((f"P{len(rows) + 1:05d}", county, f"Region {region + 1}"))
                precinct_county.append(len(county_effect) - 1)
    hierarchy = Hierarchy.from_rows(rows)
    n = hierarchy.n_precincts
    county_idx = np.asarray(precinct_county)
    logit = (
        np.log(config.mean_score / (1 - config.mean_score))
        + np.asarray(county_effect)[county_idx]
        + rng.normal(0.0, config.precinct_score_logit_sd, n)
    )
    mean_score = 1.0 / (1.0 + np.exp(-logit))
    daily_ids = config.median_ids_per_day * rng.lognormal(0.0, config.ids_log_sd, n)
    county_bias = rng.normal(0.0, config.county_bias_sd, hierarchy.size("county"))
    bias = county_bias[county_idx] + rng.normal(0.0, config.precinct_bias_sd, n)
    return Campaign(config, hierarchy, daily_ids, mean_score, bias)


def with_shifts(campaign: Campaign, shifts: tuple[Shift, ...]) -> Campaign:
    return Campaign(campaign.config, campaign.hierarchy, campaign.daily_ids, campaign.mean_score, campaign.bias, shifts)


def simulate_days(campaign: Campaign, rng: np.random.Generator) -> Iterator[DayData]:
    config = campaign.config
    n = campaign.hierarchy.n_precincts
    opinion_onset = np.full(n, np.iinfo(np.int64).max)
    opinion_size = np.zeros(n)
    mix_onset = np.full(n, np.iinfo(np.int64).max)
    mix_size = np.zeros(n)
    for shift in campaign.shifts:
        onset, size = (mix_onset, mix_size) if shift.kind == "mix" else (opinion_onset, opinion_size)
        onset[shift.precincts] = shift.onset_hour
        size[shift.precincts] = shift.size
    for day in range(config.days):
        volume = campaign.daily_ids * WEEKDAY_PROFILE[(START.weekday() + day) % 7] * (1 + config.ramp_per_day * day)
        ids = rng.poisson(np.outer(HOUR_PROFILE, volume)).astype(np.float64)
        cell: IntArray = np.repeat(np.arange(24 * n, dtype=np.int64), ids.ravel().astype(np.int64))
        hour_of_id, precinct = cell // n, cell % n
        absolute_hour = day * 24 + hour_of_id
        turf_mean = campaign.mean_score + rng.normal(0.0, config.turf_sd, n)
        mixed = np.where(absolute_hour >= mix_onset[precinct], mix_size[precinct], 0.0)
        m = np.clip(turf_mean[precinct] + mixed, 0.02, 0.98)
        score = rng.beta(m * config.score_concentration, (1.0 - m) * config.score_concentration)
        score = np.clip(score, 1e-4, 1 - 1e-4)
        p = np.clip(score + campaign.bias[precinct], 0.0, 1.0)
        moved = np.where(absolute_hour >= opinion_onset[precinct], opinion_size[precinct], 0.0)
        base = campaign.mean_score[precinct]
        p = np.where(moved >= 0, p + moved * (1.0 - p) / (1.0 - base), p + moved * p / base)
        answers = (rng.random(p.shape) < np.clip(p, 0.0, 1.0)).astype(np.float64)
        yield DayData(
            day, ids, _per_cell(cell, answers, n), _per_cell(cell, score, n), _per_cell(cell, score * (1.0 - score), n)
        )


def _per_cell(cell: IntArray, values: FloatArray, n: int) -> FloatArray:
    summed: FloatArray = np.bincount(cell, weights=values, minlength=24 * n).reshape(24, n).astype(np.float64)
    return summed
