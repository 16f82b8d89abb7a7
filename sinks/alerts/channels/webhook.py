"""Generic JSON webhook: POSTs the alert's content as is, with its id as the idempotency key.

Headers: `Idempotency-Key` (the convention of the IETF draft "The Idempotency-Key HTTP Header Field",
https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/) and
`X-Groundswell-Alert-Id`, both the alert id: a receiver that sees a key twice has seen the alert
(which happens only if a worker stopped between sending and recording it: docs/alerts.md).
"""

from __future__ import annotations

import json

from sinks.alerts.alert import Alert
from sinks.alerts.channels.base import SendResult
from sinks.alerts.channels.http import post_json
from sinks.alerts.config import ChannelKind


def idempotency_headers(alert: Alert) -> dict[str, str]:
    return {"Idempotency-Key": alert.idempotency_key, "X-Groundswell-Alert-Id": alert.alert_id}


class WebhookChannel:
    kind = ChannelKind.WEBHOOK

    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s

    def send(self, alert: Alert, address: str) -> SendResult:
        body = json.dumps(alert.payload, sort_keys=True, allow_nan=False).encode()
        return post_json(address, body, idempotency_headers(alert), self._timeout)
