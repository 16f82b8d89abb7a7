"""Discounted sums that learn from each day only after a guard period.

A day's sums wait in a pending bucket for `guard_days` days, then join the baseline sums, which
decay with a half-life. The guard keeps a fresh shift out of the baseline until the CUSUM has had
time to catch it; the half-life lets the baseline follow slow drift over a campaign.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from models.trends.types import FloatArray


class DayBuckets:
    def __init__(self, shapes: Mapping[str, tuple[int, ...]], half_life_days: float, guard_days: int) -> None:
        self.shapes = dict(shapes)
        self.half_life_days = half_life_days
        self.guard_days = guard_days
        self.mature: dict[str, FloatArray] = {k: np.zeros(s) for k, s in self.shapes.items()}
        self.mature_days = 0.0  # discounted number of days in the baseline
        self.mature_through: int | None = None  # ordinal of the newest day in the baseline
        self.pending: dict[int, dict[str, FloatArray]] = {}

    def add(self, day: int, values: Mapping[str, FloatArray]) -> None:
        if self.mature_through is not None and day <= self.mature_through:
            return  # a window of a day already learnt (a late replay): the baseline does not take it twice
        bucket = self.pending.setdefault(day, {k: np.zeros(s) for k, s in self.shapes.items()})
        for key, value in values.items():
            bucket[key] += value

    def advance(self, today: int) -> bool:
        """Move days at least `guard_days` old into the baseline; True if it changed."""
        due = sorted(d for d in self.pending if d <= today - self.guard_days)
        for day in due:
            if self.mature_through is not None:
                decay = 0.5 ** ((day - self.mature_through) / self.half_life_days)
                for array in self.mature.values():
                    array *= decay
                self.mature_days *= decay
            for key, value in self.pending.pop(day).items():
                self.mature[key] += value
            self.mature_days += 1.0
            self.mature_through = day
        return bool(due)

    def to_state(self) -> dict[str, Any]:
        return {
            "mature": {k: v.tolist() for k, v in self.mature.items()},
            "mature_days": self.mature_days,
            "mature_through": self.mature_through,
            "pending": {str(d): {k: v.tolist() for k, v in b.items()} for d, b in self.pending.items()},
        }

    def load_state(self, state: Mapping[str, Any], remap: Mapping[str, np.ndarray[Any, Any]]) -> None:
        """Restore from `to_state`; `remap[key]` gives, per current row of that array, its saved row or -1."""

        def restore(key: str, saved: list[Any]) -> FloatArray:
            array = np.asarray(saved, dtype=np.float64)
            if key not in remap:
                if array.shape != self.shapes[key]:
                    raise ValueError(f"saved {key} has shape {array.shape}, expected {self.shapes[key]}")
                return array
            index = remap[key]
            result = np.zeros(self.shapes[key])
            known = index >= 0
            result[known] = array[index[known]]
            return result

        self.mature = {k: restore(k, v) for k, v in state["mature"].items()}
        self.mature_days = float(state["mature_days"])
        self.mature_through = None if state["mature_through"] is None else int(state["mature_through"])
        self.pending = {int(d): {k: restore(k, v) for k, v in b.items()} for d, b in state["pending"].items()}
