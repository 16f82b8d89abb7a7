"""Schema, migrations and token-deduplicated inserts against the real chDB engine."""

from __future__ import annotations

import uuid

import msgspec
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import MIGRATIONS, MigrationDrift, migrate
from sinks.clickhouse.schema import RAW_CANVASS, WINDOW_PROJECTIONS, aggregate_table, aggregate_view, rollup_view
from sinks.clickhouse.tables import Topology
from sinks.clickhouse.writer import RawBatchWriter
from streams.rows import CanvassRow, RejectedRow

T0 = 1_793_100_000.0


def schema_snapshot(client: Client, warehouse: Warehouse) -> list[tuple[str, str]]:
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name",
        parameters={"db": warehouse.database},
    ).result_rows
    return [(str(n), str(q)) for n, q in rows]


def test_migrations_run_twice_change_nothing(client: Client, warehouse: Warehouse) -> None:
    assert migrate(client, warehouse, "America/Chicago") == [m.version for m in MIGRATIONS]
    before = schema_snapshot(client, warehouse)
    assert migrate(client, warehouse, "America/Chicago") == []
    assert schema_snapshot(client, warehouse) == before
    recorded = client.query(f"SELECT count() FROM {warehouse.database}.schema_migrations").result_rows
    assert recorded == [(len(MIGRATIONS),)]
    tables = {name for name, _ in before}
    expected = {"raw_canvass", "agg_precinct_1d", "mv_raw_email_15m", "mv_agg_precinct_15m_1d", "metrics_state_1h"}
    assert expected <= tables
    # every insert target carries a deduplication window, materialized-view targets included
    for name, ddl in before:
        if "MergeTree" in ddl:
            assert "non_replicated_deduplication_window = 10000" in ddl, name


def test_changed_timezone_is_refused(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    try:
        migrate(client, warehouse, "Europe/Berlin")
    except MigrationDrift as exc:
        assert "time zone" in str(exc)
    else:
        raise AssertionError("a changed time zone must be refused")


def canvass_rows(n: int, precinct: str = "P1") -> bytes:
    rows = [
        CanvassRow(str(uuid.uuid4()), T0 + i, T0 + i, "minivan", "", f"V{i}", f"H{i // 2}", precinct, "Cook",
                   "North", "IL", "C1", "", "T1", "", "walk", "canvassed" if i % 4 == 0 else "not_home",
                   2 if i % 4 == 0 else None, [], None, None, None, 0, i)
        for i in range(n)
    ]  # fmt: skip
    return msgspec.json.Encoder().encode_lines(rows)


def test_a_retried_token_changes_neither_raw_rows_nor_aggregates(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    writer = RawBatchWriter(client, warehouse)
    rejected = [RejectedRow("canvass.knock", 0, 100, b"P1", T0, "invalid_json", "bad", "", b"\xff{raw")]
    body = canvass_rows(100)
    for _ in range(3):
        writer.write("raw_canvass", "g/canvass.knock/0/0-100", body, rejected)
    # a replay under the same token with different content (say, re-validated later) is still ignored
    writer.write("raw_canvass", "g/canvass.knock/0/0-100", canvass_rows(7), [])
    db = warehouse.database
    assert client.query(f"SELECT count() FROM {db}.raw_canvass").result_rows == [(100,)]
    for window in ("15m", "1h", "1d"):
        totals = client.query(f"SELECT sum(attempts), sum(contacts) FROM {db}.metrics_precinct_{window}").result_rows
        assert totals == [(100, 25)], window
    raw = client.query(f"SELECT hex(raw), reason_code FROM {db}.rejected_events").result_rows
    assert raw == [(b"\xff{raw".hex().upper(), "invalid_json")]  # the bytes exactly as received
    # a new token is a new batch
    writer.write("raw_canvass", "g/canvass.knock/0/101-150", canvass_rows(50), [])
    assert client.query(f"SELECT sum(attempts) FROM {db}.metrics_state_1d").result_rows == [(150,)]


def test_rollups_merge_unique_doors(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    writer = RawBatchWriter(client, warehouse)
    writer.write("raw_canvass", "t1", canvass_rows(10, "P1"), [])
    writer.write("raw_canvass", "t2", canvass_rows(10, "P2"), [])  # same household ids, other precinct rows
    db = warehouse.database
    per_precinct = client.query(f"SELECT precinct_id, sum(doors) FROM {db}.metrics_precinct_1d GROUP BY precinct_id")
    assert sorted(per_precinct.result_rows) == [("P1", 5), ("P2", 5)]
    # the county merges the uniqExact states: H0..H4 counted once across both precincts
    assert client.query(f"SELECT doors, attempts FROM {db}.metrics_county_1d").result_rows == [(5, 20)]


def test_cluster_rendering() -> None:
    topo = Topology("campaign", "gs_cluster", 1000)
    raw, distributed = RAW_CANVASS.render(topo)
    assert "CREATE TABLE IF NOT EXISTS campaign.raw_canvass_local ON CLUSTER gs_cluster" in raw
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/campaign/raw_canvass_local', '{replica}')" in raw
    assert "replicated_deduplication_window = 1000" in raw
    assert "ENGINE = Distributed(gs_cluster, campaign, raw_canvass_local, rand())" in distributed
    agg = aggregate_table("1h", "UTC").render(topo)[0]
    assert "ReplicatedAggregatingMergeTree(" in agg
    view = aggregate_view("raw_canvass", "UTC").render(topo)[0]
    assert "TO campaign.agg_precinct_15m_local" in view and "FROM campaign.raw_canvass_local" in view
    rollup = rollup_view("1d", "UTC").render(topo)[0]
    assert "TO campaign.agg_precinct_1d_local" in rollup and "FROM campaign.agg_precinct_15m_local" in rollup
    single = RAW_CANVASS.render(Topology("campaign", None, 1000))
    assert len(single) == 1 and "ENGINE = MergeTree()" in single[0] and "ON CLUSTER" not in single[0]


def test_state_wide_ranges_read_the_window_projection_and_agree_with_the_table(
    client: Client, warehouse: Warehouse
) -> None:
    migrate(client, warehouse, "UTC")
    writer = RawBatchWriter(client, warehouse)
    for i, precinct in enumerate(("P1", "P2", "P3")):  # parts written after the projection was added
        writer.write("raw_canvass", f"t{i}", canvass_rows(40, precinct), [])
    db = warehouse.database
    sql = (
        f"SELECT window_start, sum(attempts), sum(contacts) FROM {db}.agg_precinct_{{w}} "
        f"WHERE state = 'IL' AND window_start >= toDateTime('2000-01-01', 'UTC') GROUP BY window_start "
        f"ORDER BY window_start"
    )
    for window in ("15m", "1h"):
        # force_optimize_projection fails the query if ClickHouse cannot answer it from a projection
        projected = client.query(sql.format(w=window), settings={"force_optimize_projection": 1}).result_rows
        plain = client.query(sql.format(w=window), settings={"optimize_use_projections": 0}).result_rows
        assert projected == plain and sum(r[1] for r in plain) == 120, window
    topo = Topology("campaign", "gs_cluster", 1000)
    statements = [s for p in WINDOW_PROJECTIONS for s in p.render(topo)]
    added = "ALTER TABLE campaign.agg_precinct_15m_local ON CLUSTER gs_cluster ADD PROJECTION IF NOT EXISTS"
    assert statements[1].startswith(added)
