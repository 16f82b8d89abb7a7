"""Routing: from flags to the alerts to send. Pure logic (no I/O), so it is tested on its own.

For each flag, in order:
1. Who: the staff of every rule that covers the flag's region, metric and severity, on the rule's
   channels (default: all of each person's channels). Nobody else: a region's flags reach that
   region's staff and those whose rules say "*".
2. Once per episode: a person hears of an episode once, when it is first raised; an update alerts
   again only if it became more severe than anything they had about it ("escalated").
3. Cool-down: a new alert on the same (level, unit, metric) to the same person within
   `cooldown_minutes` of an earlier one is suppressed (recorded, not sent) unless more severe.
4. Quiet hours: an alert for someone in their quiet hours is held until the end of them. A critical
   one also goes at once to the escalation contact (who is on call: their own quiet hours do not
   apply to critical alerts); without an escalation contact, critical alerts are sent at once.
5. Close: when an episode closes, whoever was alerted about it gets a close notice (info), if
   `notify_on_close`; it follows their quiet hours and is never escalated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sinks.alerts.alert import PLANNED_VERSION, SUPPRESSED_VERSION, Alert, AlertStatus, Route, alert_id, event_key
from sinks.alerts.config import AlertConfig, ChannelKind, StaffMember
from sinks.alerts.content import Event, alert_content
from sinks.alerts.history import RoutingHistory
from sinks.alerts.severity import Severity, rank
from sinks.alerts.signals import Signal


@dataclass(frozen=True)
class _Decision:
    """What happens to one person's alert about one flag event."""

    member: StaffMember
    channels: tuple[ChannelKind, ...]
    event: Event
    severity: Severity
    route: Route
    suppressed: bool
    due_at: datetime
    reason: str


