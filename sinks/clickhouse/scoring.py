"""What the scoring agent reads: accepted canvass events (with their voters' file attributes) after a position.

The raw canvass table is the exactly-once record of what happened, so the agent reads it rather
than Kafka: a replay from a checkpoint sees exactly the same rows in exactly the same order
(partition, offset). Per partition, the position is the last offset taken and its `ingested_at`;
every later row of that partition was inserted later, so `ingested_at >= min(positions)` plus the
offset condition finds a known partition's new rows and nothing else. A partition with no position
yet is read whole: its first rows may have been inserted before another partition's position
(a batch cut by LIMIT takes partitions in order), so a time bound would skip them for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse

# Voter-file columns a scoring FeatureSpec may use (models/scoring/features.py DEFAULT_SPEC).
VOTER_COLUMNS = ("party", "gender", "birth_year", "registration_date", "vote_history", "zip5")
EVENT_COLUMNS = ("kafka_partition", "kafka_offset", "ingested_at", "event_id", "voter_id", "support_level",
                 "contact_type", "precinct_id", "county", "region")  # fmt: skip
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Position:
    offset: int
    ingested_at: datetime


@dataclass
class CanvassBatch:
    """Columns (lists) of the rows read, in (partition, offset) order; `on_file` says the voter was found."""

    columns: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns.get("voter_id", []))


class ScoringSource:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._db = warehouse.topology.database

    def read(self, positions: dict[int, Position], limit: int) -> CanvassBatch:
        """Up to `limit` canvass events with a voter_id after `positions`, with their voters' attributes."""
        since = min((p.ingested_at for p in positions.values()), default=EPOCH)
        after = " OR ".join(
            f"(kafka_partition = {int(part)} AND kafka_offset > {int(pos.offset)})" for part, pos in positions.items()
        )
        known = ", ".join(str(int(p)) for p in positions)
        new_partitions = f"kafka_partition NOT IN ({known})" if known else "1"
        where = (
            f"voter_id != '' AND ((ingested_at >= {{since:DateTime64(3, 'UTC')}} AND ({after or '0'})) "
            f"OR {new_partitions})"
        )
        voter_cols = ", ".join(f"v.{c} AS {c}" for c in VOTER_COLUMNS)
        sql = f"""
            SELECT {", ".join(f"c.{c} AS {c}" for c in EVENT_COLUMNS)}, {voter_cols}, v.voter_id != '' AS on_file
            FROM (
                SELECT {", ".join(EVENT_COLUMNS)} FROM {self._db}.raw_canvass WHERE {where}
                ORDER BY kafka_partition, kafka_offset LIMIT {int(limit)}
            ) AS c
            LEFT JOIN (
                SELECT voter_id, {", ".join(VOTER_COLUMNS)} FROM {self._db}.voters FINAL
                WHERE voter_id IN (SELECT voter_id FROM {self._db}.raw_canvass WHERE {where})
            ) AS v ON c.voter_id = v.voter_id
            ORDER BY kafka_partition, kafka_offset
        """
        result = self._client.query(sql, parameters={"since": since}, settings={"join_use_nulls": 1})
        names = result.column_names
        rows = result.result_rows
        return CanvassBatch({name: [row[i] for row in rows] for i, name in enumerate(names)})
