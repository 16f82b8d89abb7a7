"""Pace against goals: per-precinct ID targets from the geography CSV, rolled up, and the pace still needed.

The optional `goal_ids` column of the geography file (settings.geography) is each precinct's target
of total IDs (canvass contacts with a support level) for the campaign. A place's goal is the sum of
its precincts' goals; a place none of whose precincts has a goal has none.

For a place with goal G and I IDs to date, on day `today` of a campaign running from `start` to the
deadline D (election day; days in the campaign's time zone):

    days_left       = D - today                 (whole days; today counts, election day does not)
    needed_per_day  = max(G - I, 0) / days_left (undefined once days_left is 0)
    expected_by_now = G * elapsed / (D - start), elapsed = now - start in days (linear pace), clipped to G
    recent_per_day  = IDs over the 7 complete days before today / 7
    on_pace         = recent_per_day / needed_per_day

The deadline is GROUNDSWELL_ELECTION_DAY (ISO date) when set, else the next US general election day:
the Tuesday after the first Monday in November (2 U.S.C. § 7, https://www.law.cornell.edu/uscode/text/2/7).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from config.geography import Geography, GeographyError
from streams.web.places import Place, PlaceTree

GOAL_COLUMN = "goal_ids"
ELECTION_DAY_ENV = "GROUNDSWELL_ELECTION_DAY"
RECENT_DAYS = 7


class GoalsError(GeographyError):
    """The goal column or the election day is unreadable; the message names the line or the setting."""


def load_goals(path: Path, geography: Geography) -> dict[str, float]:
    """Precinct → goal from the geography CSV; empty when the file has no goal column."""
    with path.open(newline="", encoding="utf-8") as handle:
        return parse_goals(csv.DictReader(handle), geography, str(path))


def parse_goals(rows: Iterable[Mapping[str, str | None]], geography: Geography, source: str) -> dict[str, float]:
    goals: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        if GOAL_COLUMN not in row:
            return {}
        text = (row.get(GOAL_COLUMN) or "").strip()
        precinct = (row.get("precinct_id") or "").strip()
        if not text:
            continue  # no goal for this precinct
        try:
            goal = float(text)
        except ValueError:
            raise GoalsError(f"{source} line {line}: {GOAL_COLUMN} must be a number, got {text!r}") from None
        if not math.isfinite(goal) or goal < 0:
            raise GoalsError(f"{source} line {line}: {GOAL_COLUMN} must be a non-negative number, got {text!r}")
        if precinct in geography.precincts:
            goals[precinct] = goal
    return goals


def us_election_day(year: int) -> date:
    """The Tuesday after the first Monday in November."""
    first = date(year, 11, 1)
    first_monday = first + timedelta(days=(7 - first.weekday()) % 7)
    return first_monday + timedelta(days=1)


def deadline(today: date, configured: str | None = None) -> date:
    """GROUNDSWELL_ELECTION_DAY when set (or `configured`), else the next US general election day."""
    text = configured if configured is not None else os.environ.get(ELECTION_DAY_ENV)
    if text:
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            raise GoalsError(f"{ELECTION_DAY_ENV} must be an ISO date (YYYY-MM-DD), got {text!r}") from None
    upcoming = us_election_day(today.year)
    return upcoming if upcoming >= today else us_election_day(today.year + 1)


@dataclass(frozen=True)
class Pace:
    goal: float
    ids: float
    recent_per_day: float
    days_left: int
    needed_per_day: float | None  # None once the deadline has come
    expected_by_now: float
    on_pace: float | None  # recent pace / needed pace; None when nothing is needed or it cannot be said

    def json(self) -> dict[str, float | int | None]:
        return {
            "goal": self.goal, "ids": self.ids, "share_of_goal": self.ids / self.goal if self.goal else None,
            "recent_per_day": self.recent_per_day, "days_left": self.days_left,
            "needed_per_day": self.needed_per_day, "expected_by_now": self.expected_by_now, "on_pace": self.on_pace,
        }  # fmt: skip


@dataclass(frozen=True)
class Calendar:
    """The days that pace is measured against, in the campaign's time zone."""

    now: datetime
    start: date
    deadline: date

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def days_left(self) -> int:
        return max((self.deadline - self.today).days, 0)

    @property
    def elapsed_share(self) -> float:
        total = (self.deadline - self.start).days
        if total <= 0:
            return 1.0
        midnight = datetime(self.start.year, self.start.month, self.start.day, tzinfo=self.now.tzinfo)
        elapsed = (self.now - midnight).total_seconds() / 86_400
        return min(max(elapsed / total, 0.0), 1.0)


def pace(goal: float, ids: float, recent_ids: float, calendar: Calendar) -> Pace:
    """`recent_ids`: IDs over the RECENT_DAYS complete days before today."""
    remaining = max(goal - ids, 0.0)
    days_left = calendar.days_left
    needed = remaining / days_left if days_left > 0 else None
    recent = recent_ids / RECENT_DAYS
    on_pace = recent / needed if needed else None
    return Pace(goal, ids, recent, days_left, needed, goal * calendar.elapsed_share, on_pace)


@dataclass(frozen=True)
class PrecinctIds:
    ids: float  # IDs to date
    recent: float  # IDs over the RECENT_DAYS complete days before today


def rolled_up_pace(
    places: Iterable[Place], tree: PlaceTree, goals: Mapping[str, float], ids: Mapping[str, PrecinctIds],
    calendar: Calendar,
) -> dict[Place, Pace]:  # fmt: skip
    """Pace of each place that has a goal, from the goals and IDs of its precincts."""
    result: dict[Place, Pace] = {}
    for place in places:
        precincts = [p.precinct for p in tree.precincts(place) if p.precinct in goals]
        if not precincts:
            continue
        goal = sum(goals[p] for p in precincts)
        # IDs count only in precincts with a goal, so a partly-goaled place is measured against itself.
        got = sum(ids[p].ids for p in precincts if p in ids)
        recent = sum(ids[p].recent for p in precincts if p in ids)
        result[place] = pace(goal, got, recent, calendar)
    return result
