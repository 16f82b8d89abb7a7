"""Empirical-Bayes priors fitted across sibling units, and the posteriors they give each unit.

Three conjugate pairs, each fitted by the method of moments across the precincts of one group:

- beta-binomial for rates: Kleinman (1973), "Proportions with extraneous variance", Biometrics 29:
  E[S] = μ(1-μ)[rho(N - Σnᵢ²/N) + (k-1)(1-rho)] with S = Σ nᵢ(p̂ᵢ - p̄)², rho = 1/(alpha+beta+1);
- gamma-Poisson for counts: Var(yᵢ) = eᵢm + eᵢ²v solved for the between-unit variance v of rates;
- normal-normal for model residuals: DerSimonian & Laird (1986), Controlled Clinical Trials 7.

A fit returns None when the group cannot support one (too few units with data); callers fall back
to a wider group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.trends.types import FloatArray

MIN_UNITS = 5  # fewer units than this say too little about the spread between them
MAX_PRIOR_STRENGTH = 1e5  # cap on alpha+beta (or b): no spread between units means "pool fully", not infinity
MIN_RHO = 1.0 / (MAX_PRIOR_STRENGTH + 1.0)


@dataclass(frozen=True)
class BetaPrior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True)
class GammaPrior:
    shape: float  # a
    rate: float  # b: the prior is worth b exposure-hours

    @property
    def mean(self) -> float:
        return self.shape / self.rate


@dataclass(frozen=True)
class NormalPrior:
    mean: float
    variance: float  # τ², the spread of true unit values


def fit_beta_binomial(successes: FloatArray, trials: FloatArray) -> BetaPrior | None:
    """Method-of-moments beta prior from units' (successes, trials); units without trials are ignored."""
    used = trials > 0
    x, n = successes[used], trials[used]
    k = int(n.size)
    if k < MIN_UNITS:
        return None
    total = float(n.sum())
    mu = float(x.sum()) / total
    if not 0.0 < mu < 1.0:
        return None
    spread = float(np.sum(n * (x / n - mu) ** 2))
    denominator = total - float(np.sum(n * n)) / total - (k - 1)
    if denominator <= 0:
        return None
    rho = (spread / (mu * (1.0 - mu)) - (k - 1)) / denominator
    rho = min(max(rho, MIN_RHO), 0.5)
    strength = 1.0 / rho - 1.0
    return BetaPrior(mu * strength, (1.0 - mu) * strength)


def beta_posterior(
    prior_alpha: FloatArray, prior_beta: FloatArray, successes: FloatArray, trials: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and variance of each unit's rate."""
    a = prior_alpha + successes
    b = prior_beta + (trials - successes)
    mean: FloatArray = a / (a + b)
    variance: FloatArray = mean * (1.0 - mean) / (a + b + 1.0)
    return mean, variance


def fit_gamma_poisson(counts: FloatArray, exposure: FloatArray) -> GammaPrior | None:
    """Method-of-moments gamma prior on rates from units' (counts, exposure)."""
    used = exposure > 0
    y, e = counts[used], exposure[used]
    if y.size < MIN_UNITS:
        return None
    m = float(y.sum()) / float(e.sum())
    if m <= 0:
        return None
    between = (float(np.sum((y - e * m) ** 2)) - float(np.sum(e)) * m) / float(np.sum(e * e))
    # No excess spread: pool fully (a prior worth MAX_PRIOR_STRENGTH mean exposures).
    between = max(between, m * m / MAX_PRIOR_STRENGTH)
    return GammaPrior(m * m / between, m / between)


def gamma_posterior(
    prior_shape: FloatArray, prior_rate: FloatArray, counts: FloatArray, exposure: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and variance of each unit's rate per unit of exposure."""
    shape = prior_shape + counts
    rate = prior_rate + exposure
    mean: FloatArray = shape / rate
    variance: FloatArray = shape / (rate * rate)
    return mean, variance


def fit_normal_dl(estimates: FloatArray, variances: FloatArray) -> NormalPrior | None:
    """DerSimonian-Laird prior from unit estimates with known sampling variances (> 0 to be used)."""
    used = variances > 0
    y, v = estimates[used], variances[used]
    k = int(y.size)
    if k < MIN_UNITS:
        return None
    w = 1.0 / v
    fixed_mean = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - fixed_mean) ** 2))
    tau2 = max(0.0, (q - (k - 1)) / (float(np.sum(w)) - float(np.sum(w * w)) / float(np.sum(w))))
    w_random = 1.0 / (v + tau2)
    return NormalPrior(float(np.sum(w_random * y) / np.sum(w_random)), tau2)


def normal_posterior(
    prior_mean: FloatArray, prior_var: FloatArray, estimates: FloatArray, variances: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and variance; a unit without data (variance = inf) gets the prior."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(prior_var > 0, 1.0 / prior_var, np.inf)
        data_precision = np.where(np.isfinite(variances) & (variances > 0), 1.0 / variances, 0.0)
        total = precision + data_precision
        # τ² = 0 (infinite prior precision) means the prior mean, exactly.
        mean = np.where(np.isinf(precision), prior_mean, (precision * prior_mean + data_precision * estimates) / total)
        variance = np.where(np.isinf(total), 0.0, 1.0 / total)
    return mean.astype(np.float64), variance.astype(np.float64)
