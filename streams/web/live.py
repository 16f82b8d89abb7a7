"""What the live stream reports: per region, when data last arrived and whether trend flags moved.

One poller per worker reads the warehouse about once a second while at least one browser listens,
whichever worker inserted the rows: the newest `ingested_at` per region (reading only the parts
written since the last poll) and a mark of each region's trend flags. A region whose marks moved has
new data; `generation` counts such moves, and the response cache keys on it. What a principal is told
is cut to their regions here, before anything is sent (`LiveSnapshot.visible`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from streams.web.queries import DashboardQueries

log = logging.getLogger(__name__)
# Rows are stamped when their insert starts and their part appears when it commits: look back past
# the longest insert, so a slow batch is not missed.
LOOKBACK = timedelta(seconds=30)


@dataclass(frozen=True)
class RegionView:
    """What one principal may be told: only their regions' marks."""

    newest: dict[str, datetime]
    flags: dict[str, tuple[int, datetime]]

    @property
    def as_of(self) -> datetime | None:
        return max(self.newest.values(), default=None)

    def changed_since(self, earlier: RegionView) -> tuple[list[str], bool]:
        """(regions with new data, whether any visible flag changed)."""
        regions = sorted(r for r, t in self.newest.items() if earlier.newest.get(r) != t)
        return regions, self.flags != earlier.flags


@dataclass(frozen=True)
class LiveSnapshot:
    seq: int
    polled_at: datetime
    newest: dict[str, datetime] = field(default_factory=dict)
    flags: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    generation: int = 0

    def visible(self, regions: frozenset[str] | None) -> RegionView:
        if regions is None:
            return RegionView(dict(self.newest), dict(self.flags))
        newest = {r: t for r, t in self.newest.items() if r in regions}
        return RegionView(newest, {r: f for r, f in self.flags.items() if r in regions})


# (newest ingested_at per region, trend-flag mark per region)
Marks = tuple[dict[str, datetime], dict[str, tuple[int, datetime]]]
# Reads the marks of rows ingested at or after the given time (None: of every row).
MarksReader = Callable[[datetime | None], Awaitable[Marks]]


def warehouse_marks(queries: DashboardQueries, since: datetime | None, recent_parts_only: bool) -> Marks:
    return queries.newest_ingested(since, recent_parts_only), queries.flag_marks()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LivePoller:
    def __init__(
        self, read_marks: MarksReader, interval_s: float = 1.0, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._read_marks = read_marks
        self.interval_s = interval_s
        self._clock = clock
        self._snapshot = LiveSnapshot(0, clock())
        self._seeded = False
        self._updated = asyncio.Condition()
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def snapshot(self) -> LiveSnapshot:
        return self._snapshot

    @property
    def generation(self) -> int:
        return self._snapshot.generation

    async def poll(self) -> LiveSnapshot:
        """Read the marks once and publish a new snapshot."""
        started = self._clock()
        # The first poll reads every row once; later ones only what arrived since the previous poll.
        since = None if not self._seeded else self._snapshot.polled_at - LOOKBACK
        newest, flags = await self._read_marks(since)
        self._publish(started, newest, flags)
        return self._snapshot

    def _publish(
        self, polled_at: datetime, newest: Mapping[str, datetime], flags: Mapping[str, tuple[int, datetime]]
    ) -> None:
        old = self._snapshot
        merged = dict(old.newest)
        for region, at in newest.items():
            if region not in merged or at > merged[region]:
                merged[region] = at
        changed = merged != old.newest or dict(flags) != old.flags
        self._snapshot = LiveSnapshot(old.seq + 1, polled_at, merged, dict(flags), old.generation + changed)
        self._seeded = True

    async def wait_after(self, seq: int, timeout_s: float) -> LiveSnapshot:
        """The first snapshot newer than `seq` (or the current one after `timeout_s`)."""
        async with self._updated:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updated.wait_for(lambda: self._snapshot.seq > seq), timeout_s)
            return self._snapshot

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[LivePoller]:
        """Keep the poller running while a stream is open."""
        self._listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        try:
            yield self
        finally:
            self._listeners -= 1

    async def _run(self) -> None:
        while self._listeners > 0 and not self.closed.is_set():
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # tables not migrated yet, a busy warehouse: try again next time
                log.debug("live poll failed: %s", exc)
            async with self._updated:
                self._updated.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), self.interval_s)

    async def close(self) -> None:
        self.closed.set()
        async with self._updated:
            self._updated.notify_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
