"""CUSUM recursion, onset tracking and budget thresholds against plain loops, closed forms and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.trends.cusum import NO_RUN, CusumBank, llr_increment, standardise
from models.trends.thresholds import (
    MIN_THRESHOLD,
    arl0_information,
    drift_per_day,
    false_alarms_per_day,
    threshold_for_budget,
)


def plain_cusum(
    observed: list[float], expected: list[float], variance: list[float], shift: list[float]
) -> tuple[list[float], list[int]]:
    """Page's recursion on the Gaussian log-likelihood ratio, written out; onset = first window after the last zero."""
    s, start = 0.0, NO_RUN
    statistics, starts = [], []
    for t, (x, e, v, m) in enumerate(zip(observed, expected, variance, shift, strict=True)):
        llr = 0.0 if v == 0 else (m * (x - e) - m * m / 2) / v
        new = s + llr if s + llr > 1e-9 else 0.0  # zero up to rounding
        if new > 0 and s == 0:
            start = t
        if new == 0:
            start = NO_RUN
        s = new
        statistics.append(s)
        starts.append(start)
    return statistics, starts


def test_bank_matches_the_plain_recursion_with_varying_volume() -> None:
    rng = np.random.default_rng(3)
    windows, units = 300, 4
    trials = rng.poisson(rng.uniform(0, 12, (windows, units))).astype(float)  # some windows empty
    p0 = np.array([0.3, 0.5, 0.45, 0.6])
    truth = p0 + np.where(np.arange(windows)[:, None] >= 150, [0.0, 0.12, 0.0, -0.1], 0.0)
    observed = rng.binomial(trials.astype(int), truth).astype(float)
    expected, variance, shift = trials * p0, trials * p0 * (1 - p0), trials * 0.1
    bank = CusumBank.empty(units)
    got_s, got_start = [], []
    for t in range(windows):
        z, lam = standardise(observed[t] - expected[t], variance[t], shift[t])
        bank.step(
            llr_increment(z, lam),
            t,
            observed[t],
            expected[t],
            variance[t],
            trials[t],
            np.zeros(units),
            np.ones(units, dtype=bool),
        )
        got_s.append(bank.statistic.copy())
        got_start.append(bank.run_start.copy())
    for u in range(units):
        s, starts = plain_cusum(
            observed[:, u].tolist(), expected[:, u].tolist(), variance[:, u].tolist(), shift[:, u].tolist()
        )
        assert np.allclose([g[u] for g in got_s], s)
        assert [int(g[u]) for g in got_start] == starts
        # The run sums are the sums since the onset.
        if starts[-1] != NO_RUN:
            assert bank.run_observed[u] == pytest.approx(observed[starts[-1] :, u].sum())
            assert bank.run_volume[u] == pytest.approx(trials[starts[-1] :, u].sum())


def test_inactive_units_hold_at_zero_and_reset_clears_runs() -> None:
    bank = CusumBank.empty(2)
    one = np.ones(2)
    bank.step(np.array([3.0, 3.0]), 10, one, one, one, one, one, np.array([True, False]))
    assert bank.statistic.tolist() == [3.0, 0.0] and bank.run_start.tolist() == [10, NO_RUN]
    bank.reset(np.array([True, False]))
    assert bank.statistic.tolist() == [0.0, 0.0] and bank.run_observed.tolist() == [0.0, 0.0]


def test_threshold_solves_the_budget_equation() -> None:
    for information, budget in ((40.0, 0.01), (3000.0, 0.002), (1e6, 1e-3)):
        h = threshold_for_budget(information, budget)
        assert information / (2 * (math.exp(h) - h - 1)) == pytest.approx(budget, rel=1e-9)
        assert false_alarms_per_day(h, information) == pytest.approx(budget, rel=1e-9)
    assert threshold_for_budget(1.0, 1.0) == MIN_THRESHOLD


def test_arl0_formula_against_a_fine_grained_simulation() -> None:
    # Many small windows approximate Brownian motion; the formula should hold to within the overshoot
    # (which can only lengthen the run: Siegmund's correction is h + 0.583·2·√(info per step)).
    rng = np.random.default_rng(5)
    h, step_info, paths = 3.0, 0.01, 2000
    lam = math.sqrt(step_info)
    s = np.zeros(paths)
    alarm_at = np.full(paths, -1)
    t = 0
    while (alarm_at < 0).any() and t < 200_000:
        t += 1
        s = np.maximum(0.0, s + lam * rng.standard_normal(paths) - lam * lam / 2)
        crossed = (s >= h) & (alarm_at < 0)
        alarm_at[crossed] = t
        s[crossed] = -np.inf  # retire
    simulated = float(alarm_at.mean()) * step_info
    assert arl0_information(h) <= simulated <= arl0_information(h + 2 * 0.583 * lam) * 1.1


def test_drift_is_the_kl_information_at_the_design_shift() -> None:
    n, p, d = 30.0, 0.45, 0.15
    variance = n * p * (1 - p)
    assert drift_per_day(n, variance, d, d, 0.0) == pytest.approx(n * d * d / (2 * p * (1 - p)))
    assert drift_per_day(n, variance, d, 0.0, 0.0) < 0  # no shift: the statistic drifts down
