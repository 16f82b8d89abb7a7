"""One way to reach ClickHouse: a clickhouse-connect client from a DSN (chdb:///path or http(s)://…)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.tables import Topology

DEFAULT_DATABASE = "groundswell"


@dataclass(frozen=True)
class Warehouse:
    """Where the tables live and how DDL is rendered for them."""

    dsn: str
    topology: Topology

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    @property
    def database(self) -> str:
        return self.topology.database


def warehouse_from_dsn(
    dsn: str, cluster: str | None = None, deduplication_window: int = 10_000, database: str | None = None
) -> Warehouse:
    if database is None:
        database = DEFAULT_DATABASE if dsn.startswith("chdb:") else urlsplit(dsn).path.strip("/") or DEFAULT_DATABASE
    if dsn.startswith("chdb:") and cluster:
        raise ValueError("an embedded chdb:// warehouse cannot be rendered for a cluster")
    return Warehouse(dsn, Topology(database, cluster, deduplication_window))


def connect(warehouse: Warehouse, **settings: Any) -> Client:
    """A new client. Embedded: several clients on one path share the engine inside this process."""
    if warehouse.embedded:
        client = clickhouse_connect.get_client(dsn=warehouse.dsn, settings=settings or None)
        client.command(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}")
        client.database = warehouse.database
        return client
    parts = urlsplit(warehouse.dsn)
    client = clickhouse_connect.get_client(
        host=parts.hostname or "localhost",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        secure=parts.scheme == "https",
        settings=settings or None,
    )
    client.command(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}{warehouse.topology.on_cluster}")
    client.database = warehouse.database
    return client
