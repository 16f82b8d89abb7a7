"""Routing as pure logic: right region and staff, once per episode, cool-down, quiet hours, escalation,
close notices, and the severity rule, each checked against an independent statement of the rule."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.trends.flags import TrendFlag
from sinks.alerts.alert import Alert
from sinks.alerts.config import AlertConfig
from sinks.alerts.history import RoutingHistory
from sinks.alerts.privacy import Redactor
from sinks.alerts.router import AlertRouter
from sinks.alerts.severity import SeverityRules
from sinks.alerts.signals import Signal, quality_signal, trend_signal
from tests.test_alerts_helpers import T0, make_config, quality_flag, trend_flag

REDACT = Redactor(b"test-secret-0123456789")
NEW_YORK = ZoneInfo("America/New_York")


class Session:
    """A router plus the history a store would keep: what a long-running worker sees."""

    def __init__(self, config: AlertConfig | None = None, timezone: str = "UTC") -> None:
        self.config = config or make_config()
        self.router = AlertRouter(self.config, timezone)
        self.history = RoutingHistory()

    def signal(self, flag: TrendFlag) -> Signal:
        return trend_signal(flag, self.config.severity, REDACT)

    def route(self, flags: Sequence[TrendFlag], now: datetime) -> list[Alert]:
        alerts = self.router.route([self.signal(f) for f in flags], self.history, now)
        for alert in alerts:
            self.history.add(alert)
        return alerts


def targets(alerts: Sequence[Alert], status: str | None = None) -> set[tuple[str, str]]:
    return {(a.recipient, a.channel.value) for a in alerts if status is None or a.status == status}


# --- severity -------------------------------------------------------------------------------------------


def reference_severity(rules: SeverityRules, metric: str, level: str, z: float, effect: float) -> str:
    """docs/alerts.md's rule, written out independently."""
    material = {"support_rate": 0.04, "contact_rate": 0.02}.get(metric, 0.3 if metric.startswith("signups:") else 0.0)
    big_enough_for_critical = abs(effect) >= 2.0 * material
    if abs(z) >= 5.0 and big_enough_for_critical and level in ("county", "region"):
        return "critical"
    if abs(z) >= 3.0 and abs(effect) >= material:
        return "warning"
    return "info"


def test_severity_follows_the_documented_rule_over_a_grid() -> None:
    rules = make_config().severity
    metrics = ("support_rate", "contact_rate", "signups:facebook", "email_click_rate")
    zs = (0.5, 2.99, 3.0, 4.2, 4.99, 5.0, 9.0, -6.0)
    effects = (0.0, 0.01, 0.02, 0.039, 0.04, 0.05, 0.079, 0.08, 0.3, 0.6, -0.2, float("inf"))
    for metric, level, z, effect in itertools.product(metrics, ("precinct", "county", "region"), zs, effects):
        expected = reference_severity(rules, metric, level, z, effect)
        assert rules.trend_severity(metric, level, z, effect) == expected, (metric, level, z, effect)


# --- who gets what ----------------------------------------------------------------------------------------


def test_a_regions_flags_reach_that_regions_staff_and_the_desk_only() -> None:
    north = Session().route([trend_flag()], T0)
    assert targets(north) == {("north-lead", "webhook"), ("north-lead", "log"), ("desk", "log")}
    south_flag = trend_flag(flag_id="s1", unit_id="P31", region_id="South")
    south = Session().route([south_flag], T0)
    assert targets(south) == {("south-lead", "webhook"), ("south-lead", "log"), ("desk", "log")}
    assert all(a.status == "pending" and a.due_at == T0 for a in north + south)


def reference_recipients(config: AlertConfig, region: str, metric: str, severity: str) -> set[tuple[str, str]]:
    """Brute force over every (rule, staff, channel)."""
    order = {"info": 1, "warning": 2, "critical": 3}
    out = set()
    for rule in config.rules:
        in_region = "*" in rule.regions or region in rule.regions
        metric_ok = rule.metrics is None or any(
            m == metric or (m.endswith("*") and metric.startswith(m[:-1])) for m in rule.metrics
        )
        if in_region and metric_ok and order[severity] >= order[rule.min_severity]:
            for staff_id in rule.staff:
                member = config.member(staff_id)
                assert member is not None
                for kind in rule.channels or member.channels.kinds():
                    out.add((staff_id, kind.value))
    return out


