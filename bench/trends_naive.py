"""The naive comparison: a per-precinct daily z-test of the support rate against the precinct's own trailing rate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
TRAILING_DAYS = 28


def daily_z(supporters: FloatArray, ids: FloatArray) -> FloatArray:
    """z per (day, precinct): (x - n·p̄)/√(n·p̄(1-p̄)), p̄ over the previous 28 days; NaN where undefined."""
    days = supporters.shape[0]
    cum_x = np.vstack([np.zeros(supporters.shape[1]), np.cumsum(supporters, axis=0)])
    cum_n = np.vstack([np.zeros(ids.shape[1]), np.cumsum(ids, axis=0)])
    lo = np.maximum(np.arange(days) - TRAILING_DAYS, 0)
    trailing_x = cum_x[np.arange(days)] - cum_x[lo]
    trailing_n = cum_n[np.arange(days)] - cum_n[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = trailing_x / trailing_n
        z = (supporters - ids * rate) / np.sqrt(ids * rate * (1.0 - rate))
    defined = (trailing_n > 0) & (ids > 0) & (rate > 0) & (rate < 1)
    result: FloatArray = np.where(defined, z, np.nan)
    return result


def tuned_threshold(null_z: list[FloatArray], alarms: float) -> float:
    """The |z| cut that gives `alarms` exceedances (both directions) over the null precinct-days."""
    values = np.concatenate([np.abs(z[np.isfinite(z)]) for z in null_z])
    k = max(round(alarms), 1)
    top = np.sort(values)[::-1][: k + 1]
    if top.size <= k:
        return float(top[-1]) if top.size else np.inf
    return float(0.5 * (top[k - 1] + top[k]))
