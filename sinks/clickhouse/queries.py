"""Read queries behind the HTTP API, over the metric views of sinks/clickhouse/schema.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.schema import LEVEL_ID_COLUMN, LEVELS, WINDOWS

MAX_ROWS = 20_000
# readonly last: chDB applies these in order, and once readonly=1 is set no other setting may change.
READ_ONLY_SETTINGS = {"max_execution_time": 30, "max_result_rows": 100_000, "result_overflow_mode": "throw",
                      "max_memory_usage": 4 << 30, "readonly": 1}  # fmt: skip


class QueryError(ValueError):
    """A bad query parameter; the message is safe to show to the caller."""


@dataclass(frozen=True)
class MetricsQuery:
    level: str
    window: str
    id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    regions: frozenset[str] | None = None  # a regional principal's regions; None: every region

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise QueryError(f"level must be one of {list(LEVELS)}, got {self.level!r}")
        if self.window not in WINDOWS:
            raise QueryError(f"window must be one of {list(WINDOWS)}, got {self.window!r}")
        if self.start and self.end and self.start > self.end:
            raise QueryError("from must not be after to")
        if self.regions is not None and self.level == "state":
            raise QueryError("state totals include other regions: ask for level=region, county or precinct")

    def sql(self) -> tuple[str, dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {}
        if self.id is not None:
            where.append(f"{LEVEL_ID_COLUMN[self.level]} = {{id:String}}")
            params["id"] = self.id
        if self.regions is not None:
            where.append("region IN {regions:Array(String)}")
            params["regions"] = sorted(self.regions)
        if self.start is not None:
            where.append("window_start >= {start:DateTime64(3, 'UTC')}")
            params["start"] = self.start
        if self.end is not None:
            where.append("window_start < {end:DateTime64(3, 'UTC')}")
            params["end"] = self.end
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = ", ".join((*LEVELS[self.level], "window_start"))
        sql = f"SELECT * FROM metrics_{self.level}_{self.window} {clause} ORDER BY {order} LIMIT {MAX_ROWS + 1}"
        return sql, params


def fetch_metrics(client: Client, query: MetricsQuery) -> tuple[list[dict[str, Any]], bool]:
    """Rows as dicts, and whether the result was cut at MAX_ROWS."""
    sql, params = query.sql()
    result = client.query(sql, parameters=params)
    names = result.column_names
    rows = [dict(zip(names, row, strict=True)) for row in result.result_rows]
    return rows[:MAX_ROWS], len(rows) > MAX_ROWS


# Formats a statistician may ask for besides JSON, rendered by ClickHouse itself (same on chDB and a
# server): (ClickHouse format, HTTP content type).
RAW_SQL_FORMATS = {
    "csv": ("CSVWithNames", "text/csv"),  # UTF-8, as ClickHouse writes it
    "arrow": ("ArrowStream", "application/vnd.apache.arrow.stream"),
}
# NULL as an empty CSV field (pandas reads it as NaN); ClickHouse's default is \N. Before `readonly`,
# which would refuse settings that follow it.
_CSV_SETTINGS = {"format_csv_null_representation": ""}


def run_read_only_raw(client: Client, sql: str, fmt: str) -> bytes:
    """A statistician's SQL in one of RAW_SQL_FORMATS, with the same readonly=1 and limits as JSON."""
    clickhouse_format, _ = RAW_SQL_FORMATS[fmt]
    settings = {**(_CSV_SETTINGS if fmt == "csv" else {}), **READ_ONLY_SETTINGS}
    return client.raw_query(sql, settings=settings, fmt=clickhouse_format)


def run_read_only(client: Client, sql: str) -> tuple[list[str], list[list[Any]]]:
    """A statistician's SQL, with ClickHouse's readonly=1 and resource limits."""
    result = client.query(sql, settings=READ_ONLY_SETTINGS)
    return list(result.column_names), [list(r) for r in result.result_rows]
