"""Versioned, idempotent migrations rendered from sinks/clickhouse/schema.py.

Each migration is a list of IF NOT EXISTS statements plus a checksum; `migrate` applies what is
pending and records it. Running it again changes nothing. A recorded migration whose rendering
now differs (say, GROUNDSWELL_TIMEZONE changed under the daily windows) is refused, not re-run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from sinks.alerts.tables import ALERT_TABLES
from sinks.clickhouse import schema
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.tables import Topology
from sinks.clickhouse.trends import trend_flag_additions


class MigrationDrift(RuntimeError):
    """An applied migration no longer matches what the settings render."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    render: Callable[[Topology, str], list[str]]  # (topology, timezone) -> statements

    def statements(self, topo: Topology, timezone: str) -> list[str]:
        return self.render(topo, timezone)

    def checksum(self, topo: Topology, timezone: str) -> str:
        text = "\n;\n".join(self.statements(topo, timezone))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ingest_spine(topo: Topology, timezone: str) -> list[str]:
    statements: list[str] = []
    for table in (*schema.RAW_TABLES.values(), schema.REJECTED_EVENTS, schema.INGEST_BATCH_STATE):
        statements += table.render(topo)
    for window in schema.WINDOWS:
        statements += schema.aggregate_table(window, timezone).render(topo)
    for raw in schema.RAW_TABLES.values():
        statements += schema.aggregate_view(raw.name, timezone).render(topo)
    for window in ("1h", "1d"):
        statements += schema.rollup_view(window, timezone).render(topo)
    for level in schema.LEVELS:
        for window in schema.WINDOWS:
            statements += schema.metrics_view(level, window).render(topo)
    return statements


def _voter_file(topo: Topology, timezone: str) -> list[str]:
    return [*schema.VOTERS.render(topo), *schema.VOTER_FILE_LOADS.render(topo)]


def _models(topo: Topology, timezone: str) -> list[str]:
    statements: list[str] = []
    for table in (schema.MODEL_VERSIONS, schema.MODEL_ALIASES, schema.VOTER_SCORES, schema.VOTER_SCORES_LATEST,
                  schema.MODEL_METRICS, schema.MODEL_STATE):  # fmt: skip
        statements += table.render(topo)
    return statements + schema.VOTER_SCORES_LATEST_VIEW.render(topo)


def _linking(topo: Topology, timezone: str) -> list[str]:
    statements = [s for table in schema.LINKING_TABLES for s in table.render(topo)]
    for level in schema.LEVELS:
        for window in schema.WINDOWS:
            statements += schema.linked_metrics_view(level, window, timezone).render(topo)
    return statements + schema.PEOPLE_VIEW.render(topo)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "ingest spine: raw, rejected, aggregates, metrics", _ingest_spine),
    Migration(2, "voter file", _voter_file),
    Migration(3, "access: API tokens", lambda topo, timezone: schema.API_TOKENS.render(topo)),
    Migration(
        4,
        "trends: flags and detector state",
        lambda topo, timezone: [*schema.TREND_FLAGS.render(topo), *schema.TREND_STATE.render(topo)],
    ),
    Migration(5, "models: versions, aliases, scores, metrics, online state", _models),
    Migration(
        6, "alerts: outbox, deliveries, acks", lambda topo, timezone: [s for t in ALERT_TABLES for s in t.render(topo)]
    ),
    Migration(7, "linking: signup identities, links, reviews, linked events, people", _linking),
    Migration(
        8,
        "aggregates: projections ordered by window_start",
        lambda topo, timezone: [s for p in schema.WINDOW_PROJECTIONS for s in p.render(topo)],
    ),
    Migration(9, "trends: flag groups and canvasser teams on trend_flags", trend_flag_additions),
)


def applied_migrations(client: Client, warehouse: Warehouse) -> dict[int, str]:
    for statement in schema.SCHEMA_MIGRATIONS.render(warehouse.topology):
        client.command(statement)
    table = warehouse.topology.qualified(warehouse.topology.local_name("schema_migrations"))
    rows = client.query(f"SELECT version, any(checksum) FROM {table} GROUP BY version").result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def migrate(client: Client, warehouse: Warehouse, timezone: str) -> list[int]:
    """Apply pending migrations; return the versions applied now (empty when up to date)."""
    topo = warehouse.topology
    done = applied_migrations(client, warehouse)
    applied_now = []
    for migration in MIGRATIONS:
        checksum = migration.checksum(topo, timezone)
        if migration.version in done:
            if done[migration.version] != checksum:
                raise MigrationDrift(
                    f"migration {migration.version} ({migration.description}) was applied with other settings "
                    f"(checksum {done[migration.version]}, now {checksum}); the time zone or cluster of an "
                    "existing warehouse cannot change in place: use a new database or data directory"
                )
            continue
        for statement in migration.statements(topo, timezone):
            client.command(statement)
        client.insert(
            topo.qualified(topo.local_name("schema_migrations")),
            [[migration.version, migration.description, checksum]],
            column_names=["version", "description", "checksum"],
        )
        applied_now.append(migration.version)
    return applied_now
