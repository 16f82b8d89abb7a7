"""Bearer tokens for the HTTP API. Tokens are kept only as SHA-256 digests and compared in constant time.

Issue #6 adds roles per user, expiry and revocation; this module is where they plug in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # admin | statistician | modeller | regional
    regions: frozenset[str] | None = None  # None: all regions


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return "gs_" + secrets.token_urlsafe(32)


class TokenAuthority:
    def __init__(self) -> None:
        self._tokens: list[tuple[bytes, Principal]] = []

    def register(self, token: str, principal: Principal) -> None:
        self._tokens.append((_digest(token), principal))

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = _digest(authorization.removeprefix("Bearer ").strip())
        found = None
        for digest, principal in self._tokens:  # no early exit: timing says nothing about which matched
            if hmac.compare_digest(digest, offered):
                found = principal
        return found
