"""The control channel (`groundswell.control`): announcements every worker must act on.

Messages are JSON objects with a `type` (e.g. model promotions in issue #3). Components register
a handler per type; the Faust agent in streams/app.py dispatches each message to it. A message
that is not JSON, has no type, or has no handler is counted and logged, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)
ControlHandler = Callable[[dict[str, Any]], Awaitable[None]]


class ControlDispatcher:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._handlers: dict[str, ControlHandler] = {}
        self._messages = Counter(
            "groundswell_control_messages_total", "Control messages by type and outcome", ["type", "outcome"],
            registry=registry,
        )  # fmt: skip

    def register(self, message_type: str, handler: ControlHandler) -> None:
        if message_type in self._handlers:
            raise ValueError(f"a handler for control messages of type {message_type!r} is already registered")
        self._handlers[message_type] = handler

    async def dispatch(self, raw: bytes) -> str:
        """Handle one message; return the outcome (handled, invalid, unhandled, failed)."""
        try:
            message = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or message is None:
            self._messages.labels("", "invalid").inc()
            log.warning("ignored a control message that is not a JSON object with a string `type`")
            return "invalid"
        handler = self._handlers.get(kind)
        if handler is None:
            self._messages.labels(kind, "unhandled").inc()
            log.info("no handler for control message type %r on this worker", kind)
            return "unhandled"
        try:
            await handler(message)
        except Exception:
            self._messages.labels(kind, "failed").inc()
            log.exception("control handler for %r failed", kind)
            return "failed"
        self._messages.labels(kind, "handled").inc()
        return "handled"
