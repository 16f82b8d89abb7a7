"""The trend agent against the real chDB: closed hours from the aggregates in, flags and state out."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from clickhouse_connect.driver.client import Client

from config.geography import Geography
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.trends import TrendStore
from streams.trends import TrendAgent, watched_metrics
from tests.trend_helpers import run_until_caught_up, runner

START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 10
SHIFT_FROM_DAY = 7  # the last three days: region North's support up 20 points
GEO = Geography.from_rows(
    {"precinct_id": f"P{i:02d}", "county": f"C{i // 5}", "region": "North" if i < 20 else "South", "state": "OH"}
    for i in range(40)
)


def canvass_rows(seed: int) -> list[list[object]]:
    """Hourly IDs 09:00-21:00 in every precinct, support 50%; North +20 points from SHIFT_FROM_DAY."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for day in range(DAYS):
        for hour in range(9, 21):
            start = START + timedelta(days=day, hours=hour)
            for info in GEO.precincts.values():
                shifted = info.region == "North" and day >= SHIFT_FROM_DAY
                for _ in range(rng.poisson(2.0)):
                    support = rng.random() < (0.7 if shifted else 0.5)
                    occurred = start + timedelta(minutes=float(rng.uniform(0, 59)))
                    rows.append([uuid.uuid4(), occurred, occurred, "test", info.precinct_id, info.county, info.region,
                                 info.state, "walk", "canvassed", 1 if support else 4, 0, len(rows)])  # fmt: skip
    return rows


# The default metrics with a short warm-up (a day's guard, two days of baseline) for a short test;
# per-source signups and data quality have tests of their own (tests/test_trend_signups.py, _quality.py).
ONLY_AGGREGATES: dict[str, Any] = {
    "signup_sources": None,
    "quality": None,
    "metrics": [replace(m, spec=replace(m.spec, guard_days=1, min_baseline_days=2)) for m in watched_metrics()],
}
COLUMNS = ["event_id", "occurred_at", "received_at", "source_system", "precinct_id", "county", "region", "state",
           "contact_type", "result", "support_level", "kafka_partition", "kafka_offset"]  # fmt: skip


async def test_a_region_wide_shift_is_flagged_once_and_state_survives_a_restart(
    client: Client, warehouse: Warehouse
) -> None:
    migrate(client, warehouse, "UTC")
    client.insert(f"{warehouse.database}.raw_canvass", canvass_rows(1), column_names=COLUMNS)
    now = START + timedelta(days=DAYS, hours=1)
    agent = TrendAgent(GEO, "America/New_York", timedelta(minutes=10), runner(client, warehouse), **ONLY_AGGREGATES)
    await run_until_caught_up(agent, now)
    assert agent.windows_evaluated == DAYS * 24 - 9  # every hour from the first with data (09:00), none twice

    store = TrendStore(client, warehouse)
    support = [f for f in store.flags(None, None, "support_rate", 1000)]
    north_up = [f for f in support if f["region"] == "North" and f["direction"] == "up" and f["level"] != "precinct"]
    assert north_up, f"no region or county flag for North's shift; flags: {support}"
    first_raised = min(datetime.fromisoformat(f["raised_at"]) for f in north_up)
    assert first_raised >= START + timedelta(days=SHIFT_FROM_DAY)  # not before the shift began
    assert len({f["flag_id"] for f in north_up}) == len(north_up)  # upserted: one row per episode
    assert not [f for f in support if f["region"] == "South" and f["level"] == "region"]

    # Regional staff see their regions only: the filter is in the query.
    assert {f["region"] for f in store.flags(frozenset({"South"}), None, None, 1000)} <= {"South"}

    # A restarted agent resumes from the saved state and evaluates nothing twice.
    restarted = TrendAgent(GEO, "America/New_York", timedelta(minutes=10), runner(client, warehouse), **ONLY_AGGREGATES)
    assert await restarted.tick(now) == [] and restarted.windows_evaluated == 0
    later = await restarted.tick(now + timedelta(hours=2))
    assert restarted.windows_evaluated == 2 and isinstance(later, list)
