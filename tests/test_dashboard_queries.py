"""The dashboard's reads over a real (embedded) warehouse, against figures counted here row by row, and
against /api/v1/metrics' own query; and the view's access rules for regional principals."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from config.geography import Geography
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.queries import MetricsQuery, fetch_metrics
from streams.auth import Principal
from streams.web.places import KEY_COLUMNS, Place, PlaceTree
from streams.web.queries import SHOWN, DashboardQueries, Scope
from streams.web.views import ViewBuilder, ViewError, ViewRequest

ZONE = "America/Chicago"  # daily windows in a zone that is not UTC
NOW = datetime(2026, 10, 20, 23, 30, tzinfo=UTC)  # 18:30 in Chicago
GEOGRAPHY = Geography.from_rows(
    {"precinct_id": f"P{i}", "county": f"County {i % 3}", "region": ("North", "South")[i % 3 % 2], "state": "OH"}
    for i in range(9)
)
RESULTS = ["canvassed", "canvassed", "not_home", "refused", "moved", "wrong_number"]
KINDS = ["send", "send", "send", "open", "click", "click", "unsubscribe", "bounce_hard", "donation"]


def canvass(rng: random.Random, at: datetime, precinct: str) -> dict[str, Any]:
    result = rng.choice(RESULTS)
    return {"table": "raw_canvass", "occurred_at": at, "precinct_id": precinct, "result": result,
            "household_id": f"H{rng.randrange(40)}", "voter_id": f"V{rng.randrange(80)}", "contact_type": "walk",
            "support_level": rng.choice([1, 2, 3, 4, 5, None]) if result == "canvassed" else None}  # fmt: skip


def email(rng: random.Random, at: datetime, precinct: str) -> dict[str, Any]:
    kind = rng.choice(KINDS)
    return {"table": "raw_email", "occurred_at": at, "precinct_id": precinct, "kind": kind,
            "mailing_id": rng.choice(["M1", "M2"]), "email_hash": f"e{rng.randrange(30)}",
            "amount_cents": rng.randrange(100, 5000) if kind == "donation" else None}  # fmt: skip


def signup(rng: random.Random, at: datetime, precinct: str) -> dict[str, Any]:
    return {"table": "raw_signups", "occurred_at": at, "precinct_id": precinct}


def make_events(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    precincts = [*GEOGRAPHY.precincts, "unassigned"]
    events = []
    for _ in range(count):
        at = NOW - timedelta(seconds=rng.randrange(0, 10 * 86_400))
        precinct = rng.choice(precincts)
        maker = rng.choice([canvass, canvass, canvass, email, email, signup])
        if precinct == "unassigned" and maker is canvass:
            maker = email  # only signups and email go unassigned
        events.append(maker(rng, at, precinct))
    return events


def place_of(precinct: str) -> tuple[str, str, str]:
    if precinct == "unassigned":
        return "County 0", "North", "OH"  # a county's bucket
    info = GEOGRAPHY.precincts[precinct]
    return info.county, info.region, info.state


def insert(client: Client, events: list[dict[str, Any]]) -> None:
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        county, region, state = place_of(event["precinct_id"])
        row = {k: v for k, v in event.items() if k != "table"}
        row.update(event_id=uuid.uuid4(), received_at=event["occurred_at"], county=county, region=region, state=state)
        by_table[event["table"]].append(row)
    for table, rows in by_table.items():
        columns = list(rows[0])
        client.insert(table, [[r[c] for c in columns] for r in rows], column_names=columns)


def reference(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The shown figures of a set of events, counted one event at a time (sinks/clickhouse/schema.py semantics)."""
    events = list(events)
    knocks = [e for e in events if e["table"] == "raw_canvass"]
    mails = [e for e in events if e["table"] == "raw_email"]

    def kinds(kind: str) -> list[dict[str, Any]]:
        return [e for e in mails if e["kind"] == kind]

    f: dict[str, Any] = {
        "attempts": len(knocks),
        "contacts": sum(e["result"] == "canvassed" for e in knocks),
        "ids": sum(e["support_level"] is not None for e in knocks),
        "supporters": sum(e["support_level"] in (1, 2) for e in knocks),
        "signups": sum(e["table"] == "raw_signups" for e in events),
        "email_unique_clicks": len({(e["mailing_id"], e["email_hash"]) for e in kinds("click")}),
        "email_unsubscribes": len(kinds("unsubscribe")),
    }
    delivered = max(len(kinds("send")) - len(kinds("bounce_hard")) - len(kinds("bounce_soft")), 0)
    f["email_delivered"] = delivered
    f["contact_rate"] = f["contacts"] / f["attempts"] if f["attempts"] else None
    f["support_rate"] = f["supporters"] / f["ids"] if f["ids"] else None
    f["email_click_rate"] = f["email_unique_clicks"] / delivered if delivered else None
    f["email_unsubscribe_rate"] = f["email_unsubscribes"] / delivered if delivered else None
    return f


