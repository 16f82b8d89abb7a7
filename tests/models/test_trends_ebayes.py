"""Empirical-Bayes fits and posteriors, checked against simulation and numerical integration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.trends import ebayes
from models.trends.baseline import seasonal_factors

GRID = np.linspace(1e-6, 1 - 1e-6, 200_001)


def grid_mean_var(log_density: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    """Posterior mean and variance by brute-force integration on a grid."""
    w = np.exp(log_density - log_density.max())
    w /= w.sum()
    mean = float(np.sum(w * grid))
    return mean, float(np.sum(w * (grid - mean) ** 2))


def test_beta_binomial_variance_identity_matches_scipy() -> None:
    # The fit inverts Var(p̂) = μ(1-μ)[rho + (1-rho)/n]; check that identity against scipy's beta-binomial.
    a, b, n = 3.0, 5.0, 40
    mu, rho = a / (a + b), 1 / (a + b + 1)
    assert stats.betabinom(n, a, b).var() / n**2 == pytest.approx(mu * (1 - mu) * (rho + (1 - rho) / n))


def test_beta_binomial_moments_recover_the_prior() -> None:
    rng = np.random.default_rng(7)
    a, b = 12.0, 18.0
    trials = rng.integers(5, 200, 4000).astype(float)
    successes = rng.binomial(trials.astype(int), rng.beta(a, b, trials.size)).astype(float)
    prior = ebayes.fit_beta_binomial(successes, trials)
    assert prior is not None
    assert prior.mean == pytest.approx(a / (a + b), abs=0.005)
    assert prior.alpha + prior.beta == pytest.approx(a + b, rel=0.15)


def test_beta_binomial_without_extra_spread_pools_hard() -> None:
    rng = np.random.default_rng(8)
    trials = np.full(500, 50.0)
    successes = rng.binomial(50, 0.3, 500).astype(float)  # one common rate
    prior = ebayes.fit_beta_binomial(successes, trials)
    assert prior is not None and prior.alpha + prior.beta > 2000


def test_beta_posterior_matches_grid_integration() -> None:
    alpha, beta = np.array([2.5, 40.0]), np.array([7.5, 60.0])
    x, n = np.array([9.0, 3.0]), np.array([12.0, 30.0])
    mean, var = ebayes.beta_posterior(alpha, beta, x, n)
    for i in range(2):
        log_density = (alpha[i] - 1 + x[i]) * np.log(GRID) + (beta[i] - 1 + n[i] - x[i]) * np.log1p(-GRID)
        expected_mean, expected_var = grid_mean_var(log_density, GRID)
        assert mean[i] == pytest.approx(expected_mean, rel=1e-6)
        assert var[i] == pytest.approx(expected_var, rel=1e-4)


def test_gamma_poisson_moments_recover_the_prior() -> None:
    rng = np.random.default_rng(9)
    shape, rate = 4.0, 2.0  # rates per hour: mean 2, sd 1
    exposure = rng.uniform(20, 300, 4000)
    counts = rng.poisson(rng.gamma(shape, 1 / rate, exposure.size) * exposure).astype(float)
    prior = ebayes.fit_gamma_poisson(counts, exposure)
    assert prior is not None
    assert prior.mean == pytest.approx(2.0, rel=0.03)
    assert prior.shape / prior.rate**2 == pytest.approx(1.0, rel=0.1)


def test_gamma_posterior_matches_grid_integration() -> None:
    grid = np.linspace(1e-6, 20, 400_001)
    shape, rate, y, e = 3.0, 1.5, 17.0, 6.0
    mean, var = ebayes.gamma_posterior(np.array([shape]), np.array([rate]), np.array([y]), np.array([e]))
    log_density = (shape - 1) * np.log(grid) - rate * grid + y * np.log(grid * e) - grid * e
    expected_mean, expected_var = grid_mean_var(log_density, grid)
    assert mean[0] == pytest.approx(expected_mean, rel=1e-6)
    assert var[0] == pytest.approx(expected_var, rel=1e-4)


def dersimonian_laird_loop(y: list[float], v: list[float]) -> tuple[float, float]:
    """Textbook DerSimonian-Laird, one unit at a time."""
    w = [1 / vi for vi in v]
    fixed = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    q = sum(wi * (yi - fixed) ** 2 for wi, yi in zip(w, y, strict=True))
    c = sum(w) - sum(wi * wi for wi in w) / sum(w)
    tau2 = max(0.0, (q - (len(y) - 1)) / c)
    wr = [1 / (vi + tau2) for vi in v]
    return sum(wi * yi for wi, yi in zip(wr, y, strict=True)) / sum(wr), tau2


def test_normal_prior_matches_a_plain_loop_and_recovers_tau() -> None:
    rng = np.random.default_rng(10)
    true = rng.normal(0.02, 0.03, 3000)
    v = rng.uniform(0.0005, 0.01, true.size)
    y = true + rng.normal(0, np.sqrt(v))
    prior = ebayes.fit_normal_dl(y, v)
    assert prior is not None
    mean, tau2 = dersimonian_laird_loop(y.tolist(), v.tolist())
    assert prior.mean == pytest.approx(mean, rel=1e-9)
    assert prior.variance == pytest.approx(tau2, rel=1e-9)
    assert np.sqrt(prior.variance) == pytest.approx(0.03, rel=0.1)


def test_normal_posterior_matches_grid_and_handles_edges() -> None:
    grid = np.linspace(-1, 1, 400_001)
    mu, tau2, y, v = 0.01, 0.0009, 0.08, 0.0025
    mean, var = ebayes.normal_posterior(np.array([mu]), np.array([tau2]), np.array([y]), np.array([v]))
    log_density = -((grid - mu) ** 2) / (2 * tau2) - (y - grid) ** 2 / (2 * v)
    expected_mean, expected_var = grid_mean_var(log_density, grid)
    assert mean[0] == pytest.approx(expected_mean, rel=1e-6)
    assert var[0] == pytest.approx(expected_var, rel=1e-4)
    # No data: the prior. No spread between units (tau² = 0): the prior mean, with no variance.
    mean, var = ebayes.normal_posterior(
        np.array([mu, mu]), np.array([tau2, 0.0]), np.array([0.0, y]), np.array([np.inf, v])
    )
    assert mean.tolist() == pytest.approx([mu, mu]) and var.tolist() == pytest.approx([tau2, 0.0])


def test_fits_decline_with_too_few_units() -> None:
    two = np.array([3.0, 4.0])
    assert ebayes.fit_beta_binomial(two, two * 2) is None
    assert ebayes.fit_gamma_poisson(two, two) is None
    assert ebayes.fit_normal_dl(two, two) is None


def test_seasonal_factors_recover_an_hour_of_week_profile() -> None:
    rng = np.random.default_rng(11)
    daily = 1 + 0.8 * np.sin(np.arange(24) * 2 * np.pi / 24)
    weekday = np.array([0.8, 0.8, 0.9, 0.9, 1.0, 1.4, 1.2])
    profile = (weekday[:, None] * daily[None, :]).ravel()  # hour-of-week = weekday x hour-of-day
    weeks = 8
    counts = rng.poisson(np.tile(200 * profile, (weeks, 1))).sum(axis=0).astype(float)
    hours = np.full(168, float(weeks))
    raw = seasonal_factors(counts[None, :], hours, prior_events=0.0)
    assert float(np.mean(raw)) == pytest.approx(1.0)
    assert np.max(np.abs(raw[0] / (profile / profile.mean()) - 1)) < 0.12  # 1,600-event slots: ~2.5% noise
    # An overwhelming prior flattens everything; no prior at the slot level is the raw ratio above.
    flat = seasonal_factors(counts[None, :], hours, prior_events=1e9)
    assert np.max(np.abs(flat[0] - 1)) < 1e-3
    # One week of data, slots with few events: factors stay finite and near the truth's daily shape.
    one_week = rng.poisson(2 * profile).astype(float)
    sparse = seasonal_factors(one_week[None, :], np.ones(168), prior_events=10.0)
    assert np.all(np.isfinite(sparse)) and np.corrcoef(sparse[0], profile)[0, 1] > 0.8
