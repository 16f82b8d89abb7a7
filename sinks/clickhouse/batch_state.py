"""BEFORE/AFTER batch marks kept in ClickHouse (`ingest_batch_state`), newest version per partition wins."""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.exactly_once import BatchMark, PartitionKey, Phase

_COLUMNS = ["state_key", "consumer_group", "topic", "partition", "first_offset", "last_offset", "state", "version"]


def _state_key(group: str, key: PartitionKey) -> str:
    return f"{group}/{key.topic}/{key.partition}"


class ClickHouseBatchStateStore:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._table = warehouse.topology.qualified(warehouse.topology.local_name("ingest_batch_state"))

    def load(self, group: str, keys: Sequence[PartitionKey]) -> dict[PartitionKey, BatchMark]:
        if not keys:
            return {}
        by_state_key = {_state_key(group, k): k for k in keys}
        rows = self._client.query(
            f"SELECT state_key, argMax(first_offset, version), argMax(last_offset, version), "
            f"argMax(state, version), max(version) FROM {self._table} "
            "WHERE state_key IN {keys:Array(String)} GROUP BY state_key",
            parameters={"keys": list(by_state_key)},
        ).result_rows
        return {
            by_state_key[state_key]: BatchMark(int(first), int(last), Phase(state), int(version))
            for state_key, first, last, state, version in rows
        }

    def save(self, group: str, marks: dict[PartitionKey, BatchMark]) -> None:
        rows = [
            [_state_key(group, k), group, k.topic, k.partition, m.first, m.last, m.phase.value, m.version]
            for k, m in marks.items()
        ]
        self._client.insert(self._table, rows, column_names=_COLUMNS, settings={"async_insert": 0})
