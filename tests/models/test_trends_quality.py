"""Canvasser-day data-quality checks: exact binomial tails, evidence before flags, a daily budget."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats

from models.trends.quality import CanvasserDays, QualityReference, binomial_tail, check_canvasser_days
from models.trends.settings import QualitySettings


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.3), (7, 10, 0.3), (55, 80, 0.6), (1, 200, 0.05), (30, 30, 0.99)])
def test_binomial_tails_match_scipy(k: int, n: int, p: float) -> None:
    assert binomial_tail(k, n, p, upper=True) == pytest.approx(stats.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)
    assert binomial_tail(k, n, p, upper=False) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-9, abs=1e-300)


def day_of(rng: np.random.Generator, n: int, contact: np.ndarray, quick: np.ndarray, gps: np.ndarray) -> CanvasserDays:
    attempts = rng.integers(30, 90, n).astype(float)
    gaps = attempts - 1
    checked = attempts.copy()
    return CanvasserDays(
        tuple(f"C{i:04d}" for i in range(n)), date(2026, 10, 3), attempts,
        rng.binomial(attempts.astype(int), contact).astype(float), gaps,
        rng.binomial(gaps.astype(int), quick).astype(float), checked,
        rng.binomial(checked.astype(int), gps).astype(float),
    )  # fmt: skip


def test_flags_match_an_independent_scipy_computation() -> None:
    rng = np.random.default_rng(12)
    n = 400
    contact, quick, gps = np.full(n, 0.2), np.full(n, 0.03), np.full(n, 0.04)
    contact[:3], quick[3:6], gps[6:9] = 0.9, 0.5, 0.4  # three canvassers with each kind of problem
    data = day_of(rng, n, contact, quick, gps)
    reference = QualityReference(0.03, 0.04)
    settings = QualitySettings()
    flags = check_canvasser_days(data, reference, settings)

    level = settings.alarms_per_day / (4 * n)  # every canvasser-day has >= 10 attempts here: 4 tests each
    expected = set()
    for i in range(n):
        cid = data.canvasser_ids[i]
        a, c = int(data.attempts[i]), int(data.contacts[i])
        if stats.binom.sf(c - 1, a, 0.60) <= level:
            expected.add(("contact_rate_high", cid))
        if stats.binom.cdf(c, a, 0.05) <= level:
            expected.add(("contact_rate_low", cid))
        if stats.binom.sf(data.quick_gaps[i] - 1, data.door_gaps[i], 2 * 0.03) <= level:
            expected.add(("doors_minutes_apart", cid))
        if stats.binom.sf(data.gps_exceptions[i] - 1, data.gps_checked[i], 2 * 0.04) <= level:
            expected.add(("gps_exceptions", cid))
    assert {(f.check, f.canvasser_id) for f in flags} == expected
    flagged = {int(f.canvasser_id[1:]) for f in flags}
    assert flagged <= set(range(9)) and {0, 3, 6} & flagged  # honest canvassers untouched; each problem caught
    assert {f.check for f in flags} == {"contact_rate_high", "doors_minutes_apart", "gps_exceptions"}
    assert all(f.p_value <= f.p_value_limit and f.flag_id.endswith("2026-10-03") for f in flags)


def test_null_days_stay_within_the_daily_budget() -> None:
    # Every canvasser exactly at the edge of plausibility: flags are false alarms, ≤ budget per day on average.
    rng = np.random.default_rng(13)
    settings = QualitySettings(alarms_per_day=0.5)
    n, days = 300, 40
    total = 0
    for _ in range(days):
        data = day_of(rng, n, np.full(n, 0.60), np.full(n, 0.06), np.full(n, 0.08))
        total += len(check_canvasser_days(data, QualityReference(0.03, 0.04), settings))
    assert total / days <= settings.alarms_per_day * 1.5  # Bonferroni is conservative; 1.5 leaves room for chance


def test_too_few_attempts_are_not_judged() -> None:
    one = np.array([5.0])
    data = CanvasserDays(("C1",), date(2026, 10, 3), one, one, one - 1, one - 1, one, one)
    assert check_canvasser_days(data, QualityReference(0.0, 0.0)) == []


def test_reference_pools_shares_and_inputs_are_checked() -> None:
    rng = np.random.default_rng(14)
    days = [day_of(rng, 50, np.full(50, 0.2), np.full(50, 0.05), np.full(50, 0.1)) for _ in range(5)]
    reference = QualityReference.pooled(days)
    assert reference.quick_gap_share == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ValueError):
        CanvasserDays(("C1",), date(2026, 10, 3), np.array([3.0]), np.array([4.0]), *(np.zeros(1) for _ in range(4)))
