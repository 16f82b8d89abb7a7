"""The trend agent: feeds closed hourly windows from ClickHouse to the detectors.

On each tick it evaluates every hour that has closed (plus a grace period for late events) since
the last one it evaluated, in order, for each watched metric; upserts the flags the detectors
return into `trend_flags`; saves each detector's state; and hands the flags to the alert router.
Only one worker runs it: the one that owns partition 0 of the canvass topic in the ingest group
(a rebalance moves it, and the new owner resumes from the saved state).

What it watches:
- support, each ID once: on the champion model's residual when the ID was scored (observed
  supporters minus Σp over the voters actually IDed, so a change in who was contacted is not read
  as opinion moving), on the raw support rate when it was not (no model yet, voter not on file);
- contact rate, email click and unsubscribe rates, all signups, from the hourly aggregates;
- signups per utm_source (models/trends/sources.py: big sources on their own, the rest as "other");
- canvass data quality per canvasser-day, once each local day has closed.

Events arriving after an hour was evaluated still count in the aggregates, but not in that hour's
evaluation: `trends.grace_s` sets how long an hour stays open for them (and for the scoring agent,
which runs on the same worker, to score the hour's IDs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from config.geography import Geography
from models.trends import (
    EventCounts,
    Hierarchy,
    MetricSpec,
    QualitySettings,
    RateCounts,
    TrendDetector,
    TrendFlag,
    WindowSpan,
    contact_rate_spec,
    email_click_spec,
    signup_spec,
    support_rate_spec,
    support_residual_spec,
    unsubscribe_spec,
)
from models.trends.quality import CanvasserDays, QualityFlag, QualityReference, check_canvasser_days
from models.trends.sources import OTHER, SourcePolicy, bucket_of, choose_sources
from models.trends.types import FloatArray
from sinks.clickhouse.trends import CanvasserDayRow, PrecinctWindow, SignupCount, TrendStore

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
# At most this many hours per tick, so a long backlog (first start on a full warehouse) does not
# hold the event loop's read thread for minutes; the next tick carries on.
MAX_HOURS_PER_TICK = 24
SOURCES_STATE = "signup_sources"  # trend_state key of the watched signup sources
QUALITY_REFERENCE_DAYS = 14  # the campaign's usual quick-gap and GPS shares come from these days
DEFAULT_SOURCES = SourcePolicy()
DEFAULT_QUALITY = QualitySettings()


@dataclass(frozen=True)
class WatchedMetric:
    spec: MetricSpec
    numerator: str
    denominator: str | None  # None: a count
    expected: str | None = None  # model residuals: Σp over the trials
    expected_var: str | None = None  # and Σp(1-p)


def watched_metrics() -> tuple[WatchedMetric, ...]:
    """What the agent watches from the per-precinct hourly columns (`hour_columns`)."""
    return (
        WatchedMetric(support_residual_spec(), "scored_supporters", "scored_ids", "score_sum", "score_var"),
        WatchedMetric(support_rate_spec(), "unscored_supporters", "unscored_ids"),
        WatchedMetric(contact_rate_spec(), "contacts", "attempts"),
        WatchedMetric(email_click_spec(), "email_unique_clicks", "email_delivered"),
        WatchedMetric(unsubscribe_spec(), "email_unsubscribes", "email_delivered"),
        WatchedMetric(signup_spec("all"), "signups", None),
    )


SPLIT_COLUMNS = {"scored_supporters", "scored_ids", "score_sum", "score_var", "unscored_supporters", "unscored_ids"}


def hierarchy_of(geography: Geography) -> Hierarchy:
    # County ids are made unique campaign-wide (two states may share a county name).
    return Hierarchy.from_rows(
        (p.precinct_id, f"{p.state}/{p.county}", p.region) for p in sorted(geography.precincts.values(),
                                                                            key=lambda p: p.precinct_id)
    )  # fmt: skip


class Columns(dict[str, FloatArray]):
    """Per-precinct columns of one hour, in the hierarchy's order; a missing column reads as zeros."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def __missing__(self, name: str) -> FloatArray:
        self[name] = column = np.zeros(self.n)
        return column


