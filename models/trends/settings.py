"""What each watched metric is, and how sensitive its detector is at each level of the geography.

Design shifts are the change each level is tuned to catch quickest (rates: absolute, in
proportion units; counts: relative, 1.0 = doubling). A level's CUSUM threshold is not set here: it
follows from the alarm budget (models/trends/thresholds.py), so a more sensitive design shift
costs a higher threshold rather than more false alarms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from models.trends.geography import Level

Kind = Literal["rate", "residual", "count"]
Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")


@dataclass(frozen=True)
class LevelSettings:
    design_shift: float
    min_daily_volume: float  # volume gate: trials (counts: expected events) per day for a unit to be watched
    budget_share: float  # share of the metric's alarm budget spent at this level

    def __post_init__(self) -> None:
        if self.design_shift <= 0 or self.min_daily_volume < 0 or not 0 < self.budget_share <= 1:
            raise ValueError(f"invalid level settings {self}")


def _levels(precinct: LevelSettings, county: LevelSettings, region: LevelSettings) -> Mapping[Level, LevelSettings]:
    return MappingProxyType({"precinct": precinct, "county": county, "region": region})


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    levels: Mapping[Level, LevelSettings]
    directions: tuple[Direction, ...] = DIRECTIONS
    # False alarms allowed per region and week for this metric, over all its levels and directions.
    alarms_per_region_week: float = 0.5
    # The null is moved this many posterior sds of the baseline towards the alarm direction, so a
    # baseline that is a little off does not drift the CUSUM into an alarm.
    baseline_margin: float = 1.0
    half_life_days: float = 28.0  # baseline memory
    guard_days: int = 7  # a day's data joins the baseline this many days later: a shift is caught before it is learnt
    min_baseline_days: float = 7.0
    quiet_hours_to_close: float = 72.0  # an open flag closes after this long without a new crossing
    dispersion: float = 1.0  # variance multiplier over binomial/Poisson
    seasonal_prior_events: float = 10.0  # hour-of-week factors: shrinkage worth this many expected events
    min_group_units: int = 20  # fewer precincts in a county: its precincts borrow strength region-wide

    def __post_init__(self) -> None:
        if set(self.levels) != {"precinct", "county", "region"}:
            raise ValueError("settings are needed for precinct, county and region")
        if abs(sum(s.budget_share for s in self.levels.values()) - 1.0) > 1e-9:
            raise ValueError("budget shares must sum to 1")
        if not self.directions or len(set(self.directions)) != len(self.directions):
            raise ValueError("directions must be a non-empty subset of ('up', 'down')")
        if self.alarms_per_region_week <= 0 or self.half_life_days <= 0 or self.guard_days < 0:
            raise ValueError("budget and half-life must be positive, guard non-negative")


@dataclass(frozen=True)
class QualitySettings:
    """Canvasser-day data-quality checks (DOMAIN.md: implausible below 5% or above 60% contacts)."""

    contact_rate_low: float = 0.05
    contact_rate_high: float = 0.60
    quick_gap_multiple: float = 2.0  # doors minutes apart: flag above this multiple of the campaign's share
    gps_exception_multiple: float = 2.0
    alarms_per_day: float = 0.05  # false alarms allowed per day over all canvasser-days and checks
    min_attempts: int = 10
    checks: tuple[str, ...] = field(
        default=("contact_rate_low", "contact_rate_high", "doors_minutes_apart", "gps_exceptions")
    )


def support_residual_spec() -> MetricSpec:
    """Support shifts judged on observed - model-expected supporters among the voters IDed."""
    return MetricSpec(
        "support_residual",
        "residual",
        _levels(LevelSettings(0.15, 5.0, 0.4), LevelSettings(0.08, 20.0, 0.3), LevelSettings(0.04, 20.0, 0.3)),
    )


def support_rate_spec() -> MetricSpec:
    """Raw support rate (supporters / IDs): for campaigns without a model; reacts to who was contacted."""
    return MetricSpec(
        "support_rate",
        "rate",
        _levels(LevelSettings(0.15, 5.0, 0.4), LevelSettings(0.08, 20.0, 0.3), LevelSettings(0.04, 20.0, 0.3)),
    )


def contact_rate_spec() -> MetricSpec:
    """Contacts / attempts (typically 10-30%)."""
    return MetricSpec(
        "contact_rate",
        "rate",
        _levels(LevelSettings(0.08, 20.0, 0.4), LevelSettings(0.04, 50.0, 0.3), LevelSettings(0.02, 50.0, 0.3)),
    )


def email_click_spec() -> MetricSpec:
    """Unique clicks / delivered (about 2% typical): shifts are small in points, so designs are too."""
    return MetricSpec(
        "email_click_rate",
        "rate",
        _levels(LevelSettings(0.02, 100.0, 0.4), LevelSettings(0.01, 300.0, 0.3), LevelSettings(0.005, 300.0, 0.3)),
    )


def unsubscribe_spec() -> MetricSpec:
    """Unsubscribes / delivered: only a rise matters."""
    return MetricSpec(
        "email_unsubscribe_rate",
        "rate",
        _levels(LevelSettings(0.01, 100.0, 0.4), LevelSettings(0.004, 300.0, 0.3), LevelSettings(0.002, 300.0, 0.3)),
        directions=("up",),
    )


def signup_spec(source: str) -> MetricSpec:
    """Signups from one source (a count; surges and droughts both matter)."""
    return MetricSpec(
        f"signups:{source}",
        "count",
        _levels(LevelSettings(1.0, 5.0, 0.4), LevelSettings(0.5, 10.0, 0.3), LevelSettings(0.3, 10.0, 0.3)),
    )
