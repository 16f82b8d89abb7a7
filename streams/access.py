"""Who may call an HTTP endpoint: one check, raised as Faust web errors so every refusal reads the same.

A view calls `access.require(request, roles, action)` and gets the caller's Principal, or the request
ends with 401 (no valid token) or 403 ("role 'regional' may not run SQL"); Faust's View turns the
raised WebError into `{"error": ...}` with that status.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from faust.web import Request
from faust.web.exceptions import NotAuthenticated, PermissionDenied

from streams.auth import Principal

ADMIN: tuple[str, ...] = ("admin",)
SQL_READERS: tuple[str, ...] = ("admin", "statistician")
MODEL_WRITERS: tuple[str, ...] = ("admin", "modeller")
MODEL_READERS: tuple[str, ...] = ("admin", "modeller", "statistician")
ANYONE: tuple[str, ...] = ("admin", "statistician", "modeller", "regional")
UNAUTHENTICATED = "missing or invalid bearer token"


class Access:
    def __init__(self, authenticate: Callable[[str | None], Principal | None]) -> None:
        self._authenticate = authenticate

    def principal(self, request: Request) -> Principal | None:
        """The caller, or None when the request carries no valid, unexpired, unrevoked token."""
        return self._authenticate(request.headers.get("Authorization"))

    def require(self, request: Request, roles: Collection[str] = ANYONE, action: str = "") -> Principal:
        principal = self.principal(request)
        if principal is None:
            raise NotAuthenticated(UNAUTHENTICATED)
        if principal.role not in roles:
            raise PermissionDenied(f"role {principal.role!r} may not {action}")
        return principal
