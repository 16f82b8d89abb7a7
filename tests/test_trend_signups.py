"""Signups watched per utm_source: which sources get a detector of their own, and a surge from one of
them flagged through the trend agent and chDB."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from clickhouse_connect.driver.client import Client

from config.geography import Geography
from models.trends import MetricSpec, signup_spec
from models.trends.sources import OTHER, SourcePolicy, bucket_of, choose_sources, normalise_source
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.trends import TrendStore
from streams.trends import TrendAgent
from tests.trend_helpers import run_until_caught_up, runner

START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS, SURGE_DAY = 8, 6
GEO = Geography.from_rows(
    {"precinct_id": f"P{i:02d}", "county": f"C{i // 5}", "region": "North" if i < 20 else "South", "state": "OH"}
    for i in range(40)
)
# Per precinct and hour (09:00-21:00): two big sources, no source at all, a long tail, and a source
# that holds an email address (never a metric name).
RATES = {"Facebook ": 0.5, "email": 0.3, "": 0.15, "bob@example.com": 0.05, **{f"tail{i}": 0.01 for i in range(10)}}
COLUMNS = ["event_id", "occurred_at", "received_at", "source_system", "action_type", "utm_source", "precinct_id",
           "county", "region", "state", "kafka_partition", "kafka_offset"]  # fmt: skip


def test_sources_are_normalised_and_contact_details_never_become_names() -> None:
    assert normalise_source("  Facebook ") == "facebook"
    assert normalise_source("") == "none"
    assert normalise_source("News Letter/Oct!") == "news_letter_oct"
    assert normalise_source("bob@example.com") == OTHER
    assert normalise_source("call 614 555 0199") == OTHER  # a phone number
    assert bucket_of("EMAIL", ("email",)) == "email" and bucket_of("tail3", ("email",)) == OTHER


def test_sources_chosen_by_share_and_volume_and_never_dropped() -> None:
    rng = np.random.default_rng(3)
    totals = {f"s{i}": int(n) for i, n in enumerate(rng.integers(0, 400, 30))}
    policy = SourcePolicy(min_share=0.05, min_per_day=5.0, max_sources=4)
    days = 10.0
    chosen = choose_sources(totals, days, ("gone",), policy)
    # Independently: rank by count, keep those over both bars, up to the cap (the kept one counts).
    total = sum(totals.values())
    eligible = [s for s, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
                if n / total >= 0.05 and n / days >= 5.0]  # fmt: skip
    assert chosen == ("gone", *eligible[:3])
    assert choose_sources({}, days, chosen, policy) == chosen


def signup_rows(seed: int) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = []
    for day in range(DAYS):
        for info in GEO.precincts.values():
            for hour in range(9, 21):
                for source, rate in RATES.items():
                    surge = 3.0 if source == "Facebook " and info.region == "North" and day >= SURGE_DAY else 1.0
                    for _ in range(rng.poisson(rate * surge)):
                        at = START + timedelta(days=day, hours=hour, minutes=float(rng.uniform(0, 59)))
                        rows.append([uuid.uuid4(), at, at, "test", "signup", source, info.precinct_id, info.county,
                                     info.region, info.state, 0, len(rows)])  # fmt: skip
    return rows


def quick(source: str) -> MetricSpec:
    """A short warm-up for a short test, a tenth of the default false-alarm budget, and a weak pull of
    the daily shape towards flat (a few days of data must teach it that nights are empty)."""
    spec = signup_spec(source)
    return replace(spec, guard_days=1, min_baseline_days=2, alarms_per_region_week=0.05, seasonal_prior_events=0.5)


async def test_a_surge_from_one_source_is_flagged_on_that_source(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    rows = signup_rows(5)
    client.insert(f"{warehouse.database}.raw_signups", rows, column_names=COLUMNS)
    policy = SourcePolicy(min_share=0.05, min_per_day=5.0, window_days=28)
    agent = TrendAgent(GEO, "UTC", timedelta(minutes=10), runner(client, warehouse), metrics=(),
                       signup_sources=policy, quality=None, source_spec=quick)  # fmt: skip
    now = START + timedelta(days=DAYS, hours=1)
    await run_until_caught_up(agent, now)

    store = TrendStore(client, warehouse)
    saved = store.load_state("signup_sources")
    # Independently: the shares of the first day decide (the first refresh is at the first midnight).
    first_day = Counter(normalise_source(r[5]) for r in rows if r[1] < START + timedelta(days=1))
    expected = sorted(s for s, n in first_day.items() if s != OTHER and n / sum(first_day.values()) >= 0.05)
    assert saved is not None and sorted(saved[1]["sources"]) == expected == ["email", "facebook", "none"]

    flags = store.flags(None, None, None, 1000)
    assert not any("@" in f["metric"] or "@" in f["flag_id"] for f in flags)
    surged = [f for f in flags if f["metric"] == "signups:facebook" and f["direction"] == "up"]
    assert surged and {f["region"] for f in surged} == {"North"}, flags
    assert min(datetime.fromisoformat(f["raised_at"]) for f in surged) >= START + timedelta(days=SURGE_DAY)
    assert not [f for f in flags if f["metric"] != "signups:facebook"], flags  # nothing else moved
