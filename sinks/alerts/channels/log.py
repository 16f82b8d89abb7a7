"""The log channel: one line per alert on the `groundswell.alerts` logger (headline, ids and link only)."""

from __future__ import annotations

import logging

from sinks.alerts.alert import Alert
from sinks.alerts.channels.base import SendResult
from sinks.alerts.config import ChannelKind

LOGGER = logging.getLogger("groundswell.alerts")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


class LogChannel:
    kind = ChannelKind.LOG

    def __init__(self, logger: logging.Logger = LOGGER) -> None:
        self._logger = logger

    def send(self, alert: Alert, address: str) -> SendResult:
        payload = alert.payload
        self._logger.log(
            LEVELS.get(alert.severity, logging.WARNING),
            "alert %s for %s [%s] %s: %s",
            alert.alert_id,
            alert.recipient,
            alert.severity,
            payload["title"],
            payload["link"],
        )
        return SendResult("sent", "logged")
