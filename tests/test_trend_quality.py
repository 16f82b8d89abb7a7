"""Canvass data quality through the trend agent and chDB: canvasser-day figures from raw_canvass,
flags once each local day closes, stored with canvasser and team ids and handed to the alert sink."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from clickhouse_connect.driver.client import Client
from scipy import stats

from config.geography import Geography
from models.trends import QualitySettings
from models.trends.quality import QualityFlag
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.trends import TrendStore
from streams.trends import TrendAgent
from tests.trend_helpers import run_until_caught_up, runner

ZONE = ZoneInfo("America/New_York")
FIRST_DAY, DAYS = date(2026, 10, 5), 4
GEO = Geography.from_rows(
    {"precinct_id": f"P{i:02d}", "county": f"C{i // 5}", "region": "North" if i < 10 else "South", "state": "OH"}
    for i in range(20)
)
# On the last day: C00 reports nearly every door as a conversation, C01 knocks doors under a minute
# apart, C02's phone is far off (GPS accuracy radius of hundreds of metres) at many doors.
PLANTED = {("contact_rate_high", "C00"), ("doors_minutes_apart", "C01"), ("gps_exceptions", "C02")}
COLUMNS = ["event_id", "occurred_at", "received_at", "source_system", "voter_id", "household_id", "precinct_id",
           "county", "region", "state", "canvasser_id", "team_id", "contact_type", "result", "support_level",
           "gps_lat", "gps_lon", "gps_accuracy_m", "kafka_partition", "kafka_offset"]  # fmt: skip


def canvass(seed: int) -> list[list[Any]]:
    """Forty canvassers a day, each walking ~40 doors of 1-3 voters from 10:00 local."""
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = []
    precincts = list(GEO.precincts.values())
    for d in range(DAYS):
        last = d == DAYS - 1
        for c in range(40):
            canvasser, team = f"C{c:02d}", f"T{c % 4}"
            info = precincts[c % len(precincts)]
            at = datetime.combine(FIRST_DAY + timedelta(days=d), datetime.min.time(), ZONE) + timedelta(hours=10)
            for door in range(int(rng.integers(30, 50))):
                quick = last and canvasser == "C01"
                at += timedelta(seconds=float(rng.uniform(20, 60) if quick else rng.uniform(180, 480)))
                far = rng.random() < (0.4 if last and canvasser == "C02" else 0.02)
                accuracy = float(rng.uniform(150, 400) if far else rng.uniform(4, 25))
                contact_p = 0.9 if last and canvasser == "C00" else 0.2
                household = f"H{d}-{c}-{door}"
                for k in range(int(rng.integers(1, 4))):
                    when = (at + timedelta(seconds=8 * k)).astimezone(UTC)
                    talked = rng.random() < contact_p
                    rows.append([uuid.uuid4(), when, when, "test", f"V{len(rows)}", household, info.precinct_id,
                                 info.county, info.region, info.state, canvasser, team, "walk",
                                 "canvassed" if talked else "not_home", 1 if talked else None, 40.0, -83.0, accuracy,
                                 0, len(rows)])  # fmt: skip
    return rows


def straightforward_days(rows: list[list[Any]]) -> dict[tuple[str, date], dict[str, int]]:
    """Per canvasser and local day, counted in plain Python."""
    events: dict[tuple[str, date], list[list[Any]]] = defaultdict(list)
    for r in rows:
        events[(r[10], r[1].astimezone(ZONE).date())].append(r)
    out = {}
    for key, mine in events.items():
        first_knock: dict[str, datetime] = {}
        far: dict[str, bool] = defaultdict(bool)
        for r in mine:
            first_knock[r[5]] = min(first_knock.get(r[5], r[1]), r[1])
            far[r[5]] |= r[17] > 100
        times = sorted(first_knock.values())
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        out[key] = {
            "attempts": len(mine),
            "contacts": sum(r[13] == "canvassed" for r in mine),
            "door_gaps": len(gaps),
            "quick_gaps": sum(g < 120 for g in gaps),
            "gps_checked": len(first_knock),
            "gps_exceptions": sum(far.values()),
        }
    return out


def expected_flags(days: dict[tuple[str, date], dict[str, int]], settings: QualitySettings) -> set[tuple[str, str]]:
    """The last day's flags by scipy's binomial tails against the three earlier days' pooled shares."""
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    earlier = [v for (_, d), v in days.items() if d < last]
    quick = sum(v["quick_gaps"] for v in earlier) / sum(v["door_gaps"] for v in earlier)
    gps = sum(v["gps_exceptions"] for v in earlier) / sum(v["gps_checked"] for v in earlier)
    today = {c: v for (c, d), v in days.items() if d == last}
    level = settings.alarms_per_day / (4 * len(today))  # every canvasser-day here has >= 10 of everything
    found = set()
    for c, v in today.items():
        a, k = v["attempts"], v["contacts"]
        if k / a > 0.6 and stats.binom.sf(k - 1, a, 0.6) <= level:
            found.add(("contact_rate_high", c))
        if k / a < 0.05 and stats.binom.cdf(k, a, 0.05) <= level:
            found.add(("contact_rate_low", c))
        limit = max(0.02, 2 * quick)
        if (
            v["quick_gaps"] / v["door_gaps"] > limit
            and stats.binom.sf(v["quick_gaps"] - 1, v["door_gaps"], limit) <= level
        ):
            found.add(("doors_minutes_apart", c))
        limit = max(0.02, 2 * gps)
        if (
            v["gps_exceptions"] / v["gps_checked"] > limit
            and stats.binom.sf(v["gps_exceptions"] - 1, v["gps_checked"], limit) <= level
        ):
            found.add(("gps_exceptions", c))
    return found


