"""The dashboard's reads over the warehouse: a place's time series, its children's totals over a period,
IDs per precinct for pace, and what changed lately (for the live stream).

Only the columns the page shows are read: ClickHouse then drops the other merges from the metric
views, and the exact-unique merges (doors, human opens) are what make a query slow at the state level
(bench/dashboard.py, docs/dashboard.md). Rates come from sinks/clickhouse/schema.py DERIVED_METRICS,
the one place where they are defined. Every query takes the principal's regions and filters on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.schema import DERIVED_METRICS, MEASURES, RAW_TABLES
from streams.web.places import KEY_COLUMNS, Place

# Measures and rates the page shows. Rates travel with their numerators and denominators so that the
# page can print "54.2% of 1,204 IDs". Every column read costs time at the state level (docs/dashboard.md).
SHOWN_MEASURES = ("attempts", "contacts", "ids", "supporters", "signups", "email_unique_clicks", "email_unsubscribes")
SHOWN_DERIVED = ("contact_rate", "support_rate", "email_delivered", "email_click_rate", "email_unsubscribe_rate")
SHOWN = (*SHOWN_MEASURES, *SHOWN_DERIVED)
# What the derived metrics above are computed from, besides the shown measures.
_DERIVED_INPUTS = ("email_sends", "email_bounces_hard", "email_bounces_soft")
_MERGES = {m.name: m.merge for m in MEASURES}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    return value


@dataclass(frozen=True)
class Scope:
    """Which rows a query may read: a place's keys and, for regional principals, their regions."""

    place: Place
    regions: frozenset[str] | None

    def where(self, params: dict[str, Any]) -> list[str]:
        clauses = []
        for i, (column, value) in enumerate(zip(KEY_COLUMNS[self.place.level], self.place.keys, strict=True)):
            clauses.append(f"{column} = {{k{i}:String}}")
            params[f"k{i}"] = value
        if self.regions is not None:
            clauses.append("region IN {regions:Array(String)}")
            params["regions"] = sorted(self.regions)
        return clauses


