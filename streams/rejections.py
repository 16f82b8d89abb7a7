"""Reason codes for rejected events, and the slow path that names what is wrong with one.

Only rejected events take this path, so it may decode twice to give a precise reason.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import msgspec

from streams.events import SUPPORTED_SCHEMA_VERSIONS


class Reason(StrEnum):
    OVERSIZE = "oversize"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    EVENT_TYPE_MISMATCH = "event_type_mismatch"
    SUPPORT_WITHOUT_CONTACT = "support_without_contact"
    AMOUNT_WITHOUT_DONATION = "amount_without_donation"
    NO_CONTACT_POINT = "no_contact_point"
    FUTURE_TIMESTAMP = "future_timestamp"
    BEFORE_CAMPAIGN = "before_campaign"
    UNKNOWN_PRECINCT = "unknown_precinct"
    DUPLICATE_EVENT_ID = "duplicate_event_id"
    # A bug of ours, not the producer's: the event still goes to the DLQ with its bytes.
    PROCESSING_ERROR = "processing_error"


class Rejected(Exception):
    """Raised inside validation; carries the reason code and a human-readable text."""

    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


_MISSING = re.compile(r"missing required field `([^`]+)`")
_CONSTRAINT = re.compile(r"Expected `[^`]+` (<=|>=|<|>|of length|matching)")


def classify_decode_failure(raw: bytes, error: Exception) -> Rejected:
    """Turn a failed typed decode into the most specific reason we can name."""
    try:
        generic: Any = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Rejected(Reason.INVALID_JSON, f"not valid UTF-8 JSON: {exc}")
    if not isinstance(generic, dict):
        return Rejected(Reason.NOT_OBJECT, f"expected a JSON object, got {type(generic).__name__}")
    version = generic.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version not in SUPPORTED_SCHEMA_VERSIONS:
        return Rejected(
            Reason.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {version} is not supported (supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)})",
        )
    message = str(error)
    if _MISSING.search(message):
        return Rejected(Reason.MISSING_FIELD, message)
    if "timezone component" in message:
        return Rejected(Reason.INVALID_VALUE, message + " (RFC 3339 times need a zone, e.g. Z)")
    if _CONSTRAINT.match(message):  # right type, value out of range / too long / wrong pattern
        return Rejected(Reason.INVALID_VALUE, message)
    if message.startswith("Expected `"):
        return Rejected(Reason.WRONG_TYPE, message)
    return Rejected(Reason.INVALID_VALUE, message)


def event_id_of(raw: bytes) -> str:
    """Best-effort event_id of a rejected message, for searching the rejected_events table."""
    try:
        generic = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return ""
    if isinstance(generic, dict):
        value = generic.get("event_id")
        if isinstance(value, str):
            return value[:64]
    return ""
