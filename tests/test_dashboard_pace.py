"""Pace against goals, the drill-down tree and the dashboard's time spans: pure functions, checked against
calendar facts, closed forms and sums done here by hand."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from config.geography import Geography
from streams.web.goals import (
    Calendar,
    GoalsError,
    PrecinctIds,
    deadline,
    pace,
    parse_goals,
    rolled_up_pace,
    us_election_day,
)
from streams.web.periods import SERIES_SPANS, period_span, series_span
from streams.web.places import Place, PlaceTree


def test_us_election_days_are_the_tuesday_after_the_first_monday_of_november() -> None:
    # Federal general elections held on these dates (a calendar fact, not computed here).
    assert us_election_day(2020) == date(2020, 11, 3)
    assert us_election_day(2024) == date(2024, 11, 5)
    assert us_election_day(2026) == date(2026, 11, 3)
    assert us_election_day(2028) == date(2028, 11, 7)
    # 2027: 1 November is a Monday, so the Tuesday after it is the 2nd (never 1 November itself).
    assert us_election_day(2027) == date(2027, 11, 2)


def test_the_deadline_is_configured_or_the_next_election_day() -> None:
    assert deadline(date(2026, 6, 1), "2026-10-31") == date(2026, 10, 31)
    assert deadline(date(2026, 6, 1), "") == date(2026, 11, 3)
    assert deadline(date(2026, 11, 3), "") == date(2026, 11, 3)  # election day itself
    assert deadline(date(2026, 11, 4), "") == date(2027, 11, 2)
    with pytest.raises(GoalsError, match="GROUNDSWELL_ELECTION_DAY"):
        deadline(date(2026, 6, 1), "next tuesday")


def test_goals_are_read_from_an_optional_column() -> None:
    geography = Geography.from_rows(
        [{"precinct_id": p, "county": "A", "region": "R", "state": "OH"} for p in ("P1", "P2", "P3")]
    )
    rows = [{"precinct_id": "P1", "goal_ids": "120"}, {"precinct_id": "P2", "goal_ids": ""},
            {"precinct_id": "P3", "goal_ids": " 7.5 "}]  # fmt: skip
    assert parse_goals(rows, geography, "geo.csv") == {"P1": 120.0, "P3": 7.5}
    assert parse_goals([{"precinct_id": "P1", "zip5": "43001"}], geography, "geo.csv") == {}
    with pytest.raises(GoalsError, match=r"geo\.csv line 3: goal_ids must be a number"):
        parse_goals([{"precinct_id": "P1", "goal_ids": "5"}, {"precinct_id": "P2", "goal_ids": "lots"}], geography,
                    "geo.csv")  # fmt: skip
    with pytest.raises(GoalsError, match="non-negative"):
        parse_goals([{"precinct_id": "P1", "goal_ids": "-3"}], geography, "geo.csv")


def calendar(now: datetime, start: date, end: date) -> Calendar:
    return Calendar(now, start, end)


def test_pace_meets_the_goal_exactly_when_the_needed_rate_is_kept() -> None:
    zone = ZoneInfo("America/Chicago")
    start, end = date(2026, 9, 1), date(2026, 11, 3)
    now = datetime(2026, 10, 14, 15, 0, tzinfo=zone)
    result = pace(goal=5_000, ids=2_100, recent_ids=350, calendar=calendar(now, start, end))
    days_left = (end - now.date()).days
    assert result.days_left == days_left == 20
    # Keeping the needed rate every remaining day lands exactly on the goal.
    assert result.needed_per_day is not None
    assert 2_100 + result.needed_per_day * days_left == pytest.approx(5_000)
    assert result.recent_per_day == pytest.approx(50.0)
    assert result.on_pace == pytest.approx(50.0 / result.needed_per_day)
    # Linear pace: nothing expected at the start, the whole goal at the deadline, half of it halfway.
    midnight = datetime(2026, 9, 1, tzinfo=zone)
    total = (end - start).days
    for fraction in (0.0, 0.25, 0.5, 1.0):
        at = midnight + timedelta(days=total * fraction)
        assert pace(5_000, 0, 0, calendar(at, start, end)).expected_by_now == pytest.approx(5_000 * fraction)


def test_pace_once_the_goal_is_met_or_the_deadline_has_passed() -> None:
    zone = ZoneInfo("UTC")
    start, end = date(2026, 9, 1), date(2026, 11, 3)
    met = pace(100, 130, 70, calendar(datetime(2026, 10, 1, tzinfo=zone), start, end))
    assert met.needed_per_day == 0 and met.on_pace is None
    late = pace(100, 40, 70, calendar(datetime(2026, 11, 5, tzinfo=zone), start, end))
    assert late.days_left == 0 and late.needed_per_day is None and late.expected_by_now == 100
    assert late.json()["share_of_goal"] == pytest.approx(0.4)


def test_goals_and_ids_roll_up_through_the_tree() -> None:
    rng = random.Random(5)
    rows = [{"precinct_id": f"P{i:03d}", "county": f"C{i % 7}", "region": f"R{(i % 7) % 3}", "state": "OH"}
            for i in range(120)]  # fmt: skip
    geography = Geography.from_rows(rows)
    tree = PlaceTree(geography)
    goals = {r["precinct_id"]: float(rng.randrange(10, 200)) for r in rows if rng.random() < 0.8}
    ids = {r["precinct_id"]: PrecinctIds(float(rng.randrange(0, 150)), float(rng.randrange(0, 40))) for r in rows}
    now = datetime(2026, 10, 1, 12, tzinfo=UTC)
    cal = calendar(now, date(2026, 9, 1), date(2026, 11, 3))
    state = Place("state", "OH")
    places = [state, *tree.children(state), *(c for r in tree.children(state) for c in tree.children(r))]
    result = rolled_up_pace(places, tree, goals, ids, cal)
    # Sums straight from the CSV rows: a place counts the goals and IDs of its precincts that have a goal.
    for place in places:
        members = [r["precinct_id"] for r in rows if r["state"] == place.state
                   and (not place.region or r["region"] == place.region)
                   and (not place.county or r["county"] == place.county)]  # fmt: skip
        goaled = [p for p in members if p in goals]
        assert result[place].goal == sum(goals[p] for p in goaled)
        assert result[place].ids == sum(ids[p].ids for p in goaled)
        assert result[place].recent_per_day == pytest.approx(sum(ids[p].recent for p in goaled) / 7)
    no_goal = Place("precinct", "OH", "R0", "C0", "P000")
    assert rolled_up_pace([no_goal], tree, {}, ids, cal) == {}


def test_the_tree_finds_places_by_their_link_ids() -> None:
    geography = Geography.from_rows([
        {"precinct_id": "P1", "county": "Ash", "region": "North", "state": "OH"},
        {"precinct_id": "P2", "county": "Ash", "region": "North", "state": "OH"},
        {"precinct_id": "P3", "county": "Elm", "region": "South", "state": "OH"},
        {"precinct_id": "P4", "county": "Ash", "region": "East", "state": "PA"},
    ])  # fmt: skip
    tree = PlaceTree(geography)
    assert tree.states == ["OH", "PA"]
    ash = tree.find("county", "OH/Ash")
    assert ash == Place("county", "OH", "North", "Ash") and ash.unit == "OH/Ash"
    assert tree.find("county", "Ash") is None  # ambiguous across states
    assert tree.find("county", "Elm") == Place("county", "OH", "South", "Elm")
    assert [p.unit for p in tree.children(ash)] == ["P1", "P2"]
    crumbs = tree.crumbs(Place("precinct", "OH", "North", "Ash", "P2"))
    assert [p.unit for p in crumbs] == ["OH", "North", "OH/Ash", "P2"]
    assert [p.precinct for p in tree.precincts(Place("state", "OH"))] == ["P1", "P2", "P3"]
    assert not Place("precinct", "OH", "North", "Ash", "unassigned").assigned


@pytest.mark.parametrize("zone_name", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_chart_spans_are_whole_windows_ending_with_the_current_one(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    # 2026-11-01 is the end of daylight saving time in New York: the daily span crosses it.
    for now in (datetime(2026, 11, 1, 7, 37, 12, tzinfo=UTC), datetime(2026, 3, 8, 23, 59, 59, tzinfo=UTC)):
        for window, size in (("15m", timedelta(minutes=15)), ("1h", timedelta(hours=1))):
            span = series_span(window, now, zone)
            start, end = span.bounds
            assert end - size <= now < end and end - start == SERIES_SPANS[window]
            assert end.timestamp() % size.total_seconds() == 0
        start, end = series_span("1d", now, zone).bounds
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        assert (local_start.hour, local_start.minute, local_end.hour) == (0, 0, 0)
        assert local_end.date() == now.astimezone(zone).date() + timedelta(days=1)
        assert (local_end.date() - local_start.date()).days == 90


def test_table_periods_follow_the_campaign_days() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    now = datetime(2026, 10, 2, 3, 0, tzinfo=UTC)  # 20:00 on 1 October in Los Angeles
    today = period_span("today", now, zone, None)
    assert today.start == datetime(2026, 10, 1, tzinfo=zone) and today.end == datetime(2026, 10, 2, tzinfo=zone)
    week = period_span("7d", now, zone, None)
    assert week.start == datetime(2026, 9, 25, tzinfo=zone) and week.end == today.end
    assert period_span("all", now, zone, None).json() == {"from": None, "to": None}
    assert period_span("all", now, zone, date(2026, 9, 1)).start == datetime(2026, 9, 1, tzinfo=zone)
    with pytest.raises(ValueError, match="unknown period"):
        period_span("fortnight", now, zone, None)
