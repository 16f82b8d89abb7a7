"""API tokens in ClickHouse: digests, roles, regions, expiry and revocation (never the tokens themselves)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse


@dataclass(frozen=True)
class StoredToken:
    token_id: str
    name: str
    role: str
    regions: tuple[str, ...]  # empty: every region
    token_sha256: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None


COLUMNS = [
    "token_id", "name", "role", "regions", "token_sha256", "created_at", "created_by", "expires_at", "revoked_at",
    "version",
]  # fmt: skip


class TokenStore:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._table = warehouse.topology.qualified("api_tokens")

    def save(self, token: StoredToken) -> None:
        """Insert or replace (a newer version wins)."""
        row = [getattr(token, c) for c in COLUMNS[:-1]]
        row[3] = list(token.regions)
        self._client.insert(self._table, [[*row, time.time_ns()]], column_names=COLUMNS)

    def all(self) -> list[StoredToken]:
        rows = self._client.query(f"SELECT {', '.join(COLUMNS[:-1])} FROM {self._table} FINAL").result_rows
        return [
            StoredToken(str(r[0]), str(r[1]), str(r[2]), tuple(r[3]), str(r[4]), _utc(r[5]), str(r[6]),
                        _utc(r[7]) if r[7] else None, _utc(r[8]) if r[8] else None)
            for r in rows
        ]  # fmt: skip

    def get(self, token_id: str) -> StoredToken | None:
        return next((t for t in self.all() if t.token_id == token_id), None)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
