"""Sends stored alerts: due ones in order, with retries and backoff, each attempt recorded.

A pass takes the due alerts (at most `limit`) and marks them `sending` with their attempt number (one
insert); then, one alert at a time, sends it and records the attempt with its outcome (one insert:
this record is what recovery trusts); then stores every alert's new status (one insert): `sent`,
`pending` again with the next due time, or `failed` (a permanent failure, or the channel's last
attempt). Nothing is sent that was not stored first (the router's outbox write).

`recover` (run before the first pass, and after a pass that failed on ClickHouse) settles alerts left
in `sending`:
- their attempt is recorded: apply that outcome; nothing is sent again;
- no attempt recorded: the worker stopped before or during the send, or between the send and its
  record. It is recorded as `interrupted` and sent again, with the same idempotency key (the webhook's
  Idempotency-Key header, the email's Message-ID), so a receiver can drop a copy. The time between a
  send and the insert of its record (milliseconds) is the only window in which an alert can arrive
  twice: delivery is at-least-once there and exactly-once everywhere else.

One deliverer runs at a time (the worker that runs the trend agent): two would both see a pending
alert as due. Channels are called one alert at a time, from this thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sinks.alerts.alert import Alert
from sinks.alerts.channels.base import Channel, Outcome, SendResult
from sinks.alerts.clock import Clock, utc_now
from sinks.alerts.config import AlertConfig, ChannelKind
from sinks.alerts.store import AlertStore, AttemptOutcome, DeliveryAttempt

log = logging.getLogger(__name__)
# Channels where a repeat is harmless (a second log line): their attempts are recorded once per pass,
# not one insert per alert, since the at-least-once window costs nothing there.
REPEATABLE = frozenset({ChannelKind.LOG})


@dataclass
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    recovered: int = 0

    def add(self, other: DeliveryReport) -> None:
        self.attempted += other.attempted
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.recovered += other.recovered


class AlertDeliverer:
    def __init__(
        self,
        store: AlertStore,
        config: AlertConfig,
        channels: Mapping[ChannelKind, Channel],
        timezone: str = "UTC",
        clock: Clock = utc_now,
        worker: str = "",
    ) -> None:
        """`timezone`: the campaign's, for quiet hours; `worker`: recorded with each attempt."""
        self._store = store
        self._config = config
        self._channels = channels
        self._zone = ZoneInfo(timezone)
        self._clock = clock
        self._worker = worker
        self._recovered = False

    # --- start-up -----------------------------------------------------------------------------------

    def recover(self) -> int:
        """Settle alerts left in `sending` by a stopped worker (see the module docstring)."""
        settled: list[Alert] = []
        interrupted: list[DeliveryAttempt] = []
        now = self._clock()
        for alert in self._store.in_flight():
            recorded = [a for a in self._store.attempts(alert.alert_id) if a.attempt == alert.attempts]
            if recorded:
                settled.append(self._settled(alert, _replayed(recorded[-1])))
            else:
                interrupted.append(self._attempt(alert, now, now, "interrupted", "worker stopped during this attempt"))
                settled.append(
                    replace(alert, status="pending", due_at=now, reason="re-sent after an interrupted attempt")
                )
        self._store.record_attempts(interrupted)
        self._store.save(settled)
        self._recovered = True
        return len(settled)

    # --- sending ------------------------------------------------------------------------------------

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Send every alert due now (at most `limit`). A channel's failure never raises; a ClickHouse one
        does, and the next pass starts with `recover`, since alerts may have been left `sending`."""
        report = DeliveryReport()
        try:
            if not self._recovered:
                report.recovered = self.recover()
            due = self._store.due(self._clock(), limit)
            report.attempted = len(due)
            for alert in self._deliver(due):
                if alert.status == "sent":
                    report.sent += 1
                elif alert.status == "failed":
                    report.failed += 1
                else:
                    report.retrying += 1
        except Exception:
            self._recovered = False
            raise
        return report

    def _deliver(self, due: list[Alert]) -> list[Alert]:
        """Mark the batch `sending` (one insert), then per alert: send and record the attempt (one insert:
        what recovery trusts), then store every outcome (one insert)."""
        targets: dict[str, tuple[Channel, str]] = {}
        unroutable: list[Alert] = []
        for alert in due:
            member = self._config.member(alert.recipient)
            address = member.channels.address(alert.channel) if member else None
            channel = self._channels.get(alert.channel)
            if address is None or channel is None:
                unroutable.append(alert)  # the person or channel left the configuration after routing
            else:
                targets[alert.alert_id] = (channel, address)
        settled = self._fail_unroutable(unroutable)
        sending = self._store.save(
            [replace(a, status="sending", attempts=a.attempts + 1) for a in due if a.alert_id in targets]
        )
        deferred: list[DeliveryAttempt] = []
        for alert in sending:
            channel, address = targets[alert.alert_id]
            started = self._clock()
            try:
                result = channel.send(alert, address)
            except Exception as exc:  # a channel bug must not stop delivery of the others
                log.exception("alert channel %s raised on alert %s", alert.channel.value, alert.alert_id)
                result = SendResult("retryable", f"channel error: {type(exc).__name__}")
            attempt = self._attempt(alert, started, self._clock(), result.outcome, result.detail, result.status_code)
            if alert.channel in REPEATABLE:
                deferred.append(attempt)
            else:
                self._store.record_attempts([attempt])
            settled.append(self._settled(alert, result))
        self._store.record_attempts(deferred)
        return self._store.save(settled)

    def _fail_unroutable(self, alerts: list[Alert]) -> list[Alert]:
        detail = "recipient or channel no longer configured"
        now = self._clock()
        numbered = [replace(a, attempts=a.attempts + 1) for a in alerts]
        self._store.record_attempts([self._attempt(a, now, now, "unroutable", detail) for a in numbered])
        return [replace(a, status="failed", reason=detail) for a in numbered]

    def _settled(self, alert: Alert, result: SendResult) -> Alert:
        """The alert after attempt number `alert.attempts` ended with `result` (not stored yet)."""
        now = self._clock()
        policy = self._config.retry.of(alert.channel)
        if result.ok:
            return replace(alert, status="sent", sent_at=now, reason="")
        if result.outcome == "permanent" or alert.attempts >= policy.max_attempts:
            why = "permanent failure" if result.outcome == "permanent" else f"gave up after {alert.attempts} attempts"
            log.warning("alert %s to %s via %s failed: %s (%s)", alert.alert_id, alert.recipient, alert.channel.value,
                        why, result.detail)  # fmt: skip
            return replace(alert, status="failed", reason=f"{why}: {result.detail}")
        wait = policy.delay(alert.attempts, alert.alert_id, result.retry_after_s)
        due_at = self._outside_quiet_hours(alert, now + timedelta(seconds=wait))
        return replace(alert, status="pending", due_at=due_at, reason=f"retrying: {result.detail}")

    def _outside_quiet_hours(self, alert: Alert, due_at: datetime) -> datetime:
        """A retry that would fall in the recipient's quiet hours waits for their end, as routing would have
        it; critical alerts and escalations keep their time."""
        member = self._config.member(alert.recipient)
        if member is None or member.quiet_hours is None or alert.severity == "critical" or alert.route == "escalation":
            return due_at
        return member.quiet_hours.until(due_at, self._zone) or due_at

    def _attempt(
        self,
        alert: Alert,
        started: datetime,
        finished: datetime,
        outcome: AttemptOutcome,
        detail: str,
        status_code: int | None = None,
    ) -> DeliveryAttempt:
        """The record of attempt number `alert.attempts`."""
        return DeliveryAttempt(
            alert.alert_id, alert.attempts, alert.recipient, alert.channel, alert.idempotency_key, started, finished,
            outcome, detail, status_code, self._worker,
        )  # fmt: skip

    # --- running ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_s: float = 1.0, limit: int = 100) -> DeliveryReport:
        """Deliver until `stop` is set: a loop for a dedicated thread (with its own ClickHouse client)."""
        total = DeliveryReport()
        while not stop.is_set():
            try:
                report = self.deliver_due(limit)
                total.add(report)
            except Exception:  # ClickHouse unreachable, say: try again at the next poll, never die
                log.exception("alert delivery pass failed; retrying in %.1f s", poll_s)
                stop.wait(poll_s)
                continue
            if report.attempted < limit:  # a full batch means more may be due already
                stop.wait(self._idle_wait(poll_s))
        return total

    def _idle_wait(self, poll_s: float) -> float:
        due = self._store.next_due()
        if due is None:
            return poll_s
        return min(poll_s, max(0.0, (due - self._clock()).total_seconds()))


def _replayed(attempt: DeliveryAttempt) -> SendResult:
    """A recorded attempt's result, as if it had just ended (an interrupted one is worth retrying)."""
    outcome: Outcome = attempt.outcome if attempt.outcome in ("sent", "permanent") else "retryable"
    return SendResult(outcome, attempt.detail, attempt.status_code)
