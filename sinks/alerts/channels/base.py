"""What every channel is: send one alert to one address, and say whether it worked.

A failure is retryable (try again later: the receiver was down, slow, or asked us to wait) or
permanent (retrying cannot help: the address is wrong, the payload refused). `detail` is stored with
the attempt, so it never holds an address, a URL or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sinks.alerts.alert import Alert
from sinks.alerts.config import ChannelKind

Outcome = Literal["sent", "retryable", "permanent"]
USER_AGENT = "groundswell-alerts/1"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    status_code: int | None = None  # HTTP status or SMTP reply code, when there was one
    retry_after_s: float | None = None  # the receiver's Retry-After, in seconds

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


class Channel(Protocol):
    kind: ChannelKind

    def send(self, alert: Alert, address: str) -> SendResult:
        """Deliver `alert` to `address` (a URL or an email address); never raises for delivery failures."""
        ...