def hour_columns(
    hierarchy: Hierarchy, rows: Sequence[PrecinctWindow], split: Mapping[str, Mapping[str, float]] | None = None
) -> Columns:
    """The aggregates' columns, and from the support split (TrendStore.support_split) the scored IDs
    (supporters, Σp, Σp(1-p)) and the unscored ones. Precincts outside the geography are dropped."""
    index = {p: i for i, p in enumerate(hierarchy.precinct_ids)}
    columns = Columns(hierarchy.n_precincts)
    for row in rows:
        i = index.get(row.precinct_id)
        if i is None:  # e.g. "unassigned" signups: not a precinct of the geography
            continue
        for name, value in row.values.items():
            columns[name][i] = value
    for precinct, values in (split or {}).items():
        i = index.get(precinct)
        if i is None:
            continue
        columns["scored_ids"][i] = values["scored_ids"]
        columns["scored_supporters"][i] = values["scored_supporters"]
        columns["score_sum"][i] = values["score_sum"]
        columns["score_var"][i] = values["score_var"]
        columns["unscored_ids"][i] = values["ids"] - values["scored_ids"]
        columns["unscored_supporters"][i] = values["supporters"] - values["scored_supporters"]
    return columns


def window_inputs(columns: Columns, metric: WatchedMetric) -> RateCounts | EventCounts:
    numerator = columns[metric.numerator]
    if metric.denominator is None:
        return EventCounts(numerator)
    denominator = columns[metric.denominator]
    # Unique clicks can exceed a window's deliveries (the send was in an earlier hour): cap, do not fail.
    successes = np.minimum(numerator, denominator)
    if metric.expected is None or metric.expected_var is None:
        return RateCounts(successes, denominator)
    # Float32 scores summed: keep Σp within the trials it sums over.
    expected = np.minimum(columns[metric.expected], denominator)
    return RateCounts(successes, denominator, expected, np.minimum(columns[metric.expected_var], 0.25 * denominator))


def signup_columns(
    hierarchy: Hierarchy, counts: Sequence[SignupCount], sources: tuple[str, ...]
) -> dict[str, FloatArray]:
    """Per watched source (and "other"), signups per precinct."""
    index = {p: i for i, p in enumerate(hierarchy.precinct_ids)}
    columns = {name: np.zeros(hierarchy.n_precincts) for name in (*sources, OTHER)}
    for c in counts:
        i = index.get(c.precinct_id)
        if i is not None:
            columns[bucket_of(c.source, sources)][i] += c.count
    return columns


def canvasser_days(rows: Sequence[CanvasserDayRow], day: date) -> CanvasserDays:
    mine = [r for r in rows if r.day == day]

    def column(name: str) -> FloatArray:
        return np.array([float(getattr(r, name)) for r in mine])

    return CanvasserDays(
        tuple(r.canvasser_id for r in mine), day, column("attempts"), column("contacts"), column("door_gaps"),
        column("quick_gaps"), column("gps_checked"), column("gps_exceptions"), tuple(r.team_id for r in mine),
    )  # fmt: skip


def quality_reference(rows: Sequence[CanvasserDayRow]) -> QualityReference:
    gaps, checked = sum(r.door_gaps for r in rows), sum(r.gps_checked for r in rows)
    return QualityReference(
        sum(r.quick_gaps for r in rows) / gaps if gaps else 0.0,
        sum(r.gps_exceptions for r in rows) / checked if checked else 0.0,
    )


