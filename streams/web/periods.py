"""The time spans the dashboard shows: a chart's span per window, and the table's period.

Daily windows and periods follow the campaign's time zone (GROUNDSWELL_TIMEZONE); 15-minute and
hourly windows are absolute, as in the aggregates (sinks/clickhouse/schema.py `window_expr`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

# How far back each chart goes: 96 quarter-hours, a week of hours, 90 days.
SERIES_SPANS = {"15m": timedelta(days=1), "1h": timedelta(days=7), "1d": timedelta(days=90)}
PERIODS = ("today", "7d", "all")


@dataclass(frozen=True)
class Span:
    start: datetime | None  # None: from the beginning
    end: datetime | None  # None: up to now and beyond

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """(start, end) of a span that has both."""
        if self.start is None or self.end is None:
            raise ValueError("an open span has no bounds")
        return self.start, self.end

    def json(self) -> dict[str, str | None]:
        return {
            "from": self.start.astimezone(UTC).isoformat() if self.start else None,
            "to": self.end.astimezone(UTC).isoformat() if self.end else None,
        }


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def series_span(window: str, now: datetime, zone: ZoneInfo) -> Span:
    """Whole windows, the last of which contains `now`."""
    utc = now.astimezone(UTC)
    if window == "15m":
        end = utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0) + timedelta(minutes=15)
    elif window == "1h":
        end = utc.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    elif window == "1d":
        today = now.astimezone(zone).date()
        end = local_midnight(today + timedelta(days=1), zone)
        return Span(local_midnight(today - (SERIES_SPANS["1d"] - timedelta(days=1)), zone), end)
    else:
        raise ValueError(f"unknown window {window!r}")
    return Span(end - SERIES_SPANS[window], end)


def period_span(period: str, now: datetime, zone: ZoneInfo, campaign_start: date | None) -> Span:
    today = now.astimezone(zone).date()
    tomorrow = local_midnight(today + timedelta(days=1), zone)
    if period == "today":
        return Span(local_midnight(today, zone), tomorrow)
    if period == "7d":
        return Span(local_midnight(today - timedelta(days=6), zone), tomorrow)
    if period == "all":
        return Span(local_midnight(campaign_start, zone) if campaign_start else None, None)
    raise ValueError(f"unknown period {period!r}; known: {', '.join(PERIODS)}")
