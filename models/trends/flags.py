"""Trend flags: what moved, where, which way, by how much, against which baseline, how surely.

A flag is raised once per episode and then updated: while it is open, later windows refresh its
figures (and a renewed CUSUM crossing keeps it open) instead of raising another flag. It closes
after a quiet period without crossings, typically once the baseline has learnt the new level.
`flag_id` is stable over an episode, so a store can upsert on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from models.trends.geography import Level
from models.trends.settings import Direction, Kind

Status = Literal["new", "updated", "closed"]


@dataclass(frozen=True, slots=True)
class TrendFlag:
    flag_id: str
    status: Status
    metric: str
    level: Level
    unit_id: str
    region_id: str
    direction: Direction
    effect: float  # rates: observed - baseline (proportion); counts: observed / baseline - 1
    effect_kind: Literal["difference", "ratio"]
    baseline: float  # rates: expected rate over the episode; counts: expected events
    observed: float  # rates: observed rate; counts: observed events
    volume: float  # trials over the episode (counts: expected events)
    z_score: float  # signed in the flag's direction, baseline uncertainty included
    p_value: float  # one-sided, from z_score: a per-test figure, not corrected for the many units watched
    statistic: float  # CUSUM log-likelihood ratio at the last crossing
    threshold: float
    onset: datetime  # estimated start of the change: the start of the CUSUM's excursion
    raised_at: datetime  # end of the window that first crossed the threshold
    window_start: datetime  # the window this record reports
    window_end: datetime
    # The flag_id of the region flag (same metric and direction) this county or precinct flag is
    # grouped under: one movement, one alert (sinks/alerts). Empty when not grouped.
    group_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


@dataclass
class OpenFlag:
    """An episode in progress, keyed by (level, unit, direction) in the detector."""

    flag_id: str
    onset: int  # epoch seconds
    raised_at: int
    last_crossing: int
    observed: float
    expected: float
    variance: float
    volume: float
    baseline_sd: float
    statistic: float
    threshold: float
    group_id: str = ""  # set once the region's flag covers this episode; kept for the episode's life

    def add(self, observed: float, expected: float, variance: float, volume: float, baseline_sd: float) -> None:
        self.observed += observed
        self.expected += expected
        self.variance += variance
        self.volume += volume
        self.baseline_sd += baseline_sd

    def to_state(self) -> dict[str, Any]:
        return asdict(self)


def flag_id(metric: str, level: Level, unit_id: str, direction: Direction, onset: datetime) -> str:
    return f"{metric}|{level}|{unit_id}|{direction}|{onset.isoformat()}"


def make_flag(
    episode: OpenFlag,
    status: Status,
    kind: Kind,
    metric: str,
    level: Level,
    unit_id: str,
    region_id: str,
    direction: Direction,
    window: tuple[int, int],
    zone: tzinfo | None,
) -> TrendFlag:
    sign = 1.0 if direction == "up" else -1.0
    deviation = episode.observed - episode.expected
    spread = math.sqrt(episode.variance + episode.baseline_sd**2)
    z = sign * deviation / spread if spread > 0 else 0.0
    effect_kind: Literal["difference", "ratio"]
    if kind == "count":
        effect = episode.observed / episode.expected - 1.0 if episode.expected > 0 else math.inf
        baseline, observed, effect_kind = episode.expected, episode.observed, "ratio"
    else:
        volume = max(episode.volume, 1e-12)
        effect = deviation / volume
        baseline, observed, effect_kind = episode.expected / volume, episode.observed / volume, "difference"

    def when(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, tz=zone)

    return TrendFlag(
        flag_id=episode.flag_id,
        status=status,
        metric=metric,
        level=level,
        unit_id=unit_id,
        region_id=region_id,
        direction=direction,
        effect=effect,
        effect_kind=effect_kind,
        baseline=baseline,
        observed=observed,
        volume=episode.volume,
        z_score=z,
        p_value=0.5 * math.erfc(z / math.sqrt(2.0)),
        statistic=episode.statistic,
        threshold=episode.threshold,
        onset=when(episode.onset),
        raised_at=when(episode.raised_at),
        window_start=when(window[0]),
        window_end=when(window[1]),
        group_id=episode.group_id,
    )
