"""The scoring agent's reader: every canvass row with a voter is read once, whatever order partitions arrive in."""

from __future__ import annotations

import time
import uuid

import msgspec
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.scoring import Position, ScoringSource
from sinks.clickhouse.writer import RawBatchWriter
from streams.rows import CanvassRow

T0 = 1_790_000_000.0


def rows(partition: int, offsets: range) -> bytes:
    return msgspec.json.Encoder().encode_lines([
        CanvassRow(uuid.uuid4(), T0 + o, T0 + o, "test", "", f"V{partition}-{o}", "", "P1", "Cook", "North", "IL",
                   "C1", "", "", "", "walk", "not_home", None, [], None, None, None, partition, o)
        for o in offsets
    ])  # fmt: skip


def read_all(source: ScoringSource, limit: int) -> list[tuple[int, int]]:
    """Read to the end in batches of `limit`, advancing positions as the scoring agent does."""
    positions: dict[int, Position] = {}
    seen: list[tuple[int, int]] = []
    while batch := source.read(positions, limit):
        columns = batch.columns
        for part, offset, ingested in zip(
            columns["kafka_partition"], columns["kafka_offset"], columns["ingested_at"], strict=True
        ):
            seen.append((int(part), int(offset)))
            positions[int(part)] = Position(int(offset), ingested)
    return seen


def test_a_partition_first_seen_after_a_cut_batch_is_read_from_its_start(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    writer = RawBatchWriter(client, warehouse)
    writer.write("raw_canvass", "p1-early", rows(1, range(0, 30)), [])  # partition 1, inserted first
    time.sleep(0.05)  # ingested_at has millisecond precision: make the later insert strictly later
    writer.write("raw_canvass", "p0", rows(0, range(0, 50)), [])
    writer.write("raw_canvass", "p1-late", rows(1, range(30, 40)), [])
    # A limit of 50 cuts the first batch after partition 0: partition 1 is then unknown, and its first
    # 30 rows were inserted before partition 0's position.
    seen = read_all(ScoringSource(client, warehouse), limit=50)
    expected = [(0, o) for o in range(50)] + [(1, o) for o in range(40)]
    assert sorted(seen) == expected and len(seen) == len(set(seen))
