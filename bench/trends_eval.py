"""Scoring for the trend benchmark: which flags caught which injected shift, how fast, and what was false."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.trends_sim import Shift
from models.trends.geography import Hierarchy, Level

HOUR = 3600.0
DAY_HOURS = 24.0


@dataclass(frozen=True)
class Raised:
    """A new flag, in campaign hours (raised at the end of its window)."""

    level: Level
    unit: int
    direction: int  # +1 up, -1 down
    hour: float


@dataclass(frozen=True)
class Detection:
    shift: Shift
    delay_days: float  # inf when missed
    delay_days_at_level: float  # counting only flags on the shifted unit or a unit containing it


def members(hierarchy: Hierarchy, level: Level, unit: int) -> frozenset[int]:
    return frozenset(hierarchy.members(level, unit).tolist())


class Matcher:
    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        self._members: dict[tuple[Level, int], frozenset[int]] = {}

    def units(self, level: Level, unit: int) -> frozenset[int]:
        key = (level, unit)
        if key not in self._members:
            self._members[key] = members(self.hierarchy, level, unit)
        return self._members[key]

    def relation(self, flag: Raised, shift: Shift) -> str:
        """'contains' (flag unit ⊇ shifted area), 'inside', or 'apart'."""
        area = frozenset(shift.precincts.tolist())
        flagged = self.units(flag.level, flag.unit)
        if area <= flagged:
            return "contains"
        return "inside" if flagged <= area else "apart"

    def detect(self, shift: Shift, flags: Sequence[Raised]) -> Detection:
        sign = 1 if shift.size > 0 else -1
        first = first_at_level = math.inf
        for flag in flags:
            if flag.direction != sign or flag.hour <= shift.onset_hour:
                continue
            relation = self.relation(flag, shift)
            if relation == "apart":
                continue
            delay = (flag.hour - shift.onset_hour) / DAY_HOURS
            first = min(first, delay)
            if relation == "contains":
                first_at_level = min(first_at_level, delay)
        return Detection(shift, first, first_at_level)

    def is_true(self, flag: Raised, shifts: Sequence[Shift]) -> bool:
        """A flag explained by an opinion shift: right direction, after onset, overlapping geography."""
        return any(
            s.kind != "mix"
            and flag.hour > s.onset_hour
            and flag.direction == (1 if s.size > 0 else -1)
            and self.relation(flag, s) != "apart"
            for s in shifts
        )


def delay_summary(delays: Sequence[float]) -> tuple[float, float, float]:
    """(detection rate, median, p90) with misses counted as infinitely late."""
    if not delays:
        return math.nan, math.nan, math.nan
    values = np.sort(np.asarray(delays, dtype=np.float64))
    rate = float(np.mean(np.isfinite(values)))
    # Order statistics, not interpolation: with misses at inf an interpolated quantile would be inf or nan.
    median = float(values[math.ceil(0.5 * len(values)) - 1])
    p90 = float(values[math.ceil(0.9 * len(values)) - 1])
    return rate, median, p90
