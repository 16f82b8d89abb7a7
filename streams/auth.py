"""Bearer tokens and roles for the HTTP API.

Tokens are random (`gs_` + 256 bits) and kept only as SHA-256 digests: in memory here, and in
the `api_tokens` table for the ones created through the API (sinks/clickhouse/tokens.py). A stored
token carries a role, for regional staff the regions they may see, an optional expiry and a
revocation time; `authenticate` refuses an expired or revoked token. Workers reload the stored
tokens on a timer (streams/app.py), so a revocation reaches every worker within that period.

Roles (BRIEF §2.4):
- admin: everything, including tokens and voter-file loads;
- statistician: every region, SQL;
- modeller: model operations, plus what a statistician reads;
- regional: their regions only, enforced on the server for every API.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

ROLES = ("admin", "statistician", "modeller", "regional")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # one of ROLES
    regions: frozenset[str] | None = None  # None: all regions
    token_id: str | None = None

    def may_see_region(self, region: str) -> bool:
        return self.regions is None or region in self.regions

    @property
    def sees_everything(self) -> bool:
        return self.regions is None


@dataclass(frozen=True)
class TokenGrant:
    """A stored token as the authority needs it (no secret: the digest only)."""

    token_id: str
    digest_hex: str
    principal: Principal
    expires_at: datetime | None
    revoked_at: datetime | None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "gs_" + secrets.token_urlsafe(32)


def new_token_id() -> str:
    return secrets.token_hex(8)


class TokenAuthority:
    """Who a bearer token is. Bootstrap tokens (config, demo) are registered; stored ones are replaced
    wholesale by `load`."""

    def __init__(self) -> None:
        self._bootstrap: dict[str, Principal] = {}
        self._stored: dict[str, TokenGrant] = {}

    def register(self, token: str, principal: Principal) -> None:
        if principal.role not in ROLES:
            raise ValueError(f"unknown role {principal.role!r}; known: {', '.join(ROLES)}")
        self._bootstrap[token_digest(token)] = principal

    def load(self, grants: Iterable[TokenGrant]) -> None:
        self._stored = {g.digest_hex: g for g in grants}

    def authenticate(self, authorization: str | None, now: datetime | None = None) -> Principal | None:
        """The principal of `Authorization: Bearer <token>`, or None (missing, unknown, expired or revoked)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        digest = token_digest(authorization.removeprefix("Bearer ").strip())
        principal = self._bootstrap.get(digest)
        if principal is not None:
            return principal
        grant = self._stored.get(digest)
        if grant is None or grant.revoked_at is not None:
            return None
        if grant.expires_at is not None and (now or datetime.now(UTC)) >= grant.expires_at:
            return None
        return grant.principal
