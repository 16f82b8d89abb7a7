"""One dashboard view as JSON: a place, its time series, its children's totals over a period, and pace.

A regional principal is refused (403) any place outside their regions; at the state level they get
their own regions' rows and neither the state's series nor its totals, which would include other
regions. Queries run in parallel on the worker's read threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sinks.clickhouse.schema import WINDOWS
from streams.auth import Principal
from streams.web.cache import ResponseCache
from streams.web.goals import RECENT_DAYS, Calendar, Pace, PrecinctIds, deadline, rolled_up_pace
from streams.web.periods import PERIODS, local_midnight, period_span, series_span
from streams.web.places import CHILD_LEVEL, LEVELS, Place, PlaceTree, place_from_keys
from streams.web.queries import SHOWN, DashboardQueries, Scope, group_places

_RATES = {"contact_rate", "support_rate", "email_click_rate", "email_unsubscribe_rate"}
PACE_TTL_S = 10.0


class ViewError(Exception):
    """A refused or impossible view; `status` is the HTTP status, the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ViewRequest:
    level: str | None
    unit: str | None
    window: str
    period: str

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ViewRequest:
        level, unit = query.get("level") or None, query.get("unit") or None
        window, period = query.get("window", "1h"), query.get("period", "today")
        if level is not None and level not in LEVELS:
            raise ViewError(400, f"level must be one of {list(LEVELS)}, got {level!r}")
        if (level is None) != (unit is None) and level != "state":
            raise ViewError(400, "give both level and unit, or neither for your home view")
        if window not in WINDOWS:
            raise ViewError(400, f"window must be one of {list(WINDOWS)}, got {window!r}")
        if period not in PERIODS:
            raise ViewError(400, f"period must be one of {list(PERIODS)}, got {period!r}")
        return cls(level, unit, window, period)


def _empty_figures() -> dict[str, Any]:
    return {name: (None if name in _RATES else 0) for name in SHOWN}


