"""Backoff and quiet hours against independent computations: the closed form of capped exponential
backoff, and a minute-by-minute walk of the local clock across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from sinks.alerts.backoff import RetryPolicy
from sinks.alerts.quiet import QuietHours

MINUTE = timedelta(minutes=1)


def test_backoff_without_jitter_is_the_capped_exponential() -> None:
    policy = RetryPolicy(initial_backoff_s=3, max_backoff_s=100, multiplier=2.5, jitter=0, max_attempts=8)
    expected = [3.0, 7.5, 18.75, 46.875, 100.0, 100.0, 100.0]
    assert [policy.delay(n, "a") for n in range(1, 8)] == pytest.approx(expected)
    assert policy.total_wait() == pytest.approx(sum(expected))


def test_jitter_stays_in_its_band_spreads_alerts_out_and_repeats_after_a_restart() -> None:
    policy = RetryPolicy(initial_backoff_s=10, max_backoff_s=1000, jitter=0.3)
    for attempt in range(1, 8):
        base = min(1000.0, 10.0 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, f"alert-{i}") for i in range(200)]
        assert all(0.7 * base <= d <= base for d in delays)
        assert len({round(d, 9) for d in delays}) > 150  # spread, not one value for every alert
        assert delays == [RetryPolicy(initial_backoff_s=10, max_backoff_s=1000, jitter=0.3).delay(attempt, f"alert-{i}")
                          for i in range(200)]  # fmt: skip


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff_s=1, max_backoff_s=60, jitter=0)
    assert policy.delay(1, "a", retry_after_s=30) == 30
    assert policy.delay(1, "a", retry_after_s=0.5) == 1  # never sooner than our own backoff
    assert policy.delay(1, "a", retry_after_s=3600) == 60


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_backoff_s"):
        RetryPolicy(initial_backoff_s=10, max_backoff_s=5)
    with pytest.raises(ValueError, match="numbered from 1"):
        RetryPolicy().delay(0, "a")
    assert RetryPolicy(multiplier=10, max_attempts=10_000).delay(10_000, "a") <= RetryPolicy().max_backoff_s


def walk_until(quiet: QuietHours, now: datetime, zone: ZoneInfo) -> datetime | None:
    """Reference: quiet while the local clock is in the span; held until the clock next shows `end`,
    found by stepping a minute at a time (so a repeated autumn hour does not end the night early)."""

    def inside(moment: datetime) -> bool:
        clock = moment.astimezone(zone).time()
        if quiet.start < quiet.end:
            return quiet.start <= clock < quiet.end
        return clock >= quiet.start or clock < quiet.end

    if not inside(now):
        return None
    moment = now + MINUTE
    while moment.astimezone(zone).time() != quiet.end:
        moment += MINUTE
    return moment


@pytest.mark.parametrize(
    ("start", "end", "around"),
    [
        (time(22, 0), time(7, 0), datetime(2026, 3, 6, tzinfo=UTC)),  # New York springs forward on 8 March
        (time(22, 0), time(7, 0), datetime(2026, 10, 30, tzinfo=UTC)),  # and falls back on 1 November
        (time(13, 0), time(14, 30), datetime(2026, 3, 6, tzinfo=UTC)),  # a span within one day
        (time(1, 30), time(6, 0), datetime(2026, 10, 30, tzinfo=UTC)),  # the repeated hour falls inside
    ],
)
def test_quiet_hours_end_where_the_local_clock_says(start: time, end: time, around: datetime) -> None:
    zone = ZoneInfo("America/New_York")
    quiet = QuietHours(start=start, end=end)
    moment = around
    for _ in range(5 * 24 * 60 // 7):  # five days in 7-minute steps, across the change
        assert quiet.until(moment, zone) == walk_until(quiet, moment, zone), moment
        moment += 7 * MINUTE
