"""One movement, one alert: a region's flag and its counties' and precincts' flags on the same metric
and direction form a group (the detector), and the dispatcher sends one alert for the group."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from clickhouse_connect.driver.client import Client

from models.trends import Hierarchy, RateCounts, TrendDetector, TrendFlag, WindowSpan, support_residual_spec
from sinks.alerts.alert import Alert
from sinks.alerts.dispatch import AlertDispatcher
from sinks.alerts.store import AlertStore
from sinks.alerts.tables import ALERT_TABLES
from sinks.clickhouse.client import Warehouse
from tests.test_alerts_helpers import T0, make_config, trend_flag

SECRET = b"test-secret-0123456789"
REGION_ID = "support_rate|region|North|down|2026-10-05T09:00:00+00:00"


def member(level: str, unit: str, **changes: object) -> TrendFlag:
    flag_id = f"support_rate|{level}|{unit}|down|2026-10-05T10:00:00+00:00"
    return trend_flag(flag_id=flag_id, level=level, unit_id=unit, group_id=REGION_ID, **changes)


REGION = trend_flag(flag_id=REGION_ID, level="region", unit_id="North", effect=-0.06, z_score=4.5, group_id=REGION_ID)
MEMBERS = [member("county", "OH/C1", effect=-0.07), member("county", "OH/C2", effect=-0.06),
           *(member("precinct", f"P0{i}") for i in range(3))]  # fmt: skip


def store_for(client: Client, warehouse: Warehouse) -> AlertStore:
    for table in ALERT_TABLES:
        for statement in table.render(warehouse.topology):
            client.command(statement)
    return AlertStore(client, warehouse)


def flags_alerted(alerts: list[Alert], recipient: str) -> set[str]:
    return {a.flag_id for a in alerts if a.recipient == recipient and a.status != "suppressed"}


def test_a_region_and_its_counties_and_precincts_make_one_alert(client: Client, warehouse: Warehouse) -> None:
    store = store_for(client, warehouse)
    dispatcher = AlertDispatcher(make_config(), "UTC", SECRET)
    south = trend_flag(flag_id="support_rate|precinct|P90|down|x", unit_id="P90", region_id="South")
    alerts = dispatcher.submit_trend_flags(store, [*MEMBERS, REGION, south], now=T0)

    # Every warning-level flag here would reach north-lead (webhook, log) and the desk (log) on its own.
    assert flags_alerted(alerts, "north-lead") == {REGION_ID}
    assert flags_alerted(alerts, "desk") == {REGION_ID, south.flag_id}
    assert flags_alerted(alerts, "south-lead") == {south.flag_id}  # other regions are untouched
    content = next(a.payload for a in alerts if a.recipient == "north-lead")
    assert content["group"] == {"id": REGION_ID, "members": sorted(f"{f.level}:{f.unit_id}" for f in MEMBERS)}
    assert "2 counties and 3 precincts of North" in content["summary"]

    # Later: another precinct joins the group (nothing new), a county turns critical (its own alert:
    # more than the group's warning said), and a member's episode closes (nobody heard of it: nothing).
    later = T0 + timedelta(hours=1)
    critical = member("county", "OH/C3", effect=-0.12, z_score=6.0)
    more = dispatcher.submit_trend_flags(
        store, [member("precinct", "P07"), critical, replace(MEMBERS[2], status="closed")], now=later
    )
    assert flags_alerted(more, "north-lead") == {critical.flag_id}
    assert {a.severity for a in more if a.recipient == "north-lead"} == {"critical"}


def test_a_group_that_reached_nobody_lets_its_members_speak(client: Client, warehouse: Warehouse) -> None:
    store = store_for(client, warehouse)
    dispatcher = AlertDispatcher(make_config(), "UTC", SECRET)
    weak_region = replace(REGION, effect=-0.02, z_score=2.0)  # info: below north-lead's rule
    county = MEMBERS[0]  # warning
    alerts = dispatcher.submit_trend_flags(store, [weak_region, county], now=T0)
    assert flags_alerted(alerts, "north-lead") == {county.flag_id}
    # The desk (info and up) hears of both: the county's warning says more than the group's info.
    assert flags_alerted(alerts, "desk") == {REGION_ID, county.flag_id}


def test_the_detector_groups_counties_and_precincts_under_an_open_region_flag() -> None:
    """A region-wide 15-point rise, strong enough for precincts, counties and the region to flag."""
    rng = np.random.default_rng(4)
    rows = [(f"P{i:02d}", f"C{i // 5}", "North" if i < 20 else "South") for i in range(40)]
    hierarchy = Hierarchy.from_rows(rows)
    spec = replace(support_residual_spec(), guard_days=1, min_baseline_days=2)
    detector = TrendDetector(hierarchy, spec)
    start = datetime(2026, 9, 7, tzinfo=UTC)
    flags: list[TrendFlag] = []
    for day in range(8):
        for hour in range(9, 21):
            at = start + timedelta(days=day, hours=hour)
            trials = rng.poisson(4.0, 40).astype(float)
            p = np.full(40, 0.45)
            truth = p + np.where((np.arange(40) < 20) & (day >= 5), 0.15, 0.0)
            data = RateCounts(rng.binomial(trials.astype(int), truth).astype(float), trials, trials * p,
                              trials * p * (1 - p))  # fmt: skip
            flags += detector.update(WindowSpan(at, at + timedelta(hours=1)), data)
    north = [f for f in flags if f.region_id == "North" and f.direction == "up"]
    region = [f for f in north if f.level == "region"]
    assert region and {f.group_id for f in region} == {region[0].flag_id}  # a region flag heads its own group
    opened = min(f.raised_at for f in region)
    # Every county or precinct record written while the region's episode was open carries its group.
    later = [f for f in north if f.level != "region" and f.window_end > opened]
    assert later and all(f.group_id == region[0].flag_id for f in later)
    assert all(f.group_id == "" for f in flags if f.region_id == "South")
