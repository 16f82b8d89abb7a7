"""Shared fixtures: one embedded chDB path per test process (chDB allows one), real brokers per need."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse, connect, warehouse_from_dsn

_databases = itertools.count()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def warehouse(chdb_path: Path) -> Warehouse:
    """A fresh database in the session's chDB: tests do not see each other's tables."""
    return warehouse_from_dsn(f"chdb://{chdb_path}", database=f"test_{next(_databases)}")


@pytest.fixture
def client(warehouse: Warehouse) -> Iterator[Client]:
    c = connect(warehouse)
    yield c
    c.close()
