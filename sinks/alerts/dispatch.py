"""Flags in, alerts stored: what the trend agent calls after each tick.

Reads the routing history of the flags (and their groups) and units at hand, folds county and precinct
flags into their region's group (grouping.py: one movement, one alert), routes, and writes the planned
alerts to the outbox in one insert. Idempotent: routing the same flags again plans nothing new (alert ids are
derived from the flag, event, recipient and channel, and the history holds them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from models.trends.flags import TrendFlag
from models.trends.quality import QualityFlag
from sinks.alerts.alert import Alert
from sinks.alerts.clock import Clock, utc_now
from sinks.alerts.config import AlertConfig
from sinks.alerts.grouping import group_signals
from sinks.alerts.privacy import Redactor
from sinks.alerts.router import AlertRouter
from sinks.alerts.signals import Signal, quality_signal, trend_signal
from sinks.alerts.store import AlertStore


class AlertDispatcher:
    def __init__(self, config: AlertConfig, timezone: str, secret: bytes, clock: Clock = utc_now) -> None:
        """`secret`: the deployment's hashing secret (Settings.hashing_secret), keys PII pseudonyms."""
        self._config = config
        self._router = AlertRouter(config, timezone)
        self._redact = Redactor(secret)
        self._clock = clock

    def trend_signals(self, flags: Sequence[TrendFlag]) -> list[Signal]:
        return [trend_signal(f, self._config.severity, self._redact) for f in flags]

    def quality_signals(self, flags: Sequence[tuple[QualityFlag, str]]) -> list[Signal]:
        """`flags`: each quality flag with its canvasser's region."""
        return [quality_signal(f, region, self._config.severity, self._redact) for f, region in flags]

    def submit(self, store: AlertStore, signals: Sequence[Signal], now: datetime | None = None) -> list[Alert]:
        """Route `signals` and store the resulting alerts; returns them (suppressed ones included)."""
        if not signals:
            return []
        now = now or self._clock()
        since = now - timedelta(minutes=self._config.cooldown_minutes)
        flags = {s.flag_id for s in signals} | {s.group_id for s in signals if s.group_id}
        history = store.history(flags, {s.unit_id for s in signals}, since)
        alerts = self._router.route(group_signals(signals, history), history, now)
        store.enqueue(alerts)
        return alerts

    def submit_trend_flags(
        self, store: AlertStore, flags: Sequence[TrendFlag], now: datetime | None = None
    ) -> list[Alert]:
        return self.submit(store, self.trend_signals(flags), now)

    def submit_quality_flags(
        self, store: AlertStore, flags: Sequence[tuple[QualityFlag, str]], now: datetime | None = None
    ) -> list[Alert]:
        return self.submit(store, self.quality_signals(flags), now)
