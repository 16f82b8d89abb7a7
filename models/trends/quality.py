"""Canvass data-quality checks, one canvasser-day at a time.

Input: counts per canvasser-day (attempts, contacts, timed gaps between consecutive doors and how
many were under two minutes, GPS fixes and how many were > 100 m from the address). Each check is
an exact one-sided binomial test that the canvasser's true rate lies beyond a limit:

- contact_rate_high / contact_rate_low: contacts/attempts beyond DOMAIN.md's 60% / 5%;
- doors_minutes_apart: quick gaps above `quick_gap_multiple` x the campaign's usual share;
- gps_exceptions: exceptions above `gps_exception_multiple` x the campaign's usual share.

A count that merely looks odd on a handful of doors is not flagged: the test needs evidence. The
tests of one day share a false-alarm budget (Bonferroni: each is run at alarms_per_day / tests), so
thousands of canvasser-days raise about `alarms_per_day` false flags a day at most. Flag ids are
stable per canvasser, day and check, so re-evaluating a day updates rather than repeats a flag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from models.trends.settings import QualitySettings
from models.trends.types import FloatArray

MIN_SHARE_LIMIT = 0.02  # a campaign with no quick gaps at all still tolerates a few


@dataclass(frozen=True)
class CanvasserDays:
    canvasser_ids: tuple[str, ...]
    day: date
    attempts: FloatArray
    contacts: FloatArray
    door_gaps: FloatArray  # consecutive walk doors with a measured time gap
    quick_gaps: FloatArray  # of those, gaps under two minutes
    gps_checked: FloatArray  # knocks with a GPS fix and a known address
    gps_exceptions: FloatArray  # of those, fixes more than 100 m from the address
    team_ids: tuple[str, ...] = ()  # per canvasser (their team that day); empty: unknown

    def __post_init__(self) -> None:
        n = len(self.canvasser_ids)
        if self.team_ids and len(self.team_ids) != n:
            raise ValueError("team_ids needs one value per canvasser")
        pairs = (
            (self.contacts, self.attempts),
            (self.quick_gaps, self.door_gaps),
            (self.gps_exceptions, self.gps_checked),
        )
        for part, whole in pairs:
            if part.shape != (n,) or whole.shape != (n,):
                raise ValueError("every column needs one value per canvasser")
            if np.any(part < 0) or np.any(part > whole):
                raise ValueError("counts must be non-negative and within their totals")


@dataclass(frozen=True)
class QualityReference:
    """The campaign's usual shares, e.g. pooled over all canvassers in the last two weeks."""

    quick_gap_share: float
    gps_exception_share: float

    @classmethod
    def pooled(cls, days: Sequence[CanvasserDays]) -> QualityReference:
        gaps = sum(float(d.door_gaps.sum()) for d in days)
        checked = sum(float(d.gps_checked.sum()) for d in days)
        quick = sum(float(d.quick_gaps.sum()) for d in days)
        exceptions = sum(float(d.gps_exceptions.sum()) for d in days)
        return cls(quick / gaps if gaps else 0.0, exceptions / checked if checked else 0.0)


@dataclass(frozen=True, slots=True)
class QualityFlag:
    flag_id: str
    canvasser_id: str
    day: date
    check: str
    observed: float  # the canvasser-day's share
    limit: float  # the share the test says the true rate is beyond
    count: int
    total: int
    p_value: float
    p_value_limit: float  # the Bonferroni level the p-value beat
    team_id: str = ""


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X >= k) if upper else P(X <= k), for X ~ Binomial(n, p); exact."""
    ks = range(k, n + 1) if upper else range(0, k + 1)
    logs = [_log_pmf(i, n, p) for i in ks]
    top = max(logs, default=-math.inf)
    if top == -math.inf:
        return 0.0
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def check_canvasser_days(
    data: CanvasserDays, reference: QualityReference, settings: QualitySettings | None = None
) -> list[QualityFlag]:
    s = settings or QualitySettings()
    quick_limit = min(1.0, max(MIN_SHARE_LIMIT, s.quick_gap_multiple * reference.quick_gap_share))
    gps_limit = min(1.0, max(MIN_SHARE_LIMIT, s.gps_exception_multiple * reference.gps_exception_share))
    checks = {
        "contact_rate_high": (data.contacts, data.attempts, s.contact_rate_high, True),
        "contact_rate_low": (data.contacts, data.attempts, s.contact_rate_low, False),
        "doors_minutes_apart": (data.quick_gaps, data.door_gaps, quick_limit, True),
        "gps_exceptions": (data.gps_exceptions, data.gps_checked, gps_limit, True),
    }
    tests: list[tuple[str, int, int, int, float, bool]] = []
    for name in s.checks:
        counts, totals, limit, upper = checks[name]
        for i in np.flatnonzero(totals >= s.min_attempts).tolist():
            tests.append((name, i, int(counts[i]), int(totals[i]), limit, upper))
    if not tests:
        return []
    level = s.alarms_per_day / len(tests)
    flags: list[QualityFlag] = []
    for name, i, count, total, limit, upper in tests:
        if (count / total <= limit) if upper else (count / total >= limit):
            continue  # on the right side of the limit: nothing to test
        p = binomial_tail(count, total, limit, upper)
        if p <= level:
            canvasser = data.canvasser_ids[i]
            flag_id = f"quality|{name}|{canvasser}|{data.day.isoformat()}"
            team = data.team_ids[i] if data.team_ids else ""
            flags.append(
                QualityFlag(flag_id, canvasser, data.day, name, count / total, limit, count, total, p, level, team)
            )
    return flags
