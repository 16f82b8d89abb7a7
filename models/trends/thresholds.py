"""CUSUM thresholds from a false-alarm budget, and the delays they imply.

Measured in information (τ = Σλ², the design shift's squared z accumulated over windows), the
CUSUM's log-likelihood ratio is close to a Brownian motion with drift -½ and unit variance under
the null and drift +½ under the design shift. For Brownian motion the CUSUM run lengths are known
in closed form (Siegmund 1985, "Sequential Analysis", §2.6; Taylor 1975): with threshold h,

    ARL₀ = 2(eʰ - h - 1)  and  ARL₁ = 2(h - 1 + e⁻ʰ)   information units.

A unit that gathers J units of information a day therefore raises false alarms at about
J / (2(eʰ - h - 1)) a day. Summing over the units that share a threshold and setting the sum to
the budget gives h. Discrete windows overshoot the threshold, which only lowers the false-alarm
rate (the formula is conservative); the bench measures the real rate.
"""

from __future__ import annotations

import math

MIN_THRESHOLD = 2.0  # below this the Brownian approximation is poor and alarms are cheap anyway


def arl0_information(threshold: float) -> float:
    """Mean information between false alarms of a CUSUM with this threshold."""
    return 2.0 * (math.expm1(threshold) - threshold)


def false_alarms_per_day(threshold: float, information_per_day: float) -> float:
    return information_per_day / arl0_information(threshold)


def threshold_for_budget(information_per_day: float, alarms_per_day: float) -> float:
    """The h at which units gathering `information_per_day` in total raise `alarms_per_day` false alarms.

    Solves eʰ - h - 1 = J / (2B) by Newton's method (the left side is convex and increasing for h > 0).
    """
    if alarms_per_day <= 0:
        raise ValueError("the alarm budget must be positive")
    target = information_per_day / (2.0 * alarms_per_day)
    if target <= arl0_information(MIN_THRESHOLD) / 2.0:
        return MIN_THRESHOLD
    h = math.log(target + 1.0) + 1.0  # above the root: Newton then descends monotonically
    for _ in range(60):
        excess = math.expm1(h) - h - target
        step = excess / math.expm1(h)
        h -= step
        if abs(step) < 1e-12:
            break
    return max(h, MIN_THRESHOLD)


def drift_per_day(volume: float, variance: float, design_shift: float, true_shift: float, margin: float) -> float:
    """Expected CUSUM increase per day of data for a unit under a true shift.

    volume and variance are per day, in count units (trials and the null variance of successes);
    shifts and margin are per trial (rate points). With m = volume·design_shift the daily increment
    is (m/v)(volume·(true_shift - margin) - m/2); at true_shift = design_shift and no margin this is
    the Kullback-Leibler information per day, J/2.
    """
    if variance <= 0:
        return 0.0
    m = volume * design_shift
    return (m / variance) * (volume * (true_shift - margin) - 0.5 * m)


def theoretical_delay_days(threshold: float, drift: float) -> float:
    """Threshold ÷ information per day (Lorden's first-order delay); inf if the drift is not positive."""
    return threshold / drift if drift > 0 else math.inf