def assert_figures(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for name in SHOWN:
        assert got[name] == pytest.approx(want[name]), f"{where}: {name} {got[name]} != {want[name]}"


def inside(event: dict[str, Any], place: Place) -> bool:
    county, region, state = place_of(event["precinct_id"])
    values = {"state": state, "region": region, "county": county, "precinct_id": event["precinct_id"]}
    return all(values[c] == v for c, v in zip(KEY_COLUMNS[place.level], place.keys, strict=True))


@pytest.fixture
def loaded(client: Client, warehouse: Warehouse) -> tuple[DashboardQueries, list[dict[str, Any]]]:
    migrate(client, warehouse, ZONE)
    events = make_events(11, 4_000)
    # Several inserts, so that the aggregates hold unmerged parts as they do while ingest runs.
    for i in range(0, len(events), 1_000):
        insert(client, events[i : i + 1_000])
    return DashboardQueries(client, warehouse), events


def test_series_equal_the_events_counted_by_window(loaded: tuple[DashboardQueries, list[dict[str, Any]]]) -> None:
    queries, events = loaded
    county = Place("county", "OH", "North", "County 0")  # its precincts and its unassigned bucket
    start, end = NOW - timedelta(days=2), NOW + timedelta(hours=1)
    rows = queries.series(Scope(county, None), "1h", start, end)
    by_hour: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        hour = e["occurred_at"].replace(minute=0, second=0, microsecond=0)
        if inside(e, county) and start <= hour < end:
            by_hour[hour].append(e)
    assert [datetime.fromisoformat(r["window_start"]) for r in rows] == sorted(by_hour)
    for row in rows:
        assert_figures(row, reference(by_hour[datetime.fromisoformat(row["window_start"])]), row["window_start"])


def test_totals_merge_uniques_over_the_period_and_split_by_child(
    loaded: tuple[DashboardQueries, list[dict[str, Any]]],
) -> None:
    queries, events = loaded
    zone = ZoneInfo(ZONE)
    start = datetime(2026, 10, 14, tzinfo=zone)  # the last seven Chicago days up to NOW
    end = datetime(2026, 10, 21, tzinfo=zone)
    region = Place("region", "OH", "North")
    totals = queries.totals(Scope(region, None), ["region", "county"], start, end)
    period = [e for e in events if start <= e["occurred_at"] < end]
    [total] = totals["region"]
    assert_figures(total, reference(e for e in period if inside(e, region)), "region")
    counties = {row["county"]: row for row in totals["county"]}
    assert set(counties) == {"County 0", "County 2"}
    for name, row in counties.items():
        assert_figures(row, reference(e for e in period if inside(e, Place("county", "OH", "North", name))), name)


def test_a_days_totals_equal_the_apis_daily_row(loaded: tuple[DashboardQueries, list[dict[str, Any]]]) -> None:
    queries, _ = loaded
    zone = ZoneInfo(ZONE)
    day = datetime(2026, 10, 19, tzinfo=zone)
    state = Place("state", "OH")
    mine = queries.totals(Scope(state, None), ["precinct"], day, day + timedelta(days=1))["precinct"]
    api, _ = fetch_metrics(queries._client, MetricsQuery("precinct", "1d", start=day, end=day + timedelta(days=1)))
    assert len(mine) == len(api) > 5
    for row, theirs in zip(mine, api, strict=True):
        assert row["precinct_id"] == theirs["precinct_id"]
        assert_figures(row, theirs, row["precinct_id"])


def test_regional_scopes_never_read_other_regions(loaded: tuple[DashboardQueries, list[dict[str, Any]]]) -> None:
    queries, events = loaded
    state = Place("state", "OH")
    south = frozenset({"South"})
    totals = queries.totals(Scope(state, south), ["region", "precinct"], None, None)
    assert {r["region"] for r in totals["region"]} == {"South"}
    assert {GEOGRAPHY.precincts[r["precinct_id"]].region for r in totals["precinct"]} == {"South"}
    assert_figures(totals["region"][0], reference(e for e in events if place_of(e["precinct_id"])[1] == "South"), "S")
    series = queries.series(Scope(state, south), "1d", NOW - timedelta(days=30), NOW + timedelta(days=1))
    southern = [e for e in events if place_of(e["precinct_id"])[1] == "South"]
    assert sum(r["attempts"] for r in series) == reference(southern)["attempts"]
    ids, first = queries.precinct_ids(south, None, NOW - timedelta(days=7), NOW)
    assert set(ids) <= {p for p, info in GEOGRAPHY.precincts.items() if info.region == "South"}
    want: dict[str, float] = defaultdict(float)
    for e in events:
        if e["table"] == "raw_canvass" and e["support_level"] is not None and place_of(e["precinct_id"])[1] == "South":
            want[e["precinct_id"]] += 1
    assert {p: total for p, (total, _) in ids.items()} == want
    assert first is not None


def test_newest_ingested_reads_recent_parts_only_when_asked(
    client: Client, loaded: tuple[DashboardQueries, list[dict[str, Any]]]
) -> None:
    queries, _ = loaded
    full = queries.newest_ingested(None, recent_parts_only=False)
    direct = client.query(
        "SELECT region, max(t) FROM (SELECT region, ingested_at AS t FROM raw_canvass UNION ALL SELECT region, "
        "ingested_at FROM raw_email UNION ALL SELECT region, ingested_at FROM raw_signups) GROUP BY region"
    ).result_rows
    assert full == {r: t.replace(tzinfo=UTC) if t.tzinfo is None else t for r, t in direct}
    since = max(full.values()) + timedelta(milliseconds=1)
    assert queries.newest_ingested(since, recent_parts_only=True) == {}
    insert(client, [signup(random.Random(1), NOW, "P2")])
    fresh = queries.newest_ingested(since - timedelta(seconds=60), recent_parts_only=True)
    region = GEOGRAPHY.precincts["P2"].region
    assert set(fresh) >= {region} and fresh[region] > full[region]


async def test_views_refuse_other_regions_and_hide_state_totals_from_regional_staff(
    client: Client, loaded: tuple[DashboardQueries, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    queries, events = loaded
    monkeypatch.delenv("GROUNDSWELL_ELECTION_DAY", raising=False)

    async def read(fn: Any) -> Any:
        return fn(queries)

    tree = PlaceTree(GEOGRAPHY)
    builder = ViewBuilder(tree, {"P0": 50.0, "P3": 30.0}, ZONE, date(2026, 10, 1), read, clock=lambda: NOW)
    north = Principal("rita", "regional", frozenset({"North"}))
    request = ViewRequest.parse({})
    home = await builder.build(north, request)
    assert home["place"] == {"level": "region", "unit": "North", "name": "North", "region": "North"}
    assert {c["name"] for c in home["children"]} == {"County 0", "County 2"}
    for level, unit in (("region", "South"), ("county", "OH/County 1"), ("precinct", "P1")):  # all in the South
        with pytest.raises(ViewError) as refused:
            await builder.build(north, ViewRequest.parse({"level": level, "unit": unit}))
        assert refused.value.status == 403 and unit not in str(refused.value)
    with pytest.raises(ViewError) as missing:
        builder.resolve(north, ViewRequest.parse({"level": "precinct", "unit": "P99"}))
    assert missing.value.status == 404
    state = await builder.build(north, ViewRequest.parse({"level": "state", "unit": "OH"}))
    assert state["restricted"] and state["series"] is None and state["total"] is None
    assert [c["unit"] for c in state["children"]] == ["North"]

    # Everyone else: every region, with an unassigned bucket where events had no precinct.
    admin = Principal("admin", "admin")
    request = ViewRequest.parse({"level": "county", "unit": "OH/County 0", "period": "all"})
    county = await builder.build(admin, request)
    assert county["series"]
    units = {c["unit"]: c for c in county["children"]}
    assert "unassigned" in units and not units["unassigned"]["assigned"]
    assert set(units) == {p for p, info in GEOGRAPHY.precincts.items() if info.county == "County 0"} | {"unassigned"}
    campaign_start = datetime(2026, 10, 1, tzinfo=ZoneInfo(ZONE))
    bucket = [e for e in events if e["precinct_id"] == "unassigned" and e["occurred_at"] >= campaign_start]
    assert_figures(units["unassigned"]["figures"], reference(bucket), "unassigned")
    # Pace: IDs of the goaled precincts since the campaign started, against their goals.
    pace = county["total"]["pace"]
    ids = sum(1 for e in events if e["table"] == "raw_canvass" and e["precinct_id"] in ("P0", "P3")
              and e["support_level"] is not None and e["occurred_at"] >= campaign_start)  # fmt: skip
    assert (pace["goal"], pace["ids"]) == (80.0, ids)
    assert county["goals"]["deadline"] == "2026-11-03" and county["goals"]["start"] == "2026-10-01"

    with pytest.raises(ViewError, match="window must be"):
        ViewRequest.parse({"window": "5m"})
