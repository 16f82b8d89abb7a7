"""One alert: one message about one flag event, to one person, on one channel.

Its id is derived from (flag, event, severity, recipient, channel), so routing the same flag again
(a replayed agent tick, a restarted worker) yields the same id, and the id doubles as the
idempotency key receivers see (the webhook header, the email's Message-ID).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sinks.alerts.config import ChannelKind
from sinks.alerts.content import Event
from sinks.alerts.severity import Severity

AlertStatus = Literal["pending", "sending", "sent", "failed", "suppressed"]
ALERT_STATUSES: tuple[AlertStatus, ...] = ("pending", "sending", "sent", "failed", "suppressed")
Route = Literal["rule", "escalation"]

# Row versions (ReplacingMergeTree keeps the highest). Routing writes small fixed versions, delivery
# writes nanosecond clocks: a re-routed alert can never overwrite a delivery outcome, and a planned
# alert replaces a suppressed one with the same id (its cool-down is over).
SUPPRESSED_VERSION = 1
PLANNED_VERSION = 2


def alert_id(flag_id: str, event_key: str, recipient: str, channel: ChannelKind) -> str:
    text = "\x1f".join((flag_id, event_key, recipient, channel.value))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def event_key(event: Event, severity: Severity) -> str:
    """Raised and escalated alerts of one severity are one event; so is a close."""
    return "close" if event == "closed" else f"raise:{severity}"


@dataclass(frozen=True)
class Alert:
    alert_id: str
    flag_id: str
    source: str  # trend or quality
    event: Event
    region: str
    level: str
    unit_id: str
    metric: str
    severity: Severity
    recipient: str  # a staff id from the config, never an address
    channel: ChannelKind
    route: Route
    status: AlertStatus
    reason: str  # why held, suppressed or failed; empty when there is nothing to say
    created_at: datetime
    due_at: datetime  # not sent before this (quiet hours, backoff)
    payload: dict[str, Any] = field(compare=False, repr=False)
    attempts: int = 0
    sent_at: datetime | None = None
    version: int = PLANNED_VERSION

    @property
    def idempotency_key(self) -> str:
        return self.alert_id

    @property
    def is_raise(self) -> bool:
        return self.event != "closed"
