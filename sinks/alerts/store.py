"""The alert outbox in ClickHouse: alerts, their delivery attempts, and acknowledgements.

Alerts are stored before anything is sent. A status change inserts a new version of the alert's
row (ReplacingMergeTree), and every read uses FINAL, so the newest version wins even before merges.
Routing writes versions 1 and 2; delivery writes nanosecond clocks (alert.py), so a re-routed flag
can never put a delivered alert back to pending.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from sinks.alerts.alert import ALERT_STATUSES, Alert, AlertStatus
from sinks.alerts.config import ChannelKind
from sinks.alerts.history import PastAlert, RoutingHistory
from sinks.alerts.tables import ALERT_ACKS, ALERT_DELIVERIES, ALERTS
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.tables import Table

ALERT_COLUMNS = [
    "alert_id", "flag_id", "source", "event", "region", "level", "unit_id", "metric", "severity", "recipient",
    "channel", "route", "status", "reason", "payload", "attempts", "created_at", "due_at", "sent_at", "version",
]  # fmt: skip
ATTEMPT_COLUMNS = [
    "alert_id", "attempt", "recipient", "channel", "idempotency_key", "started_at", "finished_at", "outcome",
    "detail", "status_code", "worker",
]  # fmt: skip
ACK_COLUMNS = ["alert_id", "flag_id", "region", "acked_by", "acked_at"]


def _types(table: Table, columns: list[str]) -> list[str]:
    declared = dict(table.columns)
    return [declared[c].split(" DEFAULT ")[0] for c in columns]


_TYPES = {
    ALERTS.name: _types(ALERTS, ALERT_COLUMNS),
    ALERT_DELIVERIES.name: _types(ALERT_DELIVERIES, ATTEMPT_COLUMNS),
    ALERT_ACKS.name: _types(ALERT_ACKS, ACK_COLUMNS),
}
AttemptOutcome = Literal["sent", "retryable", "permanent", "interrupted", "unroutable"]


@dataclass(frozen=True)
class DeliveryAttempt:
    alert_id: str
    attempt: int
    recipient: str
    channel: ChannelKind
    idempotency_key: str
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    detail: str
    status_code: int | None
    worker: str


class AckOutcome(StrEnum):
    ACKED = "acked"
    ALREADY_ACKED = "already_acked"
    NOT_FOUND = "not_found"
    # The alert exists but is outside the caller's regions. An API should answer it like not_found,
    # so that regional staff cannot probe for other regions' alert ids.
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class AckResult:
    outcome: AckOutcome
    alert_id: str
    acked_by: str | None = None
    acked_at: datetime | None = None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _alert(row: Sequence[Any]) -> Alert:
    r = dict(zip(ALERT_COLUMNS, row, strict=True))
    return Alert(
        alert_id=r["alert_id"],
        flag_id=r["flag_id"],
        source=r["source"],
        event=r["event"],
        region=r["region"],
        level=r["level"],
        unit_id=r["unit_id"],
        metric=r["metric"],
        severity=r["severity"],
        recipient=r["recipient"],
        channel=ChannelKind(r["channel"]),
        route=r["route"],
        status=r["status"],
        reason=r["reason"],
        created_at=_utc(r["created_at"]),
        due_at=_utc(r["due_at"]),
        payload=json.loads(r["payload"]),
        attempts=int(r["attempts"]),
        sent_at=_utc(r["sent_at"]) if r["sent_at"] is not None else None,
        version=int(r["version"]),
    )


def _row(alert: Alert) -> list[Any]:
    return [
        alert.alert_id, alert.flag_id, alert.source, alert.event, alert.region, alert.level, alert.unit_id,
        alert.metric, alert.severity, alert.recipient, alert.channel.value, alert.route, alert.status, alert.reason,
        json.dumps(alert.payload, sort_keys=True, allow_nan=False), alert.attempts, alert.created_at, alert.due_at,
        alert.sent_at, alert.version,
    ]  # fmt: skip


class AlertStore:
    """All reads and writes of the alert tables. One per ClickHouse client (and so per thread)."""

    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        topology = warehouse.topology
        self._alerts = topology.qualified("alerts")
        self._deliveries = topology.qualified("alert_deliveries")
        self._acks = topology.qualified("alert_acks")
        # An insert is acknowledged only once written (never buffered by an async insert), and on a
        # cluster only once it reached the shard: the outbox must hold before anything is sent.
        self._insert_settings: dict[str, Any] = {"async_insert": 0}
        if topology.cluster:
            self._insert_settings["insert_distributed_sync"] = 1
        self._last_version = 0

    def _version(self) -> int:
        """Strictly increasing within this store, and above anything routing writes."""
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version

    def _insert(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        if rows:
            # Giving the types saves clickhouse-connect a DESCRIBE per insert (~2.4 of ~13 ms on chDB).
            self._client.insert(
                table, rows, column_names=columns, column_type_names=_TYPES[table.rpartition(".")[2]],
                settings=self._insert_settings,
            )  # fmt: skip

    def _select(self, where: str, parameters: dict[str, Any], tail: str = "") -> list[Alert]:
        rows = self._client.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {self._alerts} FINAL WHERE {where} {tail}",
            parameters=parameters,
        ).result_rows
        return [_alert(r) for r in rows]

    # --- routing ------------------------------------------------------------------------------------

    def history(self, flag_ids: Collection[str], unit_ids: Collection[str], since: datetime) -> RoutingHistory:
        """Alerts about these flags (ever), and about these units since `since` (for cool-down)."""
        if not flag_ids and not unit_ids:
            return RoutingHistory()
        alerts = self._select(
            "flag_id IN {flags:Array(String)} OR (unit_id IN {units:Array(String)} "
            "AND created_at >= {since:DateTime64(3, 'UTC')})",
            {"flags": sorted(flag_ids), "units": sorted(unit_ids), "since": since},
        )
        return RoutingHistory(PastAlert.of(a) for a in alerts)

    def enqueue(self, alerts: Sequence[Alert]) -> None:
        """The outbox write: routed alerts are stored (pending, held or suppressed) before any is sent."""
        self._insert(self._alerts, [_row(a) for a in alerts], ALERT_COLUMNS)

    # --- delivery -----------------------------------------------------------------------------------

    def save(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Store new versions of `alerts` (status changes) in one insert; returns them as stored."""
        stored = [replace(a, version=self._version()) for a in alerts]
        self._insert(self._alerts, [_row(a) for a in stored], ALERT_COLUMNS)
        return stored

    def update(self, alert: Alert, **changes: Any) -> Alert:
        """Store a new version of one alert with `changes` (status, attempts, due_at, reason, sent_at)."""
        return self.save([replace(alert, **changes)])[0]

    def due(self, now: datetime, limit: int) -> list[Alert]:
        return self._select(
            "status = 'pending' AND due_at <= {now:DateTime64(3, 'UTC')}",
            {"now": now, "limit": limit},
            "ORDER BY due_at, created_at, alert_id LIMIT {limit:UInt32}",
        )

    def in_flight(self) -> list[Alert]:
        """Alerts marked `sending` whose outcome was never recorded (their worker stopped)."""
        return self._select("status = 'sending'", {}, "ORDER BY due_at, alert_id")

    def next_due(self) -> datetime | None:
        rows = self._client.query(
            f"SELECT min(due_at), count() FROM {self._alerts} FINAL WHERE status = 'pending'"
        ).result_rows
        return _utc(rows[0][0]) if rows and rows[0][1] else None

    def record_attempts(self, attempts: Sequence[DeliveryAttempt]) -> None:
        rows = []
        for attempt in attempts:
            row = [getattr(attempt, c) for c in ATTEMPT_COLUMNS]
            row[ATTEMPT_COLUMNS.index("channel")] = attempt.channel.value
            rows.append(row)
        self._insert(self._deliveries, rows, ATTEMPT_COLUMNS)

    def attempts(self, alert_id: str) -> list[DeliveryAttempt]:
        rows = self._client.query(
            f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM {self._deliveries} WHERE alert_id = {{id:String}} "
            "ORDER BY attempt, started_at",
            parameters={"id": alert_id},
        ).result_rows
        return [
            DeliveryAttempt(
                alert_id=r[0], attempt=int(r[1]), recipient=r[2], channel=ChannelKind(r[3]), idempotency_key=r[4],
                started_at=_utc(r[5]), finished_at=_utc(r[6]), outcome=r[7], detail=r[8],
                status_code=None if r[9] is None else int(r[9]), worker=r[10],
            )
            for r in rows
        ]  # fmt: skip

    # --- reading and acknowledging ------------------------------------------------------------------

    def get(self, alert_id: str) -> Alert | None:
        found = self._select("alert_id = {id:String}", {"id": alert_id})
        return found[0] if found else None

    def ack(
        self, alert_id: str, by_principal: str, allowed_regions: frozenset[str] | None, now: datetime | None = None
    ) -> AckResult:
        """Acknowledge an alert. `allowed_regions`: the caller's regions (None: every region)."""
        alert = self.get(alert_id)
        if alert is None:
            return AckResult(AckOutcome.NOT_FOUND, alert_id)
        if allowed_regions is not None and alert.region not in allowed_regions:
            return AckResult(AckOutcome.FORBIDDEN, alert_id)
        earlier = self._acks_of([alert_id]).get(alert_id)
        if earlier is not None:
            return AckResult(AckOutcome.ALREADY_ACKED, alert_id, *earlier)
        at = now or datetime.now(UTC)
        self._insert(
            self._acks,
            [[alert_id, alert.flag_id, alert.region, by_principal, at]],
            ACK_COLUMNS,
        )
        # Two acks racing both land; the earliest one is the ack everyone reads.
        first = self._acks_of([alert_id]).get(alert_id, (by_principal, at))
        outcome = AckOutcome.ACKED if first[0] == by_principal else AckOutcome.ALREADY_ACKED
        return AckResult(outcome, alert_id, *first)

    def _acks_of(self, alert_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        if not alert_ids:
            return {}
        rows = self._client.query(
            f"SELECT alert_id, argMin(acked_by, acked_at), min(acked_at) FROM {self._acks} "
            "WHERE alert_id IN {ids:Array(String)} GROUP BY alert_id",
            parameters={"ids": list(alert_ids)},
        ).result_rows
        return {str(r[0]): (str(r[1]), _utc(r[2])) for r in rows}

    def alerts(
        self,
        regions: frozenset[str] | None,
        status: AlertStatus | None = None,
        flag_id: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Alerts newest first, JSON-ready, filtered here to `regions` (None: all), with their ack."""
        where = ["1"]
        parameters: dict[str, Any] = {"limit": limit}
        if regions is not None:
            where.append("region IN {regions:Array(String)}")
            parameters["regions"] = sorted(regions)
        if status is not None:
            if status not in ALERT_STATUSES:
                raise ValueError(f"unknown status {status!r}; known: {ALERT_STATUSES}")
            where.append("status = {status:String}")
            parameters["status"] = status
        if flag_id is not None:
            where.append("flag_id = {flag:String}")
            parameters["flag"] = flag_id
        found = self._select(" AND ".join(where), parameters, "ORDER BY created_at DESC, alert_id LIMIT {limit:UInt32}")
        acks = self._acks_of([a.alert_id for a in found])
        listed = []
        for alert in found:
            acked = acks.get(alert.alert_id)
            listed.append(
                {
                    "alert_id": alert.alert_id, "flag_id": alert.flag_id, "source": alert.source,
                    "event": alert.event, "region": alert.region, "level": alert.level, "unit_id": alert.unit_id,
                    "metric": alert.metric, "severity": alert.severity, "recipient": alert.recipient,
                    "channel": alert.channel.value, "route": alert.route, "status": alert.status,
                    "reason": alert.reason, "attempts": alert.attempts, "created_at": alert.created_at.isoformat(),
                    "due_at": alert.due_at.isoformat(), "sent_at": alert.sent_at.isoformat() if alert.sent_at else None,
                    "acked_by": acked[0] if acked else None, "acked_at": acked[1].isoformat() if acked else None,
                    "content": alert.payload,
                }
            )  # fmt: skip
        return listed
