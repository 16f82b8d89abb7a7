"""The simulator's two clocks: what time an event says it occurred, and when activity happens.

The campaign runs on a simulated timeline (epoch seconds). `ReplayClock` uses that timeline as
event time: a campaign of N days in the past, produced as fast as asked, with canvassing only
in the daytime. `LiveClock` stamps each event with the wall clock at the moment it is generated
(minus the device's lag), so a demo sees events "now" at whatever rate it produces; its
timeline only orders events (an open still follows its send) and keeps canvassing at all hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "America/New_York"
DAY = 86_400.0
FIELD_HOURS = (10.0, 20.0)  # local hours when replayed canvassing happens
END_MARGIN_S = 60.0


class Clock(Protocol):
    @property
    def diurnal(self) -> bool:
        """True: activity follows local time of day (canvass 10:00-20:00); False: all hours."""
        ...

    @property
    def device_lag(self) -> bool:
        """True: `occurred` subtracts the device's lag (so the generator must draw one)."""
        ...

    def begin(self) -> float:
        """Start of the simulated timeline (epoch seconds); called once per run."""
        ...

    def end(self) -> float | None:
        """End of the timeline, or None for an endless run."""
        ...

    def occurred(self, sim_time: float, lag: float) -> float:
        """The event time to print for an event that happens at sim_time, its device lag lag seconds."""
        ...

    def wall(self) -> float:
        """The real time now (for deliberately far-future malformed events)."""
        ...

    def day_starts(self, begin: float) -> tuple[float, date]:
        """The start of the day containing begin, and that day's local date."""
        ...

    def at_local_hour(self, day_start: float, day: date, hour: float) -> float:
        """The timeline instant hour hours into the given day."""
        ...

    def local_hour(self, sim_time: float) -> float: ...


class LiveClock:
    """Event time = the wall clock when the event is generated, minus a small device lag."""

    diurnal = False
    device_lag = True

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now

    def begin(self) -> float:
        return self._now()

    def end(self) -> float | None:
        return None

    def occurred(self, sim_time: float, lag: float) -> float:
        return self._now() - lag

    def wall(self) -> float:
        return self._now()

    def day_starts(self, begin: float) -> tuple[float, date]:
        return begin, datetime.fromtimestamp(begin, UTC).date()

    def at_local_hour(self, day_start: float, day: date, hour: float) -> float:
        return day_start + hour * 3600.0

    def local_hour(self, sim_time: float) -> float:
        return 12.0  # no diurnal pattern: every hour behaves like midday


class ReplayClock:
    """Event time = the simulated time: `days` days from `start`, never past the wall clock."""

    diurnal = True
    device_lag = False  # event time is the simulated time itself

    def __init__(
        self,
        start: datetime,
        days: float,
        timezone: str = DEFAULT_TIMEZONE,
        now: Callable[[], float] = time.time,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("replay start must carry a time zone")
        if days <= 0:
            raise ValueError("replay days must be positive")
        self._tz = ZoneInfo(timezone)
        self._start = start.timestamp()
        self._days = days
        self._now = now

    @classmethod
    def ending_now(
        cls, days: float, timezone: str = DEFAULT_TIMEZONE, now: Callable[[], float] = time.time
    ) -> ReplayClock:
        """A replay of the last `days` days, starting at local midnight."""
        tz = ZoneInfo(timezone)
        first = (datetime.fromtimestamp(now(), tz) - timedelta(days=days)).date()
        return cls(datetime(first.year, first.month, first.day, tzinfo=tz), days, timezone, now)

    def begin(self) -> float:
        return self._start

    def end(self) -> float | None:
        # Clamp to the wall clock, with a margin for events stamped seconds after their handler runs
        # (the next voter at a door, the rest of a send batch): a replay never invents future events.
        return min(self._start + self._days * DAY, self._now() - END_MARGIN_S)

    def occurred(self, sim_time: float, lag: float) -> float:
        return sim_time

    def wall(self) -> float:
        return self._now()

    def day_starts(self, begin: float) -> tuple[float, date]:
        day = datetime.fromtimestamp(begin, self._tz).date()
        return datetime(day.year, day.month, day.day, tzinfo=self._tz).timestamp(), day

    def at_local_hour(self, day_start: float, day: date, hour: float) -> float:
        # Wall-clock arithmetic in the zone, so 10:00 stays 10:00 across a DST change.
        naive = datetime(day.year, day.month, day.day) + timedelta(hours=hour)
        return naive.replace(tzinfo=self._tz).timestamp()

    def local_hour(self, sim_time: float) -> float:
        local = datetime.fromtimestamp(sim_time, self._tz)
        return local.hour + local.minute / 60.0