class ViewBuilder:
    def __init__(
        self, tree: PlaceTree, goals: Mapping[str, float], timezone: str, campaign_start: date | None,
        read: Callable[[Callable[[DashboardQueries], Any]], Awaitable[Any]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.tree = tree
        self.goals = dict(goals)
        self.zone = ZoneInfo(timezone)
        self.timezone = timezone
        self.campaign_start = campaign_start
        self._read = read
        self._clock = clock
        # IDs to date per precinct move slowly against goals: re-read at most every PACE_TTL_S.
        self._pace_cache: ResponseCache[tuple[dict[str, PrecinctIds], date | None]] = ResponseCache(PACE_TTL_S)

    def home(self, principal: Principal) -> Place:
        state = Place("state", self.tree.states[0])
        if principal.regions is not None and len(principal.regions) == 1:
            region = next(iter(principal.regions))
            for candidate in self.tree.children(state):
                if candidate.region == region:
                    return candidate
        return state

    def resolve(self, principal: Principal, request: ViewRequest) -> Place:
        if request.level is None:
            return self.home(principal)
        unit = request.unit or self.tree.states[0]
        place = self.tree.find(request.level, unit)
        if place is None:
            raise ViewError(404, f"no {request.level} {unit!r} in the campaign's geography")
        if place.level != "state" and not principal.may_see_region(place.region):
            raise ViewError(403, f"this {place.level} is outside your regions")
        return place

    async def build(self, principal: Principal, request: ViewRequest) -> dict[str, Any]:
        place = self.resolve(principal, request)
        now = self._clock()
        restricted = place.level == "state" and principal.regions is not None
        scope = Scope(place, principal.regions)
        series = series_span(request.window, now, self.zone)
        period = period_span(request.period, now, self.zone, self.campaign_start)
        child_level = CHILD_LEVEL.get(place.level)

        async def no_rows() -> list[dict[str, Any]]:
            return []

        levels = [level for level in (None if restricted else place.level, child_level) if level is not None]

        series_rows, totals, ids = await asyncio.gather(
            no_rows() if restricted else self._read(lambda q: q.series(scope, request.window, *series.bounds)),
            self._read(lambda q: q.totals(scope, levels, period.start, period.end)),
            self._pace_ids(principal.regions, now),
        )
        children_rows = totals.get(child_level, []) if child_level else []
        total_rows = totals.get(place.level, [])
        precinct_ids, first_day = ids
        local_now = now.astimezone(self.zone)
        calendar = Calendar(local_now, self.campaign_start or first_day or local_now.date(), self._deadline(now))

        children = self._children(principal, place, child_level, children_rows)
        paces = rolled_up_pace([place, *(c for c, _ in children)], self.tree, self.goals, precinct_ids, calendar)
        total = None
        if not restricted:
            figures = total_rows[0] if total_rows else _empty_figures()
            total = {"figures": {k: figures.get(k) for k in SHOWN}, "pace": _pace_json(paces.get(place))}
        child_rows = [
            {**child.json(), "region": child.region, "assigned": child.assigned, "figures": figures,
             "pace": _pace_json(paces.get(child))}
            for child, figures in children
        ]  # fmt: skip
        goals = {
            "configured": bool(self.goals), "deadline": calendar.deadline.isoformat(),
            "start": calendar.start.isoformat(), "days_left": calendar.days_left, "recent_days": RECENT_DAYS,
        }  # fmt: skip
        # Nothing here may depend on the principal beyond their regions: responses are cached per regions.
        return {
            "place": {**place.json(), "region": place.region or None},
            "home": self.home(principal).json(),
            "crumbs": [p.json() for p in self.tree.crumbs(place)],
            "states": self.tree.states,
            "restricted": restricted,
            "timezone": self.timezone,
            "window": request.window,
            "series_span": series.json(),
            "series": None if restricted else series_rows,
            "period": {"name": request.period, **period.json()},
            "child_level": child_level,
            "children": child_rows,
            "total": total,
            "goals": goals,
            "generated_at": now.astimezone(UTC).isoformat(),
        }

    def _deadline(self, now: datetime) -> date:
        try:
            return deadline(now.astimezone(self.zone).date())
        except ValueError as exc:
            raise ViewError(500, str(exc)) from None

    async def _pace_ids(
        self, regions: frozenset[str] | None, now: datetime
    ) -> tuple[dict[str, PrecinctIds], date | None]:
        today = now.astimezone(self.zone).date()
        found, _ = await self._pace_cache.get(
            (regions, today), lambda: self._read(lambda q: self._precinct_ids(q, regions, now))
        )
        return found

    def _precinct_ids(
        self, q: DashboardQueries, regions: frozenset[str] | None, now: datetime
    ) -> tuple[dict[str, PrecinctIds], date | None]:
        today = now.astimezone(self.zone).date()
        start = local_midnight(self.campaign_start, self.zone) if self.campaign_start else None
        recent_from = local_midnight(today - timedelta(days=RECENT_DAYS), self.zone)
        counts, first = q.precinct_ids(regions, start, recent_from, local_midnight(today, self.zone))
        first_day = first.astimezone(self.zone).date() if first else None
        return {p: PrecinctIds(total, recent) for p, (total, recent) in counts.items()}, first_day

    def _children(
        self, principal: Principal, place: Place, child_level: str | None, rows: list[dict[str, Any]]
    ) -> list[tuple[Place, dict[str, Any]]]:
        """Every child of the place the principal may see (zeros where nothing happened), then buckets of
        events without a precinct."""
        if child_level is None:
            return []
        found = dict(group_places(child_level, rows))
        children = [c for c in self.tree.children(place) if principal.may_see_region(c.region)]
        listed = {c.keys for c in children}
        result = [(c, found.get(c.keys, _empty_figures())) for c in children]
        for keys, figures in found.items():
            if keys not in listed:
                result.append((place_from_keys(child_level, keys), figures))
        return result


def _pace_json(pace: Pace | None) -> dict[str, Any] | None:
    return None if pace is None else dict(pace.json())
