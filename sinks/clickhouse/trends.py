"""What the trend agent reads and writes: closed hourly windows per precinct, flags, detector state.

Reads: the per-precinct hourly aggregates; the support split of an hour's IDs (those the champion
model scored, with Σp and Σp(1-p), and the rest); signups per precinct, hour and UTM source; canvass
figures per canvasser-day for the data-quality checks. Writes: `trend_flags` (trend and quality
flags, upserted on flag_id) and `trend_state` (the detectors' JSON state).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from clickhouse_connect.driver.client import Client

from models.trends import TrendFlag
from models.trends.quality import QualityFlag
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.tables import Topology

# Per precinct and hour: what the watched metrics are computed from (sinks/clickhouse/schema.py
# DERIVED_METRICS defines the rates once; the detectors need their numerators and denominators).
WINDOW_COLUMNS = (
    "ids", "supporters", "attempts", "contacts", "email_delivered", "email_unique_clicks", "email_unsubscribes",
    "signups",
)  # fmt: skip


# Scores come from the scoring agent's model (streams/scoring.py MODEL): each ID's score by the
# version that was champion when the event was scored (voter_scores.alias, from model_aliases then),
# one per event; a replayed event keeps its newest score.
SCORING_MODEL = "support"
# An event is scored after it is ingested, hence after it occurred (less the ingest's future tolerance):
# older scores cannot be for the hour's events, and skipping them is a cheap prefilter on voter_scores.
SCORED_AFTER_MARGIN = timedelta(days=1)
SUPPORT_SPLIT_COLUMNS = ("ids", "supporters", "scored_ids", "scored_supporters", "score_sum", "score_var")
# A GPS fix whose own accuracy radius is wider than this cannot place the canvasser at the door
# (DOMAIN.md: > 100 m from the address is suspicious; the warehouse has no address geocodes).
GPS_EXCEPTION_M = 100.0
QUICK_GAP_S = 120  # "doors minutes apart": consecutive doors under two minutes apart
# Columns added to trend_flags by migration 9 (flag groups; the team of a canvasser-day flag).
TREND_FLAG_ADDED_COLUMNS = (("group_id", "String DEFAULT ''"), ("team_id", "String DEFAULT ''"))
HOUR_FILTER = "occurred_at >= {start:DateTime64(3, 'UTC')} AND occurred_at < {end:DateTime64(3, 'UTC')}"


def trend_flag_additions(topo: Topology, timezone: str) -> list[str]:
    """Migration 9: trend_flags gains group_id and team_id (local and, on a cluster, Distributed)."""
    tables = [topo.local_name("trend_flags"), *(["trend_flags"] if topo.cluster else [])]
    return [
        f"ALTER TABLE {topo.qualified(table)}{topo.on_cluster} ADD COLUMN IF NOT EXISTS {name} {ctype}"
        for table in tables
        for name, ctype in TREND_FLAG_ADDED_COLUMNS
    ]


@dataclass(frozen=True)
class PrecinctWindow:
    precinct_id: str
    values: dict[str, float]


@dataclass(frozen=True)
class SignupCount:
    hour: datetime  # UTC start of the hour
    precinct_id: str
    source: str  # utm_source as sent (the agent normalises it)
    count: int


@dataclass(frozen=True)
class CanvasserDayRow:
    """One canvasser's walk canvassing on one local day (models/trends/quality.py CanvasserDays)."""

    canvasser_id: str
    team_id: str
    region: str  # where most of the day's knocks were
    day: date
    attempts: int
    contacts: int
    door_gaps: int
    quick_gaps: int
    gps_checked: int
    gps_exceptions: int


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

    def support_split(self, start: datetime, end: datetime) -> dict[str, dict[str, float]]:
        """Per precinct: the hour's IDs and supporters, and of those the ones the champion scored, with
        Σp and Σp(1-p) of their scores (precincts without IDs are absent)."""
        canvass, scores = self._name("raw_canvass"), self._name("voter_scores")
        ids = f"{HOUR_FILTER} AND support_level IS NOT NULL"
        sql = f"""
            SELECT c.precinct_id, count(), countIf(c.support_level IN (1, 2)), countIf(s.scored = 1),
                   countIf(s.scored = 1 AND c.support_level IN (1, 2)), sumIf(s.p, s.scored = 1),
                   sumIf(s.p * (1 - s.p), s.scored = 1)
            FROM (SELECT event_id, precinct_id, support_level FROM {canvass} WHERE {ids}) AS c
            LEFT JOIN (
                SELECT event_id, least(greatest(toFloat64(argMax(score, scored_at)), 0), 1) AS p,
                       toUInt8(1) AS scored
                FROM {scores}
                WHERE model = {{model:String}} AND alias = 'champion'
                  AND scored_at >= {{scored_since:DateTime64(3, 'UTC')}}
                  AND voter_id IN (SELECT voter_id FROM {canvass} WHERE {ids} AND voter_id != '')
                GROUP BY event_id
            ) AS s ON c.event_id = s.event_id
            GROUP BY c.precinct_id
        """
        parameters = {"start": start, "end": end, "model": SCORING_MODEL, "scored_since": start - SCORED_AFTER_MARGIN}
        rows = self._client.query(sql, parameters=parameters).result_rows
        return {
            str(row[0]): {name: float(value or 0) for name, value in zip(SUPPORT_SPLIT_COLUMNS, row[1:], strict=True)}
            for row in rows
        }

    def signups(self, start: datetime, end: datetime) -> list[SignupCount]:
        """Signups per UTC hour, precinct and utm_source in [start, end)."""
        rows = self._client.query(
            f"SELECT toStartOfHour(occurred_at) AS hour, precinct_id, utm_source, count() "
            f"FROM {self._name('raw_signups')} WHERE {HOUR_FILTER} GROUP BY hour, precinct_id, utm_source",
            parameters={"start": start, "end": end},
        ).result_rows
        return [SignupCount(_utc(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def signup_source_totals(self, start: datetime, end: datetime) -> dict[str, int]:
        """Signups per utm_source in [start, end): what decides which sources are watched on their own."""
        rows = self._client.query(
            f"SELECT utm_source, count() FROM {self._name('raw_signups')} WHERE {HOUR_FILTER} GROUP BY utm_source",
            parameters={"start": start, "end": end},
        ).result_rows
        return {str(source): int(n) for source, n in rows}

    def canvasser_days(self, start: datetime, end: datetime, timezone: str) -> list[CanvasserDayRow]:
        """Walk canvassing per canvasser and local day in [start, end): attempts and contacts, the gaps
        between consecutive doors (a door is a household's first knock of the day), GPS fixes."""
        canvass = self._name("raw_canvass")
        day = "toDate(occurred_at, {timezone:String})"
        household = "if(household_id != '', household_id, if(voter_id != '', voter_id, toString(event_id)))"
        walks = f"contact_type = 'walk' AND canvasser_id != '' AND {HOUR_FILTER}"
        sql = f"""
            SELECT a.canvasser_id, a.team, a.region, a.day, a.attempts, a.contacts,
                   length(d.times) - 1, arrayCount(gap -> gap < {QUICK_GAP_S * 1000},
                                                   arrayPopFront(arrayDifference(d.times))),
                   d.gps_checked, d.gps_exceptions
            FROM (
                SELECT canvasser_id, {day} AS day, topK(1)(team_id)[1] AS team, topK(1)(region)[1] AS region,
                       count() AS attempts, countIf(result = 'canvassed') AS contacts
                FROM {canvass} WHERE {walks} GROUP BY canvasser_id, day
            ) AS a
            INNER JOIN (
                SELECT canvasser_id, day, arraySort(groupArray(toUnixTimestamp64Milli(first_knock))) AS times,
                       sum(fixed) AS gps_checked, sum(fixed AND far) AS gps_exceptions
                FROM (
                    SELECT canvasser_id, {day} AS day, {household} AS household, min(occurred_at) AS first_knock,
                           max(gps_lat IS NOT NULL) AS fixed, max(ifNull(gps_accuracy_m, 0) > {GPS_EXCEPTION_M}) AS far
                    FROM {canvass} WHERE {walks} GROUP BY canvasser_id, day, household
                )
                GROUP BY canvasser_id, day
            ) AS d ON a.canvasser_id = d.canvasser_id AND a.day = d.day
            ORDER BY a.day, a.canvasser_id
        """
        rows = self._client.query(sql, parameters={"start": start, "end": end, "timezone": timezone}).result_rows
        return [CanvasserDayRow(str(r[0]), str(r[1]), str(r[2]), r[3], *(int(v) for v in r[4:])) for r in rows]

    def save_flags(self, flags: Sequence[TrendFlag]) -> None:
        self._insert_flags([asdict(f) for f in flags])

    def save_quality_flags(self, flags: Sequence[tuple[QualityFlag, str]], timezone: str) -> None:
        """Canvasser-day flags (each with the canvasser's region of the day) as rows of trend_flags."""
        self._insert_flags([quality_flag_row(flag, region, ZoneInfo(timezone)) for flag, region in flags])

    def _insert_flags(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        version = time.time_ns()
        columns = [*rows[0], "version"]
        columns[columns.index("region_id")] = "region"
        values = [[*row.values(), version + i] for i, row in enumerate(rows)]
        self._client.insert(self._name("trend_flags"), values, column_names=columns)

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


def quality_flag_row(flag: QualityFlag, region: str, zone: ZoneInfo) -> dict[str, Any]:
    """A canvasser-day flag in trend_flags' columns: the unit is the canvasser, the window the day; the
    statistic and threshold are -ln p and -ln of the Bonferroni level it beat, so statistic >= threshold
    as for a CUSUM. Ids only (canvasser, team), never names."""
    day_start = datetime.combine(flag.day, datetime.min.time(), zone)
    day_end = datetime.combine(flag.day + timedelta(days=1), datetime.min.time(), zone)
    tail = min(max(flag.p_value, 1e-300), 1.0 - 1e-16)
    return {
        "flag_id": flag.flag_id,
        "status": "new",
        "metric": f"quality:{flag.check}",
        "level": "canvasser",
        "unit_id": flag.canvasser_id,
        "region_id": region,
        "direction": "down" if flag.check == "contact_rate_low" else "up",
        "effect": flag.observed - flag.limit,
        "effect_kind": "difference",
        "baseline": flag.limit,
        "observed": flag.observed,
        "volume": float(flag.total),
        "z_score": -NormalDist().inv_cdf(tail),  # the one-sided z with this tail
        "p_value": flag.p_value,
        "statistic": -math.log(max(flag.p_value, 1e-300)),
        "threshold": -math.log(flag.p_value_limit),
        "onset": day_start,
        "raised_at": day_end,
        "window_start": day_start,
        "window_end": day_end,
        "group_id": "",
        "team_id": flag.team_id,
    }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
