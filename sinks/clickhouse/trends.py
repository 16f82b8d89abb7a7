"""What the trend agent reads and writes: closed hourly windows per precinct, flags, detector state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from clickhouse_connect.driver.client import Client

from models.trends import TrendFlag
from sinks.clickhouse.client import Warehouse

# Per precinct and hour: what the watched metrics are computed from (sinks/clickhouse/schema.py
# DERIVED_METRICS defines the rates once; the detectors need their numerators and denominators).
WINDOW_COLUMNS = (
    "ids", "supporters", "attempts", "contacts", "email_delivered", "email_unique_clicks", "email_unsubscribes",
    "signups",
)  # fmt: skip


@dataclass(frozen=True)
class PrecinctWindow:
    precinct_id: str
    values: dict[str, float]


class TrendStore:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._topology = warehouse.topology

    def _name(self, table: str) -> str:
        return self._topology.qualified(table)

    def first_hour(self) -> datetime | None:
        """The earliest hour with any activity (where a fresh agent starts)."""
        rows = self._client.query(f"SELECT min(window_start), count() FROM {self._name('agg_precinct_1h')}").result_rows
        if not rows or not rows[0][1]:
            return None
        return _utc(rows[0][0])

    def hour(self, start: datetime, end: datetime) -> list[PrecinctWindow]:
        """Per precinct, the window's counts (precincts without activity are absent)."""
        columns = ", ".join(WINDOW_COLUMNS)
        rows = self._client.query(
            f"SELECT precinct_id, {columns} FROM {self._name('metrics_precinct_1h')} "
            f"WHERE window_start >= {{start:DateTime64(3, 'UTC')}} AND window_start < {{end:DateTime64(3, 'UTC')}}",
            parameters={"start": start, "end": end},
        ).result_rows
        totals: dict[str, dict[str, float]] = {}
        for row in rows:
            into = totals.setdefault(str(row[0]), dict.fromkeys(WINDOW_COLUMNS, 0.0))
            for name, value in zip(WINDOW_COLUMNS, row[1:], strict=True):
                into[name] += float(value or 0)
        return [PrecinctWindow(p, v) for p, v in totals.items()]

    def save_flags(self, flags: Sequence[TrendFlag]) -> None:
        if not flags:
            return
        version = time.time_ns()
        columns = [*TrendFlag.__dataclass_fields__, "version"]
        columns[columns.index("region_id")] = "region"
        rows = [[*asdict(f).values(), version + i] for i, f in enumerate(flags)]
        self._client.insert(self._name("trend_flags"), rows, column_names=columns)

    def save_state(self, metric: str, last_window_end: datetime, state: dict[str, Any]) -> None:
        self._client.insert(
            self._topology.qualified(self._topology.local_name("trend_state")),
            [[metric, last_window_end, msgspec.json.encode(state).decode()]],
            column_names=["metric", "last_window_end", "state"],
        )

    def load_state(self, metric: str) -> tuple[datetime, dict[str, Any]] | None:
        rows = self._client.query(
            f"SELECT last_window_end, state FROM {self._topology.qualified(self._topology.local_name('trend_state'))} "
            f"WHERE metric = {{metric:String}} ORDER BY last_window_end DESC, saved_at DESC LIMIT 1",
            parameters={"metric": metric},
        ).result_rows
        if not rows:
            return None
        return _utc(rows[0][0]), msgspec.json.decode(rows[0][1])

    def flags(
        self, regions: frozenset[str] | None, status: str | None, metric: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Flags newest first, filtered on the server to `regions` (None: all)."""
        where = ["1"]
        parameters: dict[str, Any] = {"limit": limit}
        if regions is not None:
            where.append("region IN {regions:Array(String)}")
            parameters["regions"] = sorted(regions)
        if status == "open":
            where.append("status != 'closed'")
        elif status:
            where.append("status = {status:String}")
            parameters["status"] = status
        if metric:
            where.append("metric = {metric:String}")
            parameters["metric"] = metric
        result = self._client.query(
            f"SELECT * EXCEPT version FROM {self._name('trend_flags')} FINAL WHERE {' AND '.join(where)} "
            f"ORDER BY raised_at DESC, flag_id LIMIT {{limit:UInt32}}",
            parameters=parameters,
        )
        return [
            {
                k: (_utc(v).isoformat() if isinstance(v, datetime) else v)
                for k, v in zip(result.column_names, row, strict=True)
            }
            for row in result.result_rows
        ]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
