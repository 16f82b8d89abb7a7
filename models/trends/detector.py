"""The trend detector for one metric: baselines, roll-ups, CUSUMs, thresholds and flags, window by window.

Feed it closed windows in time order (`update`); it returns the flags raised, updated or closed by
that window. A window it has already seen (end not after the last one) is ignored, so an agent that
restarts and replays its last window does not double count. `to_state` / `from_state` carry all of
it across restarts as plain JSON-ready data (never pickle).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from models.trends.baseline import CountBaseline, DailyProfile, Expectation, RateBaseline, ResidualBaseline
from models.trends.cusum import CusumBank, llr_increment, standardise
from models.trends.flags import OpenFlag, Status, TrendFlag, flag_id, make_flag
from models.trends.geography import LEVELS, Hierarchy, Level
from models.trends.inputs import EventCounts, RateCounts, WindowSpan
from models.trends.settings import Direction, MetricSpec
from models.trends.thresholds import MIN_THRESHOLD, threshold_for_budget
from models.trends.types import BoolArray, FloatArray, IntArray

STATE_VERSION = 1


@dataclass(frozen=True)
class LevelStatus:
    """What the detector is doing at one level: for dashboards and the benchmark's theoretical delays."""

    threshold: FloatArray  # per unit
    monitored: BoolArray  # baseline ready and volume above the gate
    daily_volume: FloatArray
    daily_variance: FloatArray
    daily_baseline_sd: FloatArray  # count units
    design_shift: float
    margin: float  # baseline sds given to the null


def roll_up(hierarchy: Hierarchy, level: Level, e: Expectation) -> Expectation:
    return Expectation(
        hierarchy.roll_up(e.observed, level),
        hierarchy.roll_up(e.expected, level),
        hierarchy.roll_up(e.variance, level),
        np.sqrt(hierarchy.roll_up(e.baseline_sd**2, level)),
        hierarchy.roll_up(e.volume, level),
    )


