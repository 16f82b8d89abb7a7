"""One-sided CUSUM on standardised deviations, vectorised over units, with the run kept for an onset.

For a window with deviation d = observed - expected (count units, signed for the direction),
null variance v and the design shift m (count units: trials x shift for rates), the standardised
deviation is z = d/√v and the shift in the same units λ = m/√v. The increment λz - λ²/2 is the
Gaussian log-likelihood ratio of "shifted by m" against "no shift", so
S ← max(0, S + λz - λ²/2) is Page's CUSUM (Page 1954, Biometrika 41) with volume weighting built
in: a window with few trials carries little information and moves S little. The onset estimate is
the start of the current excursion of S above zero (the maximum-likelihood change point for a
CUSUM; Page 1954, Basseville & Nikiforov 1993 §2.2).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from models.trends.types import BoolArray, FloatArray, IntArray

NO_RUN = -1
ZERO = 1e-9  # a statistic this close to zero is zero: rounding must not keep a finished run alive


def llr_increment(z: FloatArray, lam: FloatArray) -> FloatArray:
    """λz - λ²/2, the log-likelihood ratio of one window."""
    result: FloatArray = lam * z - 0.5 * lam * lam
    return result


def standardise(deviation: FloatArray, variance: FloatArray, shift: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(z, λ); windows without variance (no data) give z = λ = 0, so they leave S unchanged."""
    has_data = variance > 0
    scale = np.sqrt(np.where(has_data, variance, 1.0))
    z: FloatArray = np.where(has_data, deviation / scale, 0.0)
    lam: FloatArray = np.where(has_data, shift / scale, 0.0)
    return z, lam


@dataclass
class CusumBank:
    """CUSUM state of every unit of one level in one direction, plus the sums of the current run."""

    statistic: FloatArray
    run_start: IntArray  # epoch seconds of the first window of the run, NO_RUN when S = 0
    run_observed: FloatArray
    run_expected: FloatArray
    run_variance: FloatArray
    run_volume: FloatArray
    run_baseline_sd: FloatArray  # summed, not in quadrature: the same baseline error recurs in every window

    @classmethod
    def empty(cls, n: int) -> CusumBank:
        zeros = np.zeros(n, dtype=np.float64)
        return cls(zeros.copy(), np.full(n, NO_RUN, dtype=np.int64), *(zeros.copy() for _ in range(5)))

    def step(
        self,
        increment: FloatArray,
        window_start: int,
        observed: FloatArray,
        expected: FloatArray,
        variance: FloatArray,
        volume: FloatArray,
        baseline_sd: FloatArray,
        active: BoolArray,
    ) -> None:
        """Advance every unit by one window; inactive (gated) units are held at zero."""
        summed = self.statistic + increment
        new = np.where(active & (summed > ZERO), summed, 0.0)
        starting = (self.statistic <= 0) & (new > 0)
        running = new > 0
        self.run_start = np.where(starting, window_start, np.where(running, self.run_start, NO_RUN))
        for total, value in (
            (self.run_observed, observed),
            (self.run_expected, expected),
            (self.run_variance, variance),
            (self.run_volume, volume),
            (self.run_baseline_sd, baseline_sd),
        ):
            total[:] = np.where(starting, value, np.where(running, total + value, 0.0))
        self.statistic = new

    def reset(self, units: BoolArray) -> None:
        """Restart the units that just raised a flag."""
        self.statistic[units] = 0.0
        self.run_start[units] = NO_RUN
        for total in (self.run_observed, self.run_expected, self.run_variance, self.run_volume, self.run_baseline_sd):
            total[units] = 0.0

    def to_state(self) -> dict[str, list[Any]]:
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}

    @classmethod
    def from_state(cls, state: dict[str, list[Any]], n: int, index: IntArray) -> CusumBank:
        """Rebuild from `to_state`; `index[i]` is the saved position of unit i, or -1 for a new unit."""
        bank = cls.empty(n)
        known = index >= 0
        for f in fields(cls):
            saved = np.asarray(state[f.name], dtype=getattr(bank, f.name).dtype)
            getattr(bank, f.name)[known] = saved[index[known]]
        return bank
