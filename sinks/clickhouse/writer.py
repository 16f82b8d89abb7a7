"""Token-carrying inserts of one batch into a raw table, its side tables and `rejected_events`.

Every insert carries the batch's deduplication token (all but the raw one suffixed with their
table), with block deduplication switched on for the materialized views too, so retrying a batch,
or replaying it after a crash, changes nothing that was already counted. Side tables (a signup
batch's `signup_identities`) are written before the raw rows: whoever reads a raw row finds its
side rows already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from streams.rows import RejectedRow

EXACTLY_ONCE_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "async_insert": 0,
}
# Serial JSON parsing was faster for our batch sizes on 2 cores (docs/benchmarks.md).
RAW_INSERT_SETTINGS = {**EXACTLY_ONCE_SETTINGS, "input_format_parallel_parsing": 0}
REJECTED_COLUMNS = list(RejectedRow.__struct_fields__)


class RawBatchWriter:
    """Blocking; call from one thread per client (the ingest loop's writer thread)."""

    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._topology = warehouse.topology

    @property
    def client(self) -> Client:
        return self._client

    def _table(self, name: str) -> str:
        return self._topology.qualified(self._topology.local_name(name))

    def write(
        self,
        table: str,
        token: str,
        json_lines: bytes,
        rejected: Sequence[RejectedRow],
        side: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Insert the batch; `side` is (table, JSONEachRow) pairs. Raises on failure: retry with the same token."""
        for side_table, side_lines in side:
            if side_lines:
                self._client.raw_insert(
                    self._table(side_table),
                    None,
                    side_lines,
                    settings={**RAW_INSERT_SETTINGS, "insert_deduplication_token": f"{token}/{side_table}"},
                    fmt="JSONEachRow",
                )
        if json_lines:
            self._client.raw_insert(
                self._table(table),
                None,
                json_lines,
                settings={**RAW_INSERT_SETTINGS, "insert_deduplication_token": token},
                fmt="JSONEachRow",
            )
        if rejected:
            self._client.insert(
                self._table("rejected_events"),
                [_row(r) for r in rejected],
                column_names=REJECTED_COLUMNS,
                settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": token + "/rejected"},
            )


def _row(r: RejectedRow) -> list[object]:
    row: list[object] = [getattr(r, name) for name in REJECTED_COLUMNS]
    row[REJECTED_COLUMNS.index("received_at")] = datetime.fromtimestamp(r.received_at, UTC)
    return row