def test_random_flags_are_routed_exactly_as_the_rules_say() -> None:
    config = make_config()
    rng = random.Random(4)
    for i in range(300):
        region = rng.choice(["North", "South"])
        metric = rng.choice(["support_rate", "contact_rate", "signups:web", "email_click_rate"])
        level = rng.choice(["precinct", "county", "region"])
        flag = trend_flag(flag_id=f"f{i}", region_id=region, metric=metric, level=level, unit_id=f"U{i}",
                          z_score=rng.uniform(2, 8), effect=-rng.uniform(0, 0.2))  # fmt: skip
        session = Session(config)
        severity = session.signal(flag).severity
        # Daytime, no history: nothing is held or suppressed, so the recipients are the rules' alone.
        alerts = session.route([flag], T0)
        assert targets(alerts) == reference_recipients(config, region, metric, severity), (region, metric, severity)
        assert {a.severity for a in alerts} <= {severity}


def test_quality_flags_go_to_the_canvassers_region_staff() -> None:
    config = make_config()
    router = AlertRouter(config, "UTC")
    signal = quality_signal(quality_flag(), "South", config.severity, REDACT)
    alerts = router.route([signal], RoutingHistory(), T0)
    # quality:* rule sends north-lead's log only; South's lead takes warnings; the desk takes all.
    assert targets(alerts) == {("north-lead", "log"), ("south-lead", "webhook"), ("south-lead", "log"), ("desk", "log")}
    assert {a.metric for a in alerts} == {"quality:contact_rate_high"}
    assert {a.level for a in alerts} == {"canvasser"}


# --- once per episode ---------------------------------------------------------------------------------


def test_an_episode_alerts_once_and_again_only_when_more_severe() -> None:
    session = Session()
    first = session.route([trend_flag()], T0)
    assert {a.event for a in first} == {"raised"} and {a.severity for a in first} == {"warning"}
    # A replayed tick and a plain update: nothing new.
    assert session.route([trend_flag()], T0 + timedelta(minutes=5)) == []
    assert session.route([trend_flag(status="updated", z_score=4.5)], T0 + timedelta(hours=1)) == []
    # A precinct flag is at most a warning; a county flag can escalate to critical.
    county = trend_flag(flag_id="c1", level="county", unit_id="OH/C1", z_score=3.5, effect=-0.05)
    raised = session.route([county], T0)
    assert {a.severity for a in raised} == {"warning"}
    escalated = session.route([replace_status(county, z_score=6.0, effect=-0.12)], T0 + timedelta(hours=2))
    assert {a.event for a in escalated} == {"escalated"} and {a.severity for a in escalated} == {"critical"}
    assert targets(escalated) == targets(raised)
    assert all(a.payload["title"].startswith("Now critical") for a in escalated)
    # Back down to warning, then critical again: nothing (they already know it at critical).
    assert session.route([replace_status(county, z_score=3.2, effect=-0.05)], T0 + timedelta(hours=3)) == []
    assert session.route([replace_status(county, z_score=6.5, effect=-0.13)], T0 + timedelta(hours=4)) == []


def replace_status(flag: TrendFlag, **changes: float) -> TrendFlag:
    return replace(flag, status="updated", **changes)  # type: ignore[arg-type]


def test_an_update_that_crosses_a_rules_minimum_alerts_that_person_for_the_first_time() -> None:
    session = Session()
    weak = trend_flag(z_score=2.5)  # info: the desk only
    assert targets(session.route([weak], T0)) == {("desk", "log")}
    stronger = session.route([replace_status(weak, z_score=3.4)], T0 + timedelta(hours=1))
    # The lead hears of it now (their first alert: "raised"); the desk, who had it at info, "escalated".
    by_person = {(a.recipient, a.event, a.severity) for a in stronger}
    assert by_person == {("north-lead", "raised", "warning"), ("desk", "escalated", "warning")}


# --- cool-down ---------------------------------------------------------------------------------------------


def test_cool_down_suppresses_a_new_episode_on_the_same_unit_and_metric_unless_more_severe() -> None:
    session = Session()
    session.route([trend_flag()], T0)
    second = trend_flag(flag_id="episode-2")
    within = session.route([second], T0 + timedelta(hours=2))
    assert within and {a.status for a in within} == {"suppressed"}
    assert all("cool-down" in a.reason for a in within)
    # Another metric on the same unit is not cooled down.
    other_metric = trend_flag(flag_id="episode-3", metric="contact_rate", effect=-0.05)
    assert {a.status for a in session.route([other_metric], T0 + timedelta(hours=2))} == {"pending"}
    # After the cool-down (6 h after the last alert on it), the suppressed episode's next update goes out.
    after = session.route([replace_status(second, z_score=4.1)], T0 + timedelta(hours=6, minutes=1))
    assert after and {a.status for a in after} == {"pending"}
    assert {a.alert_id for a in after} == {a.alert_id for a in within}  # the same alerts, no longer suppressed