async def test_canvasser_days_are_checked_once_each_day_closes(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    rows = canvass(11)
    client.insert(f"{warehouse.database}.raw_canvass", rows, column_names=COLUMNS)
    store = TrendStore(client, warehouse)

    # The warehouse's canvasser-day figures match a plain count over the rows.
    days = straightforward_days(rows)
    start = datetime.combine(FIRST_DAY, datetime.min.time(), ZONE).astimezone(UTC)
    got = store.canvasser_days(start, start + timedelta(days=DAYS), "America/New_York")
    assert {(r.canvasser_id, r.day): {k: getattr(r, k) for k in days[(r.canvasser_id, r.day)]} for r in got} == days
    assert {(r.canvasser_id, r.team_id, r.region) for r in got if r.canvasser_id == "C01"} == {("C01", "T1", "North")}

    received: list[tuple[QualityFlag, str]] = []

    async def sink(flags: list[tuple[QualityFlag, str]]) -> None:
        received.extend(flags)

    settings = QualitySettings()
    agent = TrendAgent(GEO, "America/New_York", timedelta(minutes=10), runner(client, warehouse), metrics=(),
                       signup_sources=None, quality=settings, on_quality=sink)  # fmt: skip
    now = start + timedelta(days=DAYS, hours=1)
    await run_until_caught_up(agent, now)
    assert agent.quality_days_checked == DAYS  # every local day once (the first hour with data is 10:00)

    expected = expected_flags(days, settings)
    assert expected >= PLANTED  # the planted problems are there to be found
    assert {(f.check, f.canvasser_id) for f, _ in received} == expected
    assert all(f.day == FIRST_DAY + timedelta(days=DAYS - 1) for f, _ in received)  # earlier days are clean
    assert {(f.canvasser_id, f.team_id, region) for f, region in received} == {
        ("C00", "T0", "North"), ("C01", "T1", "North"), ("C02", "T2", "North"),
    }  # fmt: skip

    stored = [f for f in store.flags(None, None, None, 100) if f["level"] == "canvasser"]
    assert {(f["metric"], f["unit_id"], f["team_id"], f["region"]) for f in stored} == {
        (f"quality:{f.check}", f.canvasser_id, f.team_id, region) for f, region in received
    }
    assert all(f["statistic"] >= f["threshold"] and f["p_value"] <= 1e-3 for f in stored)
