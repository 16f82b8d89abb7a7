"""Voter-file batches into ClickHouse, and the record of each load.

Every batch insert carries a token naming the file's content and the batch, so re-sending a batch
(a retried HTTP call, a load run twice) inserts nothing new; rows of a later load of a changed file
replace earlier ones by voter_id (ReplacingMergeTree on `version`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.writer import EXACTLY_ONCE_SETTINGS

VOTERS = "voters"
VOTER_FILE_LOADS = "voter_file_loads"


class VoterStore:
    """Blocking; one thread per client."""

    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._topology = warehouse.topology

    def _local(self, name: str) -> str:
        return self._topology.qualified(self._topology.local_name(name))

    def insert_batch(self, load_id: str, version: int, token: str, batch: pa.Table) -> None:
        """Insert validated rows (streams.voter_file.LOADED_SCHEMA). Raises on failure: retry with the same token."""
        if batch.num_rows == 0:
            return
        table = batch.append_column("load_id", pa.array([load_id] * batch.num_rows, pa.string())).append_column(
            "version", pa.array([version] * batch.num_rows, pa.uint64())
        )
        # On a cluster rows go through the Distributed table, which shards them by voter_id.
        target = self._topology.qualified(VOTERS)
        self._client.insert_arrow(
            target, table, settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": token}
        )

    def record_load(
        self,
        load_id: str,
        file_name: str,
        file_sha256: str,
        counts: tuple[int, int, int],
        rejected_by_reason: dict[str, int],
        ignored_columns: list[str],
        started_at: float,
    ) -> None:
        rows_read, rows_loaded, rows_rejected = counts
        self._client.insert(
            self._local(VOTER_FILE_LOADS),
            [[load_id, file_name, file_sha256, rows_read, rows_loaded, rows_rejected, rejected_by_reason,
              ignored_columns, datetime.fromtimestamp(started_at, UTC), datetime.now(UTC)]],
            column_names=["load_id", "file_name", "file_sha256", "rows_read", "rows_loaded", "rows_rejected",
                          "rejected_by_reason", "ignored_columns", "started_at", "finished_at"],
            settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": f"voter-load/{load_id}"},
        )  # fmt: skip

    def count(self) -> int:
        rows = self._client.query(f"SELECT count() FROM {self._topology.qualified(VOTERS)} FINAL").result_rows
        return int(rows[0][0])


def new_version() -> int:
    """Load versions order loads in time (milliseconds), so a later load's rows win."""
    return int(time.time() * 1000)