class AlertRouter:
    def __init__(self, config: AlertConfig, timezone: str) -> None:
        self._config = config
        self._zone = ZoneInfo(timezone)
        self._cooldown = timedelta(minutes=config.cooldown_minutes)

    def route(self, signals: Sequence[Signal], history: RoutingHistory, now: datetime) -> list[Alert]:
        """The alerts to store for `signals` (pending, held, or suppressed), given what was sent before."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        memory = history.copy()
        planned: list[Alert] = []
        for signal in signals:
            decisions = (
                self._closing(signal, memory, now) if signal.status == "closed" else self._raising(signal, memory, now)
            )
            for decision in decisions:
                for alert in self._alerts(signal, decision, memory, now):
                    memory.add(alert)
                    planned.append(alert)
        return planned

    # --- who gets what -------------------------------------------------------------------------------

    def _recipients(self, signal: Signal) -> dict[str, tuple[ChannelKind, ...]]:
        channels: dict[str, set[ChannelKind]] = {}
        for rule in self._config.rules:
            if not rule.covers(signal.region, signal.metric, signal.severity):
                continue
            for staff_id in rule.staff:
                member = self._config.member(staff_id)
                if member is not None:
                    channels.setdefault(staff_id, set()).update(rule.channels or member.channels.kinds())
        return {staff_id: _ordered(kinds) for staff_id, kinds in channels.items()}

    def _raising(self, signal: Signal, memory: RoutingHistory, now: datetime) -> list[_Decision]:
        decisions: list[_Decision] = []
        held_critical: list[str] = []
        on_call = self._config.escalation_contact
        for staff_id, channels in self._recipients(signal).items():
            member = self._config.member(staff_id)
            assert member is not None  # _recipients only returns configured staff
            decision = self._decide(signal, member, channels, "rule", memory, now, on_call=staff_id == on_call)
            if decision is None:
                continue
            decisions.append(decision)
            if signal.severity == "critical" and decision.due_at > now and not decision.suppressed:
                held_critical.append(staff_id)
        contact = self._config.member(on_call) if on_call else None
        if held_critical and contact is not None and all(d.member.id != contact.id for d in decisions):
            decision = self._decide(signal, contact, contact.channels.kinds(), "escalation", memory, now, on_call=True)
            if decision is not None:
                note = f"critical during the quiet hours of {', '.join(held_critical)}"
                decisions.append(_with_reason(decision, note))
        return decisions

    def _decide(
        self,
        signal: Signal,
        member: StaffMember,
        channels: tuple[ChannelKind, ...],
        route: Route,
        memory: RoutingHistory,
        now: datetime,
        on_call: bool,
    ) -> _Decision | None:
        severity = signal.severity
        before = memory.highest_raised(signal.flag_id, member.id)
        if before is not None and rank(severity) <= rank(before):
            return None  # this person already knows, at this severity or worse
        event: Event = "raised" if before is None else "escalated"
        recent = memory.raised_since(signal.level, signal.unit_id, signal.metric, member.id, now - self._cooldown)
        if recent and rank(severity) <= max(rank(p.severity) for p in recent):
            last = max(p.created_at for p in recent)
            reason = f"cool-down: alerted on this unit and metric at {self._local(last)}"
            return _Decision(member, channels, event, severity, route, True, now, reason)
        due_at, reason = now, ""
        quiet_until = member.quiet_hours.until(now, self._zone) if member.quiet_hours else None
        if quiet_until is not None:
            if severity == "critical" and (on_call or self._config.escalation_contact is None):
                reason = "critical: sent during quiet hours"
            else:
                due_at, reason = quiet_until, f"held for quiet hours until {self._local(quiet_until)}"
        return _Decision(member, channels, event, severity, route, False, due_at, reason)

    def _closing(self, signal: Signal, memory: RoutingHistory, now: datetime) -> list[_Decision]:
        if not self._config.notify_on_close:
            return []
        channels: dict[str, set[ChannelKind]] = {}
        for staff_id, channel in memory.raised_targets(signal.flag_id):
            member = self._config.member(staff_id)
            if member is not None and channel in member.channels.kinds():
                channels.setdefault(staff_id, set()).add(channel)
        decisions = []
        for staff_id, kinds in channels.items():
            member = self._config.member(staff_id)
            assert member is not None
            quiet_until = member.quiet_hours.until(now, self._zone) if member.quiet_hours else None
            due_at, reason = now, ""
            if quiet_until is not None:
                due_at, reason = quiet_until, f"held for quiet hours until {self._local(quiet_until)}"
            decisions.append(_Decision(member, _ordered(kinds), "closed", "info", "rule", False, due_at, reason))
        return decisions

    # --- the alerts themselves ----------------------------------------------------------------------

    def _alerts(self, signal: Signal, decision: _Decision, memory: RoutingHistory, now: datetime) -> list[Alert]:
        content = alert_content(_at_severity(signal, decision.severity), decision.event, self._config.dashboard_url)
        key = event_key(decision.event, decision.severity)
        status: AlertStatus = "suppressed" if decision.suppressed else "pending"
        alerts = []
        for channel in decision.channels:
            identifier = alert_id(signal.flag_id, key, decision.member.id, channel)
            known = memory.status_of(identifier)
            if known is not None and (known != "suppressed" or decision.suppressed):
                continue  # routed before (a replayed flag): keep what is stored
            payload = {
                **content,
                "alert_id": identifier,
                "recipient": decision.member.id,
                "route": decision.route,
                "created_at": now.isoformat(),
            }
            alerts.append(
                Alert(
                    alert_id=identifier,
                    flag_id=signal.flag_id,
                    source=signal.source,
                    event=decision.event,
                    region=signal.region,
                    level=signal.level,
                    unit_id=signal.unit_id,
                    metric=signal.metric,
                    severity=decision.severity,
                    recipient=decision.member.id,
                    channel=channel,
                    route=decision.route,
                    status=status,
                    reason=decision.reason,
                    created_at=now,
                    due_at=decision.due_at,
                    payload=payload,
                    version=SUPPRESSED_VERSION if decision.suppressed else PLANNED_VERSION,
                )
            )
        return alerts

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%Y-%m-%d %H:%M %Z")


def _ordered(kinds: set[ChannelKind] | tuple[ChannelKind, ...]) -> tuple[ChannelKind, ...]:
    return tuple(kind for kind in ChannelKind if kind in kinds)


def _with_reason(decision: _Decision, note: str) -> _Decision:
    return replace(decision, reason=f"{decision.reason}; {note}" if decision.reason else note)


def _at_severity(signal: Signal, severity: Severity) -> Signal:
    """A close notice is `info` whatever the flag's last figures say."""
    return signal if severity == signal.severity else replace(signal, severity=severity)
