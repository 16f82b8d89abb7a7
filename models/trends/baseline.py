"""Per-precinct baselines with empirical-Bayes shrinkage: what each window was expected to show.

- `RateBaseline`: successes/trials, beta-binomial shrinkage of each precinct's rate.
- `ResidualBaseline`: observed - model-expected successes; the baseline is each precinct's usual
  residual per trial (the model's local miscalibration), shrunk by a normal-normal prior. A window
  is then judged against the model's scores for the people actually contacted, so a change in who
  was contacted moves the expectation, not the deviation.
- `CountBaseline`: event counts, gamma-Poisson shrinkage of each precinct's rate per hour, times an
  hour-of-week profile pooled over its region (precincts are too small to learn 168 factors each).

Priors are fitted across the precincts of a county (of the region for counties with few precincts),
so shrinkage pulls towards a local norm and does not bias a whole county's expectation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from models.trends import ebayes
from models.trends.buckets import DayBuckets
from models.trends.geography import Hierarchy
from models.trends.inputs import HOURS_PER_WEEK, EventCounts, RateCounts, WindowSpan
from models.trends.settings import MetricSpec
from models.trends.types import FloatArray, IntArray

P = TypeVar("P")
VARIANCE_PRIOR_TRIALS = 20.0  # a precinct's variance per trial is pooled with its region's, worth this many trials


@dataclass(frozen=True)
class Expectation:
    """One window, per unit, in count units; additive across units except baseline_sd (in quadrature)."""

    observed: FloatArray
    expected: FloatArray
    variance: FloatArray  # null sampling variance of observed - expected
    baseline_sd: FloatArray  # uncertainty of `expected` from the baseline itself
    volume: FloatArray  # trials (rates) or expected events (counts): the design shift is per unit of it


@dataclass(frozen=True)
class DailyProfile:
    """Per precinct, per day of the baseline: volume and null variance (count units)."""

    volume: FloatArray
    variance: FloatArray
    baseline_sd: FloatArray


def grouped_priors(
    hierarchy: Hierarchy, min_group_units: int, fit: Callable[[IntArray], P | None], fallback: P
) -> list[P]:
    """The prior for each precinct: its county's fit, else its region's, else the campaign's, else `fallback`."""
    campaign = fit(np.arange(hierarchy.n_precincts, dtype=np.int64)) or fallback
    region_of = hierarchy.region_of("precinct")
    regions = [
        fit(np.flatnonzero(region_of == r).astype(np.int64)) or campaign for r in range(hierarchy.size("region"))
    ]
    county_fits: list[P | None] = []
    for county in range(hierarchy.size("county")):
        members = np.flatnonzero(hierarchy.precinct_county == county).astype(np.int64)
        county_fits.append(fit(members) if members.size >= min_group_units else None)
    return [county_fits[int(c)] or regions[int(r)] for c, r in zip(hierarchy.precinct_county, region_of, strict=True)]


class Baseline:
    """Shared bookkeeping: day buckets, readiness, refits when the baseline changes."""

    def __init__(self, hierarchy: Hierarchy, spec: MetricSpec, shapes: dict[str, tuple[int, ...]]) -> None:
        self.hierarchy = hierarchy
        self.spec = spec
        self.buckets = DayBuckets(shapes, spec.half_life_days, spec.guard_days)

    @property
    def ready(self) -> bool:
        return self.buckets.mature_days >= self.spec.min_baseline_days

    def advance(self, day: int) -> bool:
        changed = self.buckets.advance(day)
        if changed:
            self.refit()
        return changed

    def refit(self) -> None:
        raise NotImplementedError

    def per_day(self, total: FloatArray) -> FloatArray:
        result: FloatArray = total / max(self.buckets.mature_days, 1.0)
        return result

    def to_state(self) -> dict[str, Any]:
        return self.buckets.to_state()

    def load_state(self, state: dict[str, Any], precinct_index: IntArray) -> None:
        remap = {k: precinct_index for k, s in self.buckets.shapes.items() if s == (self.hierarchy.n_precincts,)}
        self.buckets.load_state(state, remap)
        self.refit()


