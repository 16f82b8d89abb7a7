"""What the router routes: a trend or data-quality flag, with its severity and cleaned identifiers.

A `QualityFlag` names a canvasser, not a place; the caller knows the canvasser's region (from the
day's knocks) and passes it in. Identifiers that come from events (canvasser ids, signup sources in
metric names, hence flag ids) go through the redactor; geography ids do not (see privacy.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.trends.flags import Status, TrendFlag
from models.trends.quality import QualityFlag
from sinks.alerts.privacy import Redactor
from sinks.alerts.severity import Severity, SeverityRules

GEOGRAPHY_LEVELS = ("precinct", "county", "region")
QUALITY_LEVEL = "canvasser"


@dataclass(frozen=True)
class Signal:
    flag_id: str
    source: Literal["trend", "quality"]
    status: Status
    metric: str
    level: str  # precinct, county, region; canvasser for data quality
    unit_id: str
    region: str
    severity: Severity
    flag: TrendFlag | QualityFlag  # the figures, for the alert's content
    # The region flag this county or precinct flag is grouped under (its own id for the region flag
    # itself; empty when ungrouped), and the members an alert about this flag speaks for
    # ("level:unit"), filled in by sinks/alerts/grouping.py.
    group_id: str = ""
    grouped: tuple[str, ...] = ()

    @property
    def is_group_member(self) -> bool:
        return bool(self.group_id) and self.group_id != self.flag_id


def trend_signal(flag: TrendFlag, rules: SeverityRules, redact: Redactor) -> Signal:
    unit = flag.unit_id if flag.level in GEOGRAPHY_LEVELS else redact(flag.unit_id)
    metric = redact(flag.metric)

    def clean(identifier: str) -> str:
        # Flag ids are "metric|level|unit|direction|onset": only the metric part can hold PII, and a long
        # numeric precinct code in the unit part must survive (the dashboard looks the flag up by id).
        if identifier.startswith(flag.metric + "|") and unit == flag.unit_id:
            return metric + identifier[len(flag.metric) :]
        return redact(identifier)

    flag_id = clean(flag.flag_id)
    return Signal(
        flag_id=flag_id,
        source="trend",
        status=flag.status,
        metric=metric,
        level=flag.level,
        unit_id=unit,
        region=flag.region_id,
        severity=rules.trend_severity(flag.metric, flag.level, flag.z_score, flag.effect),
        flag=flag,
        group_id=clean(flag.group_id) if flag.group_id else "",
    )


def quality_signal(flag: QualityFlag, region: str, rules: SeverityRules, redact: Redactor) -> Signal:
    # Re-evaluating a day updates the same flag id; it never closes (a canvasser-day is over).
    return Signal(
        flag_id=redact(flag.flag_id),
        source="quality",
        status="new",
        metric=f"quality:{flag.check}",
        level=QUALITY_LEVEL,
        unit_id=redact(flag.canvasser_id),
        region=region,
        severity=rules.quality,
        flag=flag,
    )