def test_cool_down_lets_a_more_severe_alert_through() -> None:
    session = Session()
    county = trend_flag(flag_id="c1", level="county", unit_id="OH/C1", z_score=3.5, effect=-0.05)
    session.route([county], T0)
    worse = trend_flag(flag_id="c2", level="county", unit_id="OH/C1", z_score=7.0, effect=-0.15)
    alerts = session.route([worse], T0 + timedelta(hours=1))
    assert alerts and {(a.status, a.severity) for a in alerts} == {("pending", "critical")}


def test_two_flags_in_one_batch_see_each_other() -> None:
    session = Session()
    alerts = session.route([trend_flag(), trend_flag(flag_id="twin")], T0)
    statuses = {(a.flag_id, a.status) for a in alerts}
    assert statuses == {(REDACT("support_rate|precinct|P01|down|2026-10-05T09:00:00+00:00"), "pending"),
                        ("twin", "suppressed")}  # fmt: skip


# --- quiet hours and escalation ------------------------------------------------------------------------------


def test_quiet_hours_hold_an_alert_until_the_local_morning() -> None:
    session = Session(timezone="America/New_York")
    night = datetime(2026, 10, 6, 23, 30, tzinfo=NEW_YORK).astimezone(UTC)
    alerts = session.route([trend_flag()], night)
    lead = [a for a in alerts if a.recipient == "north-lead"]
    morning = datetime(2026, 10, 7, 7, 0, tzinfo=NEW_YORK).astimezone(UTC)
    assert lead and {a.due_at for a in lead} == {morning}
    assert all(a.status == "pending" and "quiet hours" in a.reason for a in lead)
    # The desk has no quiet hours; a warning never reaches the on-call contact.
    assert {a.due_at for a in alerts if a.recipient == "desk"} == {night}
    assert not any(a.recipient == "on-call" for a in alerts)


def test_quiet_hours_after_midnight_and_across_a_dst_change() -> None:
    session = Session(timezone="America/New_York")
    # 01:30 EST on the night clocks go forward (2026-03-08): the morning is 07:00 EDT, 11:00 UTC.
    night = datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK).astimezone(UTC)
    assert night == datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    lead = [a for a in session.route([trend_flag()], night) if a.recipient == "north-lead"]
    assert {a.due_at for a in lead} == {datetime(2026, 3, 8, 11, 0, tzinfo=UTC)}


def test_a_critical_flag_in_quiet_hours_goes_to_the_escalation_contact_now() -> None:
    session = Session(timezone="America/New_York")
    night = datetime(2026, 10, 6, 23, 30, tzinfo=NEW_YORK).astimezone(UTC)  # on-call's quiet hours too
    region = trend_flag(flag_id="r1", level="region", unit_id="North", z_score=8.0, effect=-0.12)
    alerts = session.route([region], night)
    assert {a.severity for a in alerts} == {"critical"}
    on_call = [a for a in alerts if a.recipient == "on-call"]
    assert on_call and all(a.route == "escalation" and a.due_at == night for a in on_call)
    assert "north-lead" in on_call[0].reason
    lead = [a for a in alerts if a.recipient == "north-lead"]
    assert lead and all(a.due_at > night and a.route == "rule" for a in lead)  # still held for the morning


def test_without_an_escalation_contact_critical_alerts_break_through_quiet_hours() -> None:
    session = Session(make_config(escalation_contact=None), timezone="America/New_York")
    night = datetime(2026, 10, 6, 23, 30, tzinfo=NEW_YORK).astimezone(UTC)
    region = trend_flag(flag_id="r1", level="region", unit_id="North", z_score=8.0, effect=-0.12)
    lead = [a for a in session.route([region], night) if a.recipient == "north-lead"]
    assert lead and {a.due_at for a in lead} == {night}


# --- close notices -------------------------------------------------------------------------------------------


def test_a_close_notifies_whoever_was_alerted_on_the_same_channels() -> None:
    session = Session()
    raised = session.route([trend_flag()], T0)
    closed = session.route([trend_flag(status="closed")], T0 + timedelta(days=3))
    assert targets(closed) == targets(raised)
    assert {(a.event, a.severity, a.status) for a in closed} == {("closed", "info", "pending")}
    assert all(a.payload["title"].startswith("Closed:") for a in closed)
    # Closing twice (a replayed tick) notifies once.
    assert session.route([trend_flag(status="closed")], T0 + timedelta(days=3, minutes=1)) == []


def test_no_close_notice_for_episodes_nobody_heard_of_or_when_turned_off() -> None:
    assert Session().route([trend_flag(status="closed")], T0) == []
    quiet = Session(make_config(notify_on_close=False))
    quiet.route([trend_flag()], T0)
    assert quiet.route([trend_flag(status="closed")], T0 + timedelta(days=3)) == []


def test_router_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Session().route([trend_flag()], datetime(2026, 10, 6, 15))
