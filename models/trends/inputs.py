"""Columnar inputs for one closed window: what the trend agent reads from the per-precinct aggregates.

Every array is indexed like `Hierarchy.precinct_ids`; precincts with no activity carry zeros.
Datetimes are zone-aware and in the campaign's time zone, so that `day` and `hour_of_week`
follow the local calendar (canvassing and signups keep local hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from models.trends.types import FloatArray

HOURS_PER_WEEK = 168


@dataclass(frozen=True)
class WindowSpan:
    """A closed window [start, end): whole hours, at most a week, not crossing local midnight unless daily."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window datetimes must be zone-aware")
        seconds = (self.end - self.start).total_seconds()
        if seconds <= 0 or seconds % 3600 or seconds > HOURS_PER_WEEK * 3600:
            raise ValueError(f"a window must last a whole number of hours, at most a week; got {seconds} s")

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds() // 3600)

    @property
    def day(self) -> date:
        """The local day the window belongs to (baselines are bucketed by day)."""
        return self.start.date()

    @property
    def hour_of_week(self) -> int:
        """0 = Monday 00:00 local."""
        return self.start.weekday() * 24 + self.start.hour


def _column(values: FloatArray, name: str, n: int) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}; expected ({n},)")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return array


@dataclass(frozen=True)
class RateCounts:
    """Successes out of trials per precinct (supporters/IDs, contacts/attempts, clicks/delivered, ...).

    For model-residual metrics, `expected` is the sum of the model's predicted probabilities over
    the trials actually made (e.g. the voters actually IDed) and `expected_var` the sum of p(1-p).
    """

    successes: FloatArray
    trials: FloatArray
    expected: FloatArray | None = None
    expected_var: FloatArray | None = None

    def validated(self, n_precincts: int) -> RateCounts:
        successes = _column(self.successes, "successes", n_precincts)
        trials = _column(self.trials, "trials", n_precincts)
        if np.any(successes > trials):
            raise ValueError("successes exceed trials")
        if (self.expected is None) != (self.expected_var is None):
            raise ValueError("expected and expected_var go together")
        expected = expected_var = None
        if self.expected is not None and self.expected_var is not None:
            expected = _column(self.expected, "expected", n_precincts)
            expected_var = _column(self.expected_var, "expected_var", n_precincts)
            slack = 1e-9 * (1.0 + trials)
            if np.any(expected > trials + slack) or np.any(expected_var > 0.25 * trials + slack):
                raise ValueError("expected must be a sum of probabilities over the trials")
        return RateCounts(successes, trials, expected, expected_var)


@dataclass(frozen=True)
class EventCounts:
    """Event counts per precinct (signups from one source, donations, ...)."""

    counts: FloatArray

    def validated(self, n_precincts: int) -> EventCounts:
        return EventCounts(_column(self.counts, "counts", n_precincts))
