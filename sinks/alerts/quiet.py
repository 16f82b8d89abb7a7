"""Quiet hours: a daily span in the campaign's time zone when a staff member is not to be woken.

`start` to `end` may wrap midnight (22:00 to 07:00). Whether it is quiet is read off the local clock;
an alert that falls inside is held until the clock next shows `end` ("the morning"), so a
daylight-saving change moves the release with the clock (07:00 is 07:00, EST or EDT).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from pydantic import BaseModel, ConfigDict, model_validator


class QuietHours(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet_hours.start and quiet_hours.end must differ")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local times in the campaign's time zone: give no offset")
        return self

    def until(self, now: datetime, zone: tzinfo) -> datetime | None:
        """When the quiet span containing `now` ends (UTC), or None if `now` is not quiet."""
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        day = local.date()
        if self.start < self.end:
            if not self.start <= clock < self.end:
                return None
        elif clock >= self.start:
            day += timedelta(days=1)
        elif clock >= self.end:
            return None
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)