FlagSink = Callable[[list[TrendFlag]], Awaitable[None]]
QualitySink = Callable[[list[tuple[QualityFlag, str]]], Awaitable[None]]
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
        signup_sources: SourcePolicy | None = DEFAULT_SOURCES,
        quality: QualitySettings | None = DEFAULT_QUALITY,
        on_quality: QualitySink | None = None,
        source_spec: Callable[[str], MetricSpec] = signup_spec,
    ) -> None:
        """`signup_sources` / `quality`: None turns per-source signups / data-quality checks off;
        `source_spec` makes each watched source's detector spec (tests shorten the warm-up)."""
        self._hierarchy = hierarchy_of(geography)
        self._timezone = timezone
        self._zone = ZoneInfo(timezone)
        self._grace = grace
        self._run = run
        self._on_flags = on_flags
        self._on_quality = on_quality
        self._metrics = tuple(watched_metrics() if metrics is None else metrics)
        self._needs_split = any(
            name in SPLIT_COLUMNS for m in self._metrics for name in (m.numerator, m.denominator) if name
        )
        self._source_policy = signup_sources
        self._source_spec = source_spec
        self._quality = quality
        self._sources: tuple[str, ...] = ()
        self._detectors: dict[str, TrendDetector] = {}
        self._loaded = False
        self._next_hour: datetime | None = None
        self.windows_evaluated = 0
        self.quality_days_checked = 0

    def _source_specs(self) -> list[MetricSpec]:
        if self._source_policy is None:
            return []
        return [self._source_spec(name) for name in (*self._sources, OTHER)]

    async def _load(self) -> None:
        """Restore every detector; the agent resumes at the oldest hour any of them still needs. A
        detector without saved state (a metric added by an upgrade) starts there too, afresh: replaying
        the whole history for it would raise flags on long-past episodes."""
        if self._source_policy is not None:
            saved_sources = await self._load_state(SOURCES_STATE)
            self._sources = tuple(saved_sources[1]["sources"]) if saved_sources else ()
        resume: list[datetime] = []
        for spec in [m.spec for m in self._metrics] + self._source_specs():
            saved = await self._load_state(spec.name)
            if saved is None:
                self._detectors[spec.name] = TrendDetector(self._hierarchy, spec)
                continue
            last_end, state = saved
            self._detectors[spec.name] = TrendDetector.from_state(self._hierarchy, spec, state)
            resume.append(last_end)
        self._next_hour = min(resume) if resume else await self._run(lambda store: store.first_hour())
        if self._source_policy is not None and not self._sources and self._next_hour is not None:
            await self._refresh_sources(self._next_hour)  # e.g. started on a campaign already running

    async def tick(self, now: datetime | None = None) -> list[TrendFlag]:
        """Evaluate the hours closed since the last tick; returns the flags raised, updated or closed."""
        if not self._loaded:
            await self._load()
            self._loaded = True
        if self._next_hour is None:
            self._next_hour = await self._run(lambda store: store.first_hour())
            if self._next_hour is None:
                return []  # no data yet
        now = now or datetime.now(UTC)
        flags: list[TrendFlag] = []
        quality: list[tuple[QualityFlag, str]] = []
        hours = 0
        while self._next_hour + HOUR + self._grace <= now and hours < MAX_HOURS_PER_TICK:
            start = self._next_hour
            end = start + HOUR
            flags += await self._evaluate(start, end)
            self._next_hour = end
            hours += 1
            closed = start.astimezone(self._zone).date()
            if end.astimezone(self._zone).date() != closed:  # a local midnight fell in (start, end]
                quality += await self._check_quality(closed)
                await self._refresh_sources(end)
        if hours:
            await self._save_states(self._next_hour)
        if flags and self._on_flags is not None:
            await self._on_flags(flags)
        if quality and self._on_quality is not None:
            await self._on_quality(quality)
        return flags

    async def _evaluate(self, start: datetime, end: datetime) -> list[TrendFlag]:
        rows = await self._run(lambda store: store.hour(start, end)) if self._metrics else []
        split = await self._run(lambda store: store.support_split(start, end)) if self._needs_split else None
        signups = await self._run(lambda store: store.signups(start, end)) if self._source_policy is not None else []
        span = WindowSpan(start.astimezone(self._zone), end.astimezone(self._zone))
        # The detectors' numpy work off the event loop (one call at a time: they are not shared).
        flags = await asyncio.to_thread(self._update_all, span, hour_columns(self._hierarchy, rows, split), signups)
        await self._run(lambda store: store.save_flags(flags))
        self.windows_evaluated += 1
        return flags

    def _update_all(self, span: WindowSpan, columns: Columns, signups: list[SignupCount]) -> list[TrendFlag]:
        flags: list[TrendFlag] = []
        for metric in self._metrics:
            flags += self._detectors[metric.spec.name].update(span, window_inputs(columns, metric))
        if self._source_policy is not None:
            for source, counts in signup_columns(self._hierarchy, signups, self._sources).items():
                flags += self._detectors[self._source_spec(source).name].update(span, EventCounts(counts))
        return flags

    # --- canvass data quality, once per closed local day ----------------------------------------

    async def _check_quality(self, day: date) -> list[tuple[QualityFlag, str]]:
        if self._quality is None:
            return []
        since = datetime.combine(day - timedelta(days=QUALITY_REFERENCE_DAYS), datetime.min.time(), self._zone)
        until = datetime.combine(day + timedelta(days=1), datetime.min.time(), self._zone)
        rows = await self._run(
            lambda store: store.canvasser_days(since.astimezone(UTC), until.astimezone(UTC), self._timezone)
        )
        today = canvasser_days(rows, day)
        earlier = [r for r in rows if r.day < day]
        reference = quality_reference(earlier or [r for r in rows if r.day == day])
        found = check_canvasser_days(today, reference, self._quality)
        regions = {r.canvasser_id: r.region for r in rows if r.day == day}
        flagged = [(flag, regions[flag.canvasser_id]) for flag in found]
        await self._run(lambda store: store.save_quality_flags(flagged, self._timezone))
        self.quality_days_checked += 1
        log.debug("data quality %s: %d canvasser-days, %d flags", day, len(today.canvasser_ids), len(flagged))
        return flagged

    # --- signup sources -------------------------------------------------------------------------

    async def _refresh_sources(self, until: datetime) -> None:
        """Once a day: sources that grew big enough get detectors of their own, warmed on their history;
        "other" then restarts (its make-up changed), warmed the same way."""
        policy = self._source_policy
        if policy is None or len(self._sources) >= policy.max_sources:
            return
        # Not before the first data: hours before the campaign began would read as hours without signups.
        first = await self._run(lambda store: store.first_hour())
        since = max(until - timedelta(days=policy.window_days), first or until)
        days = (until - since).total_seconds() / 86400.0
        totals = await self._run(lambda store: store.signup_source_totals(since, until))
        chosen = choose_sources(totals, days, self._sources, policy)
        if chosen == self._sources:
            return
        added = [s for s in chosen if s not in self._sources]
        log.info("signups: watching source(s) %s on their own from now on", ", ".join(added))
        self._sources = chosen
        fresh = {name: TrendDetector(self._hierarchy, self._source_spec(name)) for name in (*added, OTHER)}
        counts = await self._run(lambda store: store.signups(since, until))
        await asyncio.to_thread(self._warm, fresh, counts, since, until)
        self._detectors.update({detector.spec.name: detector for detector in fresh.values()})

    def _warm(
        self, fresh: dict[str, TrendDetector], counts: list[SignupCount], since: datetime, until: datetime
    ) -> None:
        by_hour: dict[datetime, list[SignupCount]] = {}
        for c in counts:
            by_hour.setdefault(c.hour, []).append(c)
        hour = since
        while hour < until:
            span = WindowSpan(hour.astimezone(self._zone), (hour + HOUR).astimezone(self._zone))
            columns = signup_columns(self._hierarchy, by_hour.get(hour, []), self._sources)
            for name, detector in fresh.items():
                detector.learn(span, EventCounts(columns[name]))
            hour += HOUR

    # --- state ----------------------------------------------------------------------------------

    async def _save_states(self, evaluated_until: datetime) -> None:
        """Once per tick: a crash before it replays the tick's hours, whose flags upsert on the same ids."""
        for name, detector in self._detectors.items():
            state = detector.to_state()
            await self._save_state(name, evaluated_until, state)
        if self._source_policy is not None:  # with the detectors: a crash loses both, and the replay redoes both
            await self._save_state(SOURCES_STATE, evaluated_until, {"sources": list(self._sources)})

    async def _load_state(self, metric: str) -> tuple[datetime, dict[str, Any]] | None:
        return await self._run(lambda store: store.load_state(metric))

    async def _save_state(self, metric: str, evaluated_until: datetime, state: dict[str, Any]) -> None:
        await self._run(lambda store: store.save_state(metric, evaluated_until, state))
