"""The trend agent: feeds closed hourly windows from the ClickHouse aggregates to the detectors.

On each tick it evaluates every hour that has closed (plus a grace period for late events) since
the last one it evaluated, in order, for each watched metric; upserts the flags the detectors
return into `trend_flags`; saves each detector's state; and hands the flags to the alert router.
Only one worker runs it: the one that owns partition 0 of the canvass topic in the ingest group
(a rebalance moves it, and the new owner resumes from the saved state).

Events arriving after an hour was evaluated still count in the aggregates, but not in that hour's
evaluation: `trends.grace_s` sets how long an hour stays open for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from config.geography import Geography
from models.trends import (
    EventCounts,
    Hierarchy,
    MetricSpec,
    RateCounts,
    TrendDetector,
    TrendFlag,
    WindowSpan,
    contact_rate_spec,
    email_click_spec,
    signup_spec,
    support_rate_spec,
    unsubscribe_spec,
)
from sinks.clickhouse.trends import PrecinctWindow, TrendStore

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
# At most this many hours per tick, so a long backlog (first start on a full warehouse) does not
# hold the event loop's read thread for minutes; the next tick carries on.
MAX_HOURS_PER_TICK = 24


@dataclass(frozen=True)
class WatchedMetric:
    spec: MetricSpec
    numerator: str
    denominator: str | None  # None: a count


def watched_metrics() -> tuple[WatchedMetric, ...]:
    """What the agent watches, from the per-precinct hourly aggregates."""
    return (
        WatchedMetric(support_rate_spec(), "supporters", "ids"),
        WatchedMetric(contact_rate_spec(), "contacts", "attempts"),
        WatchedMetric(email_click_spec(), "email_unique_clicks", "email_delivered"),
        WatchedMetric(unsubscribe_spec(), "email_unsubscribes", "email_delivered"),
        WatchedMetric(signup_spec("all"), "signups", None),
    )


def hierarchy_of(geography: Geography) -> Hierarchy:
    # County ids are made unique campaign-wide (two states may share a county name).
    return Hierarchy.from_rows(
        (p.precinct_id, f"{p.state}/{p.county}", p.region) for p in sorted(geography.precincts.values(),
                                                                            key=lambda p: p.precinct_id)
    )  # fmt: skip


def window_inputs(
    hierarchy: Hierarchy, rows: Sequence[PrecinctWindow], metric: WatchedMetric
) -> RateCounts | EventCounts:
    """Columns in the hierarchy's precinct order; precincts without activity are zeros."""
    index = {p: i for i, p in enumerate(hierarchy.precinct_ids)}
    numerator = np.zeros(hierarchy.n_precincts)
    denominator = np.zeros(hierarchy.n_precincts)
    for row in rows:
        i = index.get(row.precinct_id)
        if i is None:  # e.g. "unassigned" signups: not a precinct of the geography
            continue
        numerator[i] = row.values[metric.numerator]
        if metric.denominator is not None:
            denominator[i] = row.values[metric.denominator]
    if metric.denominator is None:
        return EventCounts(numerator)
    # Unique clicks can exceed a window's deliveries (the send was in an earlier hour): cap, do not fail.
    return RateCounts(np.minimum(numerator, denominator), denominator)


FlagSink = Callable[[list[TrendFlag]], Awaitable[None]]
T = TypeVar("T")


class StoreRunner(Protocol):
    """Runs a blocking function with a TrendStore on a thread that owns a ClickHouse client."""

    def __call__(self, fn: Callable[[TrendStore], T], /) -> Awaitable[T]: ...


class TrendAgent:
    def __init__(
        self,
        geography: Geography,
        timezone: str,
        grace: timedelta,
        run: StoreRunner,
        on_flags: FlagSink | None = None,
        metrics: Sequence[WatchedMetric] | None = None,
    ) -> None:
        self._hierarchy = hierarchy_of(geography)
        self._zone = ZoneInfo(timezone)
        self._grace = grace
        self._run = run
        self._on_flags = on_flags
        self._metrics = tuple(metrics or watched_metrics())
        self._detectors: dict[str, TrendDetector] = {}
        self._next_hour: datetime | None = None
        self.windows_evaluated = 0

    async def _load(self) -> None:
        """Restore every detector; the agent resumes at the oldest hour any of them still needs."""
        resume: list[datetime] = []
        for metric in self._metrics:
            saved = await self._load_state(metric.spec.name)
            if saved is None:
                self._detectors[metric.spec.name] = TrendDetector(self._hierarchy, metric.spec)
                continue
            last_end, state = saved
            self._detectors[metric.spec.name] = TrendDetector.from_state(self._hierarchy, metric.spec, state)
            resume.append(last_end)
        if len(resume) == len(self._metrics):
            self._next_hour = min(resume)
        else:
            self._next_hour = await self._run(lambda store: store.first_hour())

    async def tick(self, now: datetime | None = None) -> list[TrendFlag]:
        """Evaluate the hours closed since the last tick; returns the flags raised, updated or closed."""
        if not self._detectors:
            await self._load()
        if self._next_hour is None:
            self._next_hour = await self._run(lambda store: store.first_hour())
            if self._next_hour is None:
                return []  # no data yet
        now = now or datetime.now(UTC)
        flags: list[TrendFlag] = []
        hours = 0
        while self._next_hour + HOUR + self._grace <= now and hours < MAX_HOURS_PER_TICK:
            start = self._next_hour
            flags += await self._evaluate(start, start + HOUR)
            self._next_hour = start + HOUR
            hours += 1
        if hours:
            await self._save_states(self._next_hour)
        if flags and self._on_flags is not None:
            await self._on_flags(flags)
        return flags

    async def _evaluate(self, start: datetime, end: datetime) -> list[TrendFlag]:
        rows = await self._run(lambda store: store.hour(start, end))
        span = WindowSpan(start.astimezone(self._zone), end.astimezone(self._zone))
        # The detectors' numpy work off the event loop (one call at a time: they are not shared).
        flags = await asyncio.to_thread(self._update_all, span, rows)
        await self._run(lambda store: store.save_flags(flags))
        self.windows_evaluated += 1
        return flags

    def _update_all(self, span: WindowSpan, rows: list[PrecinctWindow]) -> list[TrendFlag]:
        flags: list[TrendFlag] = []
        for metric in self._metrics:
            detector = self._detectors[metric.spec.name]
            flags += detector.update(span, window_inputs(self._hierarchy, rows, metric))
        return flags

    async def _save_states(self, evaluated_until: datetime) -> None:
        """Once per tick: a crash before it replays the tick's hours, whose flags upsert on the same ids."""
        for metric in self._metrics:
            state = self._detectors[metric.spec.name].to_state()
            await self._save_state(metric.spec.name, evaluated_until, state)

    async def _load_state(self, metric: str) -> tuple[datetime, dict[str, Any]] | None:
        return await self._run(lambda store: store.load_state(metric))

    async def _save_state(self, metric: str, evaluated_until: datetime, state: dict[str, Any]) -> None:
        await self._run(lambda store: store.save_state(metric, evaluated_until, state))
