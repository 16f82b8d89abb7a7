"""The alert tables, as `Table` objects for the lead's migration (rendered for a node or a cluster).

- `alerts`: one row per alert (one message to one person on one channel), ReplacingMergeTree on
  `version`: each status change inserts the whole row again and reads use FINAL. Not partitioned,
  so all versions of an alert can merge; sharded by alert id on a cluster so they meet on one shard.
- `alert_deliveries`: every attempt with its outcome (append-only).
- `alert_acks`: every acknowledgement (append-only; the first one per alert is the ack).
"""

from __future__ import annotations

from sinks.clickhouse.tables import Table

TS = "DateTime64(3, 'UTC')"
LC = "LowCardinality(String)"

ALERTS = Table(
    "alerts",
    (
        ("alert_id", "String"), ("flag_id", "String"), ("source", LC), ("event", LC), ("region", "String"),
        ("level", LC), ("unit_id", "String"), ("metric", LC), ("severity", LC), ("recipient", "String"),
        ("channel", LC), ("route", LC), ("status", LC), ("reason", "String"), ("payload", "String"),
        ("attempts", "UInt32"), ("created_at", TS), ("due_at", TS), ("sent_at", f"Nullable({TS})"),
        ("version", "UInt64"), ("updated_at", f"{TS} DEFAULT now64(3)"),
    ),
    order_by="alert_id",
    engine="ReplacingMergeTree(version)",
    sharding_key="cityHash64(alert_id)",
)  # fmt: skip

ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        ("alert_id", "String"), ("attempt", "UInt32"), ("recipient", "String"), ("channel", LC),
        ("idempotency_key", "String"), ("started_at", TS), ("finished_at", TS), ("outcome", LC),
        ("detail", "String"), ("status_code", "Nullable(UInt16)"), ("worker", "String"),
    ),
    order_by="(alert_id, attempt, started_at)",
    partition_by="toYYYYMM(started_at)",
    sharding_key="cityHash64(alert_id)",
)  # fmt: skip

ALERT_ACKS = Table(
    "alert_acks",
    (
        ("alert_id", "String"), ("flag_id", "String"), ("region", "String"), ("acked_by", "String"),
        ("acked_at", TS),
    ),
    order_by="(alert_id, acked_at)",
    sharding_key="cityHash64(alert_id)",
)  # fmt: skip

ALERT_TABLES = (ALERTS, ALERT_DELIVERIES, ALERT_ACKS)
