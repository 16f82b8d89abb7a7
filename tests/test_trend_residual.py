"""Support shifts through the trend agent and chDB: judged on the champion model's residual when the
IDs were scored, on the raw support rate when they were not.

Three regions, the same canvass volumes, and from SHIFT_DAY on:
- North: canvassers reach friendlier voters (mean score +15 points), nobody changes their mind;
- South: opinion moves (+15 points on every voter's support probability), same voters reached;
- West: North's change of mix again, but its IDs were never scored (voters not on file).
The support rate rises by about 15 points in all three. Only South's is opinion; West's is flagged
by the raw rate only because nothing better is known there (and shows the mix change is large enough
to be read as opinion by a raw-rate detector).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from clickhouse_connect.driver.client import Client

from config.geography import Geography
from models.trends import support_rate_spec, support_residual_spec
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.trends import TrendStore
from streams.trends import TrendAgent, WatchedMetric
from tests.trend_helpers import run_until_caught_up, runner

START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS, SHIFT_DAY, SHIFT = 7, 5, 0.15
REGIONS = ("North", "South", "West")
GEO = Geography.from_rows(
    {"precinct_id": f"P{i:02d}", "county": f"C{i // 5}", "region": REGIONS[i // 15], "state": "OH"} for i in range(45)
)
COLUMNS = ["event_id", "occurred_at", "received_at", "source_system", "voter_id", "precinct_id", "county", "region",
           "state", "contact_type", "result", "support_level", "kafka_partition", "kafka_offset"]  # fmt: skip
SCORE_COLUMNS = ["voter_id", "model", "version", "alias", "event_id", "score", "scored_at", "source"]


def campaign(seed: int) -> tuple[list[list[Any]], list[list[Any]]]:
    """(raw_canvass rows, voter_scores rows): a calibrated model, IDs 09:00-21:00, shifts as described."""
    rng = np.random.default_rng(seed)
    canvass: list[list[Any]] = []
    scores: list[list[Any]] = []
    for day in range(DAYS):
        shifted = day >= SHIFT_DAY
        for info in GEO.precincts.values():
            mix = 0.45 + rng.normal(0.0, 0.03) + (SHIFT if shifted and info.region != "South" else 0.0)
            for hour in range(9, 21):
                n = rng.poisson(2.0)
                score = rng.beta(mix * 4.0, (1.0 - mix) * 4.0, n)
                truth = np.clip(score + (SHIFT if shifted and info.region == "South" else 0.0), 0.0, 1.0)
                for s, support in zip(score, rng.random(n) < truth, strict=True):
                    event, voter = uuid.uuid4(), f"V{len(canvass):06d}"
                    at = START + timedelta(days=day, hours=hour, minutes=float(rng.uniform(0, 59)))
                    canvass.append([event, at, at, "test", voter, info.precinct_id, info.county, info.region,
                                    info.state, "walk", "canvassed", 1 if support else 4, 0, len(canvass)])  # fmt: skip
                    if info.region != "West":
                        scores.append([voter, "support", "v1", "champion", event, float(s), at, "stream"])
    return canvass, scores


def quick(spec: Any) -> Any:
    """Short warm-up for a short test; a tenth of the default false-alarm budget."""
    return replace(spec, guard_days=1, min_baseline_days=2, alarms_per_region_week=0.05)


async def test_a_change_in_who_is_contacted_is_not_a_support_shift(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    canvass, scores = campaign(7)
    client.insert(f"{warehouse.database}.raw_canvass", canvass, column_names=COLUMNS)
    client.insert(f"{warehouse.database}.voter_scores", scores, column_names=SCORE_COLUMNS)
    metrics = (
        WatchedMetric(quick(support_residual_spec()), "scored_supporters", "scored_ids", "score_sum", "score_var"),
        WatchedMetric(quick(support_rate_spec()), "unscored_supporters", "unscored_ids"),
    )
    agent = TrendAgent(GEO, "UTC", timedelta(minutes=10), runner(client, warehouse), metrics=metrics)
    now = START + timedelta(days=DAYS, hours=1)
    await run_until_caught_up(agent, now)

    flags = TrendStore(client, warehouse).flags(None, None, None, 1000)
    raised = {(f["metric"], f["region"], f["direction"]) for f in flags}
    # The shift's start, in the store's flags (UTC ISO strings).
    assert all(datetime.fromisoformat(f["raised_at"]) >= START + timedelta(days=SHIFT_DAY) for f in flags), flags
    assert ("support_residual", "South", "up") in raised  # opinion moved: seen on the residual
    assert ("support_rate", "West", "up") in raised  # unscored: the raw rate is all there is
    north = [f for f in flags if f["region"] == "North"]
    assert north == [], f"a change of mix in North was read as opinion: {north}"
    # Each ID is judged once: scored IDs never reach the raw-rate detector, unscored ones never the residual.
    assert {f["region"] for f in flags if f["metric"] == "support_rate"} <= {"West"}
    assert {f["region"] for f in flags if f["metric"] == "support_residual"} <= {"South"}

    # The split the agent read matches a straightforward count over the rows inserted.
    store = TrendStore(client, warehouse)
    hour = START + timedelta(days=SHIFT_DAY, hours=12)
    split = store.support_split(hour, hour + timedelta(hours=1))
    scored = {row[4]: row[5] for row in scores}
    for precinct in ("P03", "P40"):
        mine = [r for r in canvass if r[5] == precinct and hour <= r[1] < hour + timedelta(hours=1)]
        p = np.array([scored[r[0]] for r in mine if r[0] in scored])
        expected = {
            "ids": len(mine),
            "supporters": sum(r[11] == 1 for r in mine),
            "scored_ids": len(p),
            "scored_supporters": sum(r[11] == 1 for r in mine if r[0] in scored),
            "score_sum": float(p.sum()),
            "score_var": float((p * (1 - p)).sum()),
        }
        got = split.get(precinct, dict.fromkeys(expected, 0.0))
        # Float32 scores: sums agree to float32 precision.
        assert all(abs(got[k] - v) <= 1e-5 * max(1.0, abs(v)) for k, v in expected.items()), (got, expected)
