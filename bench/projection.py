"""bench/projection: what the aggregates' `by_window_start` projection (migration 8) costs and buys.

    .venv/bin/python -m bench.projection [--precincts 3000] [--days 30] [--batches 40] [--batch-rows 50000]

Two databases in one embedded ClickHouse, migrated alike, one with the projection dropped. The same
canvass batches (random precincts and times over `--days`) are inserted into both, alternately,
through the ingest writer (raw rows, then the materialized views into the aggregates): insert time
with and without. Then the dashboard's own queries (streams/web/queries.py) for state- and region-
wide time ranges and for one precinct run alternately on both. Figures are ratios within this run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import msgspec

from sinks.clickhouse.client import connect, warehouse_from_dsn
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.schema import WINDOW_PROJECTIONS
from sinks.clickhouse.writer import RawBatchWriter
from streams.rows import CanvassRow
from streams.web.places import Place
from streams.web.queries import DashboardQueries, Scope

RESULTS = ("canvassed", "not_home", "not_home", "refused", "moved", "come_back_later")


def geography(precincts: int) -> list[tuple[str, str, str]]:
    """(precinct, county, region): 30 precincts a county, 5 regions."""
    per_region = max(precincts // 5, 1)
    return [(f"P{p:05d}", f"County {p // 30:03d}", f"Region {p // per_region}") for p in range(precincts)]


def batch(rng: random.Random, places: list[tuple[str, str, str]], rows: int, start: float, span_s: float) -> bytes:
    out = []
    for i in range(rows):
        precinct, county, region = rng.choice(places)
        result = rng.choice(RESULTS)
        at = start + rng.random() * span_s
        out.append(CanvassRow(
            uuid.UUID(int=rng.getrandbits(128), version=4), at, at, "bench", "", f"V{rng.randrange(10**7)}",
            f"H{rng.randrange(5 * 10**6)}", precinct, county, region, "OH", f"C{rng.randrange(2000)}", "", "", "",
            "walk", result, rng.choice((1, 2, 3, 4, 5)) if result == "canvassed" else None, [], None, None, None, 0, i,
        ))  # fmt: skip
    return msgspec.json.Encoder().encode_lines(out)


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precincts", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--batches", type=int, default=40, help="batches inserted into each database")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=30, help="query rounds")
    parser.add_argument("--small-batches", type=int, default=200, help="small inserts into each database")
    parser.add_argument(
        "--small-rows", type=int, default=40, help="events per small insert (200/s flushed 5 times a second)"
    )
    args = parser.parse_args()

    path = tempfile.mkdtemp(prefix="groundswell-bench-projection-")
    with_it = warehouse_from_dsn(f"chdb://{path}", database="with_projection")
    without = warehouse_from_dsn(f"chdb://{path}", database="without_projection")
    clients = {}
    for name, warehouse in (("with", with_it), ("without", without)):
        client = connect(warehouse)
        migrate(client, warehouse, "UTC")
        clients[name] = (client, warehouse, RawBatchWriter(client, warehouse))
    for projection in WINDOW_PROJECTIONS:
        clients["without"][0].command(
            f"ALTER TABLE {without.topology.qualified(projection.table)} DROP PROJECTION {projection.name}"
        )

    rng = random.Random(7)
    places = geography(args.precincts)
    now = datetime.now(UTC)
    start = (now - timedelta(days=args.days)).timestamp()
    insert_s: dict[str, list[float]] = {"with": [], "without": []}
    print(f"inserting {args.batches} batches of {args.batch_rows:,} canvass events into each database")
    for i in range(args.batches):
        body = batch(rng, places, args.batch_rows, start, args.days * 86_400.0)
        order = ("with", "without") if i % 2 == 0 else ("without", "with")  # alternate: share the machine's drift
        for name in order:
            _, _, writer = clients[name]
            insert_s[name].append(timed(partial(writer.write, "raw_canvass", f"b{i}", body, [])))
    # Live traffic: a few dozen events per flush, where each insert's fixed cost (new parts in the raw
    # table, the aggregates and their projections) dominates.
    small_s: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(args.small_batches):
        body = batch(rng, places, args.small_rows, now.timestamp() - 3600, 3600.0)
        for name in ("with", "without") if i % 2 == 0 else ("without", "with"):
            small_s[name].append(timed(partial(clients[name][2].write, "raw_canvass", f"s{i}", body, [])) * 1000)
    small_w, small_o = statistics.median(small_s["with"]), statistics.median(small_s["without"])
    print(f"small inserts ({args.small_rows} events), ms p50 / p95: with {small_w:.1f} / "
          f"{pct(small_s['with'], 0.95):.1f}, without {small_o:.1f} / {pct(small_s['without'], 0.95):.1f} "
          f"(ratio of p50s {small_w / small_o:.2f})")  # fmt: skip
    for name, (client, _, _) in clients.items():
        client.command(f"OPTIMIZE TABLE {clients[name][1].topology.qualified('agg_precinct_15m')} FINAL")
    events = args.batches * args.batch_rows
    rate = {name: events / sum(times) for name, times in insert_s.items()}
    print(f"insert (raw + views), events/s: with {rate['with']:,.0f}, without {rate['without']:,.0f} "
          f"(with/without = {rate['with'] / rate['without']:.2f})")  # fmt: skip

    region = places[0][2]
    county = places[0][1]
    scopes = {
        "state, 15-min, today": (Scope(Place("state", "OH"), None), "15m", timedelta(days=1)),
        "state, hourly, 7 days": (Scope(Place("state", "OH"), None), "1h", timedelta(days=7)),
        "region, 15-min, today": (Scope(Place("region", "OH", region), None), "15m", timedelta(days=1)),
        "county, hourly, 7 days": (Scope(Place("county", "OH", region, county), None), "1h", timedelta(days=7)),
        "precinct, 15-min, today": (
            Scope(Place("precinct", "OH", region, county, places[0][0]), None), "15m", timedelta(days=1)),
    }  # fmt: skip
    header = ("query (dashboard series)", "with p50", "p95", "without p50", "p95", "ratio p50")
    print("\n{:<26} {:>9} {:>7} {:>12} {:>7} {:>10}".format(*header))
    for label, (scope, window, span) in scopes.items():
        times: dict[str, list[float]] = {"with": [], "without": []}
        for r in range(args.rounds):
            for name in ("with", "without") if r % 2 == 0 else ("without", "with"):
                client, warehouse, _ = clients[name]
                queries = DashboardQueries(client, warehouse)
                times[name].append(timed(partial(queries.series, scope, window, now - span, now)) * 1000)
        w, o = times["with"], times["without"]
        print(f"{label:<26} {statistics.median(w):>9.1f} {pct(w, 0.95):>7.1f} {statistics.median(o):>12.1f} "
              f"{pct(o, 0.95):>7.1f} {statistics.median(w) / statistics.median(o):>10.2f}")  # fmt: skip
    print(f"\n(ms; {args.rounds} rounds alternating; {args.precincts} precincts, {events:,} events, chDB at {path})")


if __name__ == "__main__":
    main()