class TrendDetector:
    def __init__(self, hierarchy: Hierarchy, spec: MetricSpec) -> None:
        self.hierarchy = hierarchy
        self.spec = spec
        self.baseline: RateBaseline | ResidualBaseline | CountBaseline
        if spec.kind == "rate":
            self.baseline = RateBaseline(hierarchy, spec)
        elif spec.kind == "residual":
            self.baseline = ResidualBaseline(hierarchy, spec)
        else:
            self.baseline = CountBaseline(hierarchy, spec)
        self.banks = {(lv, d): CusumBank.empty(hierarchy.size(lv)) for lv in LEVELS for d in spec.directions}
        self.open: dict[tuple[Level, Direction], dict[int, OpenFlag]] = {key: {} for key in self.banks}
        self.last_window_end: int | None = None
        self.status: dict[Level, LevelStatus] = {}
        self._refresh()

    # --- window by window -------------------------------------------------------------------

    def update(self, span: WindowSpan, data: RateCounts | EventCounts) -> list[TrendFlag]:
        start, end = int(span.start.timestamp()), int(span.end.timestamp())
        if self.last_window_end is not None and end <= self.last_window_end:
            return []
        data = self._validated(data)  # before any state changes: a rejected window leaves no trace
        day = span.day.toordinal()
        if self.baseline.advance(day):
            self._refresh()
        # _validated guarantees the pairing: counts with a count baseline, rates with a rate one.
        if isinstance(self.baseline, CountBaseline):
            assert isinstance(data, EventCounts)
            expectation = self.baseline.expect(span, data)
        else:
            assert isinstance(data, RateCounts)
            expectation = self.baseline.expect(data)
        flags: list[TrendFlag] = []
        for level in LEVELS:
            rolled = roll_up(self.hierarchy, level, expectation)
            for direction in self.spec.directions:
                flags.extend(self._step(level, direction, rolled, (start, end), span))
        self._add_to_baseline(day, span, data)
        self.last_window_end = end
        return self._grouped(flags)

    def learn(self, span: WindowSpan, data: RateCounts | EventCounts) -> None:
        """Add a past window to the baseline only (no CUSUM, no flags): warms up a detector started late,
        e.g. for a signup source that has just become big enough to be watched on its own."""
        end = int(span.end.timestamp())
        if self.last_window_end is not None and end <= self.last_window_end:
            return
        data = self._validated(data)
        day = span.day.toordinal()
        if self.baseline.advance(day):
            self._refresh()
        self._add_to_baseline(day, span, data)
        self.last_window_end = end

    def _add_to_baseline(self, day: int, span: WindowSpan, data: RateCounts | EventCounts) -> None:
        # _validated guarantees the pairing: counts with a count baseline, rates with a rate one.
        if isinstance(self.baseline, CountBaseline):
            assert isinstance(data, EventCounts)
            self.baseline.add(day, span, data)
        else:
            assert isinstance(data, RateCounts)
            self.baseline.add(day, data)

    def _grouped(self, flags: list[TrendFlag]) -> list[TrendFlag]:
        """One movement, one group: while a region's episode is open, its counties' and precincts'
        episodes in the same direction join its group (group_id = the region flag's id) and stay in
        it for the rest of their life, so the alert router can send one alert for the lot."""
        for direction in self.spec.directions:
            parents = self.open[("region", direction)]
            for parent in parents.values():
                parent.group_id = parent.group_id or parent.flag_id
            if not parents:
                continue
            for level in ("county", "precinct"):
                regions = self.hierarchy.region_of(level)
                for unit, episode in self.open[(level, direction)].items():
                    found = parents.get(int(regions[unit]))
                    if found is not None and not episode.group_id:
                        episode.group_id = found.flag_id
        groups = {ep.flag_id: ep.group_id for episodes in self.open.values() for ep in episodes.values()}
        return [
            replace(f, group_id=groups[f.flag_id]) if groups.get(f.flag_id, f.group_id) != f.group_id else f
            for f in flags
        ]

    def _validated(self, data: RateCounts | EventCounts) -> RateCounts | EventCounts:
        n = self.hierarchy.n_precincts
        if isinstance(self.baseline, CountBaseline):
            if not isinstance(data, EventCounts):
                raise TypeError(f"{self.spec.name} is a count metric: pass EventCounts")
            return data.validated(n)
        if not isinstance(data, RateCounts):
            raise TypeError(f"{self.spec.name} is a rate metric: pass RateCounts")
        checked = data.validated(n)
        if isinstance(self.baseline, ResidualBaseline) and checked.expected is None:
            raise ValueError("a residual metric needs the model's expected successes and their variance")
        return checked

    def _step(
        self, level: Level, direction: Direction, e: Expectation, window: tuple[int, int], span: WindowSpan
    ) -> list[TrendFlag]:
        status = self.status[level]
        sign = 1.0 if direction == "up" else -1.0
        # The null is moved `margin` baseline sds towards the alarm: a slightly-off baseline must not drift into alarms.
        deviation = sign * (e.observed - e.expected) - self.spec.baseline_margin * e.baseline_sd
        z, lam = standardise(deviation, e.variance, e.volume * status.design_shift)
        bank = self.banks[(level, direction)]
        bank.step(
            llr_increment(z, lam), window[0], e.observed, e.expected, e.variance, e.volume, e.baseline_sd,
            status.monitored,
        )  # fmt: skip
        alarms = status.monitored & (bank.statistic >= status.threshold)
        episodes = self.open[(level, direction)]
        flags: list[TrendFlag] = []
        ids, regions = self.hierarchy.unit_ids(level), self.hierarchy.region_of(level)

        def emit(unit: int, episode: OpenFlag, state: Status) -> None:
            region_id = self.hierarchy.region_ids[int(regions[unit])]
            flags.append(
                make_flag(
                    episode,
                    state,
                    self.spec.kind,
                    self.spec.name,
                    level,
                    ids[unit],
                    region_id,
                    direction,
                    window,
                    span.start.tzinfo,
                )
            )

        # Open episodes take this window's figures; quiet ones close.
        for unit, episode in list(episodes.items()):
            if alarms[unit]:
                continue
            if window[1] - episode.last_crossing >= self.spec.quiet_hours_to_close * 3600:
                del episodes[unit]
                emit(unit, episode, "closed")
            elif e.volume[unit] > 0:
                episode.add(*(float(a[unit]) for a in (e.observed, e.expected, e.variance, e.volume, e.baseline_sd)))
                emit(unit, episode, "updated")
        for unit in np.flatnonzero(alarms).tolist():
            if unit not in episodes:
                onset = int(bank.run_start[unit])
                episode = OpenFlag(
                    flag_id=flag_id(self.spec.name, level, ids[unit], direction, _at(onset, span)),
                    onset=onset,
                    raised_at=window[1],
                    last_crossing=window[1],
                    observed=float(bank.run_observed[unit]),
                    expected=float(bank.run_expected[unit]),
                    variance=float(bank.run_variance[unit]),
                    volume=float(bank.run_volume[unit]),
                    baseline_sd=float(bank.run_baseline_sd[unit]),
                    statistic=float(bank.statistic[unit]),
                    threshold=float(status.threshold[unit]),
                )
                episodes[unit] = episode
                emit(unit, episode, "new")
            else:
                episode = episodes[unit]
                episode.add(*(float(a[unit]) for a in (e.observed, e.expected, e.variance, e.volume, e.baseline_sd)))
                episode.last_crossing = window[1]
                episode.statistic = float(bank.statistic[unit])
                episode.threshold = float(status.threshold[unit])
                emit(unit, episode, "updated")
        bank.reset(alarms)
        return flags

    # --- thresholds and gating ------------------------------------------------------------------

    def _refresh(self) -> None:
        """Volume gates and budget thresholds from the current baseline (called when it changes)."""
        daily = self.baseline.daily()
        per_day_budget = self.spec.alarms_per_region_week / 7.0
        n_regions = self.hierarchy.size("region")
        for level in LEVELS:
            settings = self.spec.levels[level]
            volume, variance, baseline_sd = self._roll_daily(daily, level)
            monitored = (volume >= max(settings.min_daily_volume, 1e-9)) & (variance > 0) & self.baseline.ready
            with np.errstate(divide="ignore", invalid="ignore"):
                information = np.where(monitored, (volume * settings.design_shift) ** 2 / variance, 0.0)
            regions = self.hierarchy.region_of(level)
            per_region = np.bincount(regions, weights=information, minlength=n_regions)
            budget = per_day_budget * settings.budget_share
            thresholds = np.array(
                [
                    threshold_for_budget(float(j) * len(self.spec.directions), budget) if j > 0 else MIN_THRESHOLD
                    for j in per_region
                ]
            )
            self.status[level] = LevelStatus(
                thresholds[regions], monitored, volume, variance, baseline_sd, settings.design_shift,
                self.spec.baseline_margin,
            )  # fmt: skip

    def _roll_daily(self, daily: DailyProfile, level: Level) -> tuple[FloatArray, FloatArray, FloatArray]:
        return (
            self.hierarchy.roll_up(daily.volume, level),
            self.hierarchy.roll_up(daily.variance, level),
            np.sqrt(self.hierarchy.roll_up(daily.baseline_sd**2, level)),
        )

    # --- persistence ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state; units are saved by id, so a changed geography keeps what still matches."""
        return {
            "version": STATE_VERSION,
            "metric": self.spec.name,
            "kind": self.spec.kind,
            "units": {level: list(self.hierarchy.unit_ids(level)) for level in LEVELS},
            "regions": list(self.hierarchy.region_ids),
            "baseline": self.baseline.to_state(),
            "banks": {f"{lv}:{d}": bank.to_state() for (lv, d), bank in self.banks.items()},
            "open": {
                f"{lv}:{d}": {self.hierarchy.unit_ids(lv)[u]: ep.to_state() for u, ep in episodes.items()}
                for (lv, d), episodes in self.open.items()
            },
            "last_window_end": self.last_window_end,
        }

    @classmethod
    def from_state(cls, hierarchy: Hierarchy, spec: MetricSpec, state: dict[str, Any]) -> TrendDetector:
        if state.get("version") != STATE_VERSION or state.get("metric") != spec.name or state.get("kind") != spec.kind:
            raise ValueError("the saved state is for another metric or format version")
        if list(state["regions"]) != list(hierarchy.region_ids):
            raise ValueError("the regions changed since the state was saved: start the detector afresh")
        detector = cls(hierarchy, spec)
        index = {level: _saved_index(hierarchy.unit_ids(level), state["units"][level]) for level in LEVELS}
        detector.baseline.load_state(state["baseline"], index["precinct"])
        for (level, direction), _ in detector.banks.items():
            key = f"{level}:{direction}"
            if key in state["banks"]:
                detector.banks[(level, direction)] = CusumBank.from_state(
                    state["banks"][key], hierarchy.size(level), index[level]
                )
            positions = {uid: i for i, uid in enumerate(hierarchy.unit_ids(level))}
            detector.open[(level, direction)] = {
                positions[uid]: OpenFlag(**saved)
                for uid, saved in state["open"].get(key, {}).items()
                if uid in positions
            }
        detector.last_window_end = state["last_window_end"]
        detector._refresh()
        return detector


def _saved_index(current: tuple[str, ...], saved: list[str]) -> IntArray:
    position = {uid: i for i, uid in enumerate(saved)}
    return np.array([position.get(uid, -1) for uid in current], dtype=np.int64)


def _at(seconds: int, span: WindowSpan) -> datetime:
    return datetime.fromtimestamp(seconds, tz=span.start.tzinfo)