class RateBaseline(Baseline):
    def __init__(self, hierarchy: Hierarchy, spec: MetricSpec) -> None:
        n = (hierarchy.n_precincts,)
        super().__init__(hierarchy, spec, {"successes": n, "trials": n})
        self.rate, self.rate_var = np.zeros(n), np.zeros(n)
        self.refit()

    def refit(self) -> None:
        x, n = self.buckets.mature["successes"], self.buckets.mature["trials"]
        pooled = float(x.sum() / n.sum()) if n.sum() > 0 else 0.5
        weak = ebayes.BetaPrior(2.0 * pooled + 1e-3, 2.0 * (1.0 - pooled) + 1e-3)
        priors = grouped_priors(
            self.hierarchy, self.spec.min_group_units, lambda m: ebayes.fit_beta_binomial(x[m], n[m]), weak
        )
        alpha = np.array([p.alpha for p in priors])
        beta = np.array([p.beta for p in priors])
        self.rate, self.rate_var = ebayes.beta_posterior(alpha, beta, x, n)

    def expect(self, data: RateCounts) -> Expectation:
        n = data.trials
        p = self.rate
        return Expectation(
            data.successes, n * p, n * p * (1.0 - p) * self.spec.dispersion, n * np.sqrt(self.rate_var), n
        )

    def add(self, day: int, data: RateCounts) -> None:
        self.buckets.add(day, {"successes": data.successes, "trials": data.trials})

    def daily(self) -> DailyProfile:
        n = self.per_day(self.buckets.mature["trials"])
        return DailyProfile(n, n * self.rate * (1.0 - self.rate) * self.spec.dispersion, n * np.sqrt(self.rate_var))


class ResidualBaseline(Baseline):
    def __init__(self, hierarchy: Hierarchy, spec: MetricSpec) -> None:
        n = (hierarchy.n_precincts,)
        super().__init__(hierarchy, spec, {"residual": n, "trials": n, "model_var": n})
        self.bias, self.bias_var, self.trial_var = np.zeros(n), np.zeros(n), np.full(n, 0.25)
        self.refit()

    def refit(self) -> None:
        r, n, v = (self.buckets.mature[k] for k in ("residual", "trials", "model_var"))
        has = (n > 0) & (v > 0)
        safe_n = np.where(has, n, 1.0)
        estimate = np.where(has, r / safe_n, 0.0)
        sampling_var = np.where(has, v / safe_n**2, np.inf)
        pooled = float(r.sum() / n.sum()) if n.sum() > 0 else 0.0
        weak = ebayes.NormalPrior(pooled, 0.25)  # a residual per trial lies in [-1, 1]
        priors = grouped_priors(
            self.hierarchy,
            self.spec.min_group_units,
            lambda m: ebayes.fit_normal_dl(estimate[m], np.where(has[m], sampling_var[m], 0.0)),
            weak,
        )
        mean = np.array([p.mean for p in priors])
        tau2 = np.array([p.variance for p in priors])
        self.bias, self.bias_var = ebayes.normal_posterior(mean, tau2, estimate, sampling_var)
        # Variance per trial from the baseline, not from each window's own Σp(1-p): one ID with an
        # extreme score would otherwise get an enormous weight (variance near 0) in its window. A
        # constant weight per trial also makes the CUSUM the same whether fed hourly or daily.
        pooled_var = float(v.sum() / n.sum()) if n.sum() > 0 else 0.25
        self.trial_var = (v + VARIANCE_PRIOR_TRIALS * pooled_var) / (n + VARIANCE_PRIOR_TRIALS)

    def expect(self, data: RateCounts) -> Expectation:
        if data.expected is None or data.expected_var is None:
            raise ValueError("a residual metric needs the model's expected successes and their variance")
        n = data.trials
        return Expectation(
            data.successes,
            data.expected + n * self.bias,
            n * self.trial_var * self.spec.dispersion,
            n * np.sqrt(self.bias_var),
            n,
        )

    def add(self, day: int, data: RateCounts) -> None:
        assert data.expected is not None and data.expected_var is not None  # checked by expect()
        self.buckets.add(
            day,
            {"residual": data.successes - data.expected, "trials": data.trials, "model_var": data.expected_var},
        )

    def daily(self) -> DailyProfile:
        n = self.per_day(self.buckets.mature["trials"])
        return DailyProfile(n, n * self.trial_var * self.spec.dispersion, n * np.sqrt(self.bias_var))