class DashboardQueries:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._db = warehouse.topology.database
        self._topology = warehouse.topology

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        result = self._client.query(sql, parameters=params)
        names = result.column_names
        return [{n: _json_value(v) for n, v in zip(names, row, strict=True)} for row in result.result_rows]

    def _figures_sql(self, table: str, keys: str, where: list[str], group_by: str | None = None) -> str:
        """Merged measures and derived rates of `table`'s rows matching `where`, grouped by `keys`."""
        merged = ", ".join(f"{_MERGES[name]} AS {name}" for name in (*SHOWN_MEASURES, *_DERIVED_INPUTS))
        derived = ", ".join(f"{DERIVED_METRICS[name]} AS {name}" for name in DERIVED_METRICS if name in SHOWN_DERIVED)
        return (
            f"SELECT {keys}, {', '.join(SHOWN)} FROM (SELECT *, {derived} FROM ("
            f"SELECT {keys}, {merged} FROM {self._topology.qualified(table)} "
            f"WHERE {' AND '.join(where)} GROUP BY {group_by or keys})) ORDER BY {keys}"
        )

    def series(self, scope: Scope, window: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The place's windows in [start, end): the figures of /api/v1/metrics?level=&id=&window=, computed
        here from the aggregates directly (the view's other merges cost planning time)."""
        params: dict[str, Any] = {"start": start, "end": end}
        where = [*scope.where(params), "window_start >= {start:DateTime64(3, 'UTC')}",
                 "window_start < {end:DateTime64(3, 'UTC')}"]  # fmt: skip
        return self._rows(self._figures_sql(f"agg_precinct_{window}", "window_start", where), params)

    def totals(
        self, scope: Scope, levels: Sequence[str], start: datetime | None, end: datetime | None
    ) -> dict[str, list[dict[str, Any]]]:
        """Totals over [start, end) of the daily aggregates inside the scope, per place of each of `levels`
        (nested levels, e.g. a county and its precincts: one scan, grouping sets).

        Exact uniques are merged over the whole period, so a period of one day equals that day's row of
        /api/v1/metrics?window=1d.
        """
        params: dict[str, Any] = {}
        where = scope.where(params)
        if start is not None:
            where.append("window_start >= {start:DateTime64(3, 'UTC')}")
            params["start"] = start
        if end is not None:
            where.append("window_start < {end:DateTime64(3, 'UTC')}")
            params["end"] = end
        deepest = max(levels, key=lambda level: len(KEY_COLUMNS[level]))
        keys = ", ".join(KEY_COLUMNS[deepest])
        sets = ", ".join(f"({', '.join(KEY_COLUMNS[level])})" for level in levels)
        rows = self._rows(self._figures_sql("agg_precinct_1d", keys, where, f"GROUPING SETS ({sets})"), params)
        # A row of a shallower grouping set has empty strings in the deeper key columns (never empty in data).
        by_level: dict[str, list[dict[str, Any]]] = {level: [] for level in levels}
        for row in rows:
            depth = sum(1 for column in KEY_COLUMNS[deepest] if row[column] != "")
            level = next(lv for lv in levels if len(KEY_COLUMNS[lv]) == depth)
            by_level[level].append({k: v for k, v in row.items() if k in KEY_COLUMNS[level] or k in SHOWN})
        return by_level

    def precinct_ids(
        self, regions: frozenset[str] | None, start: datetime | None, recent_from: datetime, today: datetime
    ) -> tuple[dict[str, tuple[float, float]], datetime | None]:
        """Per precinct: (IDs since `start`, IDs in [recent_from, today)); and the first day with any IDs."""
        params: dict[str, Any] = {"recent_from": recent_from, "today": today}
        where = ["ids > 0"]
        if regions is not None:
            where.append("region IN {regions:Array(String)}")
            params["regions"] = sorted(regions)
        if start is not None:
            where.append("window_start >= {start:DateTime64(3, 'UTC')}")
            params["start"] = start
        rows = self._client.query(
            "SELECT precinct_id, sum(ids), sumIf(ids, window_start >= {recent_from:DateTime64(3, 'UTC')} "
            "AND window_start < {today:DateTime64(3, 'UTC')}), min(window_start) "
            f"FROM {self._topology.qualified('agg_precinct_1d')} WHERE {' AND '.join(where)} GROUP BY precinct_id",
            parameters=params,
        ).result_rows
        first = min((_utc(r[3]) for r in rows), default=None)
        return {str(r[0]): (float(r[1]), float(r[2])) for r in rows}, first

    def newest_ingested(self, since: datetime | None, recent_parts_only: bool) -> dict[str, datetime]:
        """Per region, the newest `ingested_at` over the raw tables (rows ingested at or after `since`).

        With `recent_parts_only`, only the parts written since `since` are read: new rows always arrive in
        new parts, so a poll costs what was inserted since the last one, not a scan of every raw row.
        """
        params: dict[str, Any] = {"db": self._db}
        selects = []
        for i, table in enumerate(t.name for t in RAW_TABLES.values()):
            where = []
            if since is not None:
                where.append("ingested_at >= {since:DateTime64(3, 'UTC')}")
                params["since"] = since
                if recent_parts_only:
                    params[f"t{i}"] = self._topology.local_name(table)
                    where.append(
                        f"_part IN (SELECT name FROM system.parts WHERE database = {{db:String}} "
                        f"AND table = {{t{i}:String}} AND active "
                        "AND modification_time >= toDateTime({since:DateTime64(3, 'UTC')}))"
                    )
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            selects.append(f"SELECT region, max(ingested_at) AS newest FROM {self._topology.qualified(table)} "
                           f"{clause} GROUP BY region")  # fmt: skip
        rows = self._client.query(
            f"SELECT region, max(newest) FROM ({' UNION ALL '.join(selects)}) GROUP BY region", parameters=params
        ).result_rows
        return {str(r[0]): _utc(r[1]) for r in rows}

    def flag_marks(self) -> dict[str, tuple[int, datetime]]:
        """Per region, how many trend-flag rows there are and the newest update (changes when a flag does)."""
        rows = self._client.query(
            f"SELECT region, count(), max(updated_at) FROM {self._topology.qualified('trend_flags')} GROUP BY region"
        ).result_rows
        return {str(r[0]): (int(r[1]), _utc(r[2])) for r in rows}


def group_places(level: str, rows: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Rows of `totals` as (key values, figures)."""
    keys = KEY_COLUMNS[level]
    return [(tuple(str(row[k]) for k in keys), {k: v for k, v in row.items() if k not in keys}) for row in rows]
