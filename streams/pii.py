"""Keyed hashing of emails and phones: analytics tables hold HMAC-SHA256 digests, never raw values."""

from __future__ import annotations

import hashlib
import hmac
import re

_NON_DIGITS = re.compile(r"\D+")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_phone(phone: str) -> str:
    """Digits only, with the North American country code added to bare 10-digit numbers."""
    digits = _NON_DIGITS.sub("", phone)
    return "1" + digits if len(digits) == 10 else digits


class PiiHasher:
    """HMAC with the deployment secret, so a leaked table cannot be reversed by hashing a phone book."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        self._key = secret

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def email(self, email: str | None) -> str:
        return self._digest("email", normalize_email(email)) if email else ""

    def phone(self, phone: str | None) -> str:
        return self._digest("phone", normalize_phone(phone)) if phone else ""