class CountBaseline(Baseline):
    """Precinct rate per average hour x the region's hour-of-week factor."""

    def __init__(self, hierarchy: Hierarchy, spec: MetricSpec) -> None:
        n = (hierarchy.n_precincts,)
        regions = hierarchy.size("region")
        super().__init__(
            hierarchy,
            spec,
            {"counts": n, "slot_counts": (regions, HOURS_PER_WEEK), "slot_hours": (HOURS_PER_WEEK,)},
        )
        self.region_of = hierarchy.region_of("precinct")
        self.hourly, self.hourly_var = np.zeros(n), np.zeros(n)
        self.seasonal = np.ones((regions, HOURS_PER_WEEK))
        self.refit()

    def refit(self) -> None:
        y = self.buckets.mature["counts"]
        slot_counts, slot_hours = self.buckets.mature["slot_counts"], self.buckets.mature["slot_hours"]
        hours = float(slot_hours.sum())
        self.seasonal = seasonal_factors(slot_counts, slot_hours, self.spec.seasonal_prior_events)
        exposure = np.full(y.shape, hours)
        pooled = float(y.sum()) / hours / y.size if hours > 0 else 1.0
        weak = ebayes.GammaPrior(max(pooled, 1e-6), 1.0)
        priors = grouped_priors(
            self.hierarchy,
            self.spec.min_group_units,
            lambda m: ebayes.fit_gamma_poisson(y[m], exposure[m]),
            weak,
        )
        shape = np.array([p.shape for p in priors])
        rate = np.array([p.rate for p in priors])
        self.hourly, self.hourly_var = ebayes.gamma_posterior(shape, rate, y, exposure)

    def window_factor(self, span: WindowSpan) -> FloatArray:
        """Per region, the sum of hour-of-week factors over the window's hours."""
        slots = (span.hour_of_week + np.arange(span.hours)) % HOURS_PER_WEEK
        result: FloatArray = self.seasonal[:, slots].sum(axis=1)
        return result

    def expect(self, span: WindowSpan, data: EventCounts) -> Expectation:
        factor = self.window_factor(span)[self.region_of]
        expected = self.hourly * factor
        return Expectation(
            data.counts, expected, expected * self.spec.dispersion, np.sqrt(self.hourly_var) * factor, expected
        )

    def add(self, day: int, span: WindowSpan, data: EventCounts) -> None:
        slots = (span.hour_of_week + np.arange(span.hours)) % HOURS_PER_WEEK
        region_counts = np.bincount(self.region_of, weights=data.counts, minlength=self.seasonal.shape[0])
        # A window longer than an hour says nothing about its hours' shape: spread it evenly.
        hours_in_slot = np.bincount(slots, minlength=HOURS_PER_WEEK).astype(np.float64)
        slot_counts = np.outer(region_counts / span.hours, hours_in_slot)
        slot_hours = hours_in_slot
        self.buckets.add(day, {"counts": data.counts, "slot_counts": slot_counts, "slot_hours": slot_hours})

    def daily(self) -> DailyProfile:
        hours_per_day = self.per_day(np.array([self.buckets.mature["slot_hours"].sum()]))[0]
        expected = self.hourly * hours_per_day
        return DailyProfile(expected, expected * self.spec.dispersion, np.sqrt(self.hourly_var) * hours_per_day)


def seasonal_factors(slot_counts: FloatArray, slot_hours: FloatArray, prior_events: float) -> FloatArray:
    """Hour-of-week factors per region (rows), averaging 1 over the hours observed.

    Two levels of shrinkage, each worth `prior_events` expected events: the region's hour-of-day
    profile (pooled over the seven weekdays) is shrunk towards flat, and each hour-of-week slot
    towards that hour-of-day profile. One week of data already gives a usable daily shape; the
    weekday differences come in as the weeks add up.
    """
    hours = float(slot_hours.sum())
    regions = slot_counts.shape[0]
    if hours <= 0:
        return np.ones_like(slot_counts)
    rate = slot_counts.sum(axis=1, keepdims=True) / hours  # events per hour, per region
    day_counts = slot_counts.reshape(regions, 7, 24).sum(axis=1)
    day_hours = slot_hours.reshape(7, 24).sum(axis=0)
    hour_of_day = (day_counts + prior_events) / (rate * day_hours + prior_events)
    expected = rate * slot_hours
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = (slot_counts + prior_events * np.tile(hour_of_day, 7)) / (expected + prior_events)
        factors = np.where(rate > 0, factors, 1.0)
        norm = (factors * slot_hours).sum(axis=1, keepdims=True) / hours
        result: FloatArray = np.where(norm > 0, factors / norm, 1.0)
    return result
