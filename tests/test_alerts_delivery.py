"""Delivery against the real embedded ClickHouse and real local receivers: the outbox, outages ridden
out with backoff, worker restarts and crashes at each step without loss or duplicates, quiet hours,
acks restricted by region, and no PII anywhere an alert goes."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from sinks.alerts import (
    ALERT_TABLES,
    AckOutcome,
    AlertDeliverer,
    AlertDispatcher,
    AlertStore,
    DeliveryAttempt,
    build_channels,
)
from sinks.alerts.alert import Alert
from sinks.alerts.channels.base import Channel, SendResult
from sinks.alerts.config import AlertConfig, ChannelKind, parse_alert_config
from sinks.clickhouse.client import Warehouse, connect
from tests.test_alerts_helpers import (
    FakeClock,
    Mailbox,
    Receiver,
    config_dict,
    free_port,
    quality_flag,
    smtp_server,
    trend_flag,
)

SECRET = b"test-secret-0123456789"
RETRY = {"max_attempts": 5, "initial_backoff_s": 2.0, "max_backoff_s": 8.0, "multiplier": 2.0, "jitter": 0.0}
NORTH = trend_flag()
SOUTH = trend_flag(flag_id="support_rate|precinct|P31|up|2026-10-05T09:00:00+00:00", unit_id="P31",
                   region_id="South", direction="up", effect=0.2, observed=0.75)  # fmt: skip


def delivery_config(port: int, smtp_port: int | None = None, quiet: bool = True, **retry: float) -> AlertConfig:
    data = config_dict(retry={kind: {**RETRY, **retry} for kind in ("webhook", "slack", "email")})
    if not quiet:  # for the test on the real clock, which may run at night
        for member in data["staff"]:
            member.pop("quiet_hours", None)
    data["staff"][0]["channels"] = {"webhook": f"http://127.0.0.1:{port}/north", "slack": f"http://127.0.0.1:{port}/ns",
                                    "log": True}  # fmt: skip
    data["staff"][1]["channels"] = {"webhook": f"http://127.0.0.1:{port}/south"}
    if smtp_port is not None:
        data["staff"][1]["channels"]["email"] = "south@example.org"
        data["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "from_address": "gs@example.org"}
    return parse_alert_config(data, env={})


@pytest.fixture
def tables(client: Client, warehouse: Warehouse) -> None:
    for table in ALERT_TABLES:
        for statement in table.render(warehouse.topology):
            client.command(statement)


@dataclass
class Worker:
    """What one worker process holds: its own client, store, dispatcher and deliverer."""

    warehouse: Warehouse
    config: AlertConfig
    clock: FakeClock
    channels: Mapping[ChannelKind, Channel] | None = None
    store_type: type[AlertStore] = AlertStore
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = connect(self.warehouse)
        self.store = self.store_type(self.client, self.warehouse)
        self.dispatcher = AlertDispatcher(self.config, "UTC", SECRET, clock=self.clock)
        channels = self.channels if self.channels is not None else build_channels(self.config)
        self.deliverer = AlertDeliverer(self.store, self.config, channels, clock=self.clock, worker="w")

    def submit(self, *flags: Any) -> list[Alert]:
        return self.dispatcher.submit_trend_flags(self.store, list(flags))

    def status(self) -> dict[str, str]:
        return {a["alert_id"]: a["status"] for a in self.store.alerts(None, limit=1000)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def by_key(receiver: Receiver) -> Counter[str]:
    return Counter(r.headers["Idempotency-Key"] for r in receiver.received)


def http_alert_ids(alerts: list[Alert]) -> set[str]:
    http = (ChannelKind.WEBHOOK, ChannelKind.SLACK)
    return {a.alert_id for a in alerts if a.channel in http and a.status == "pending"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


# --- the outbox ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tables")
def test_alerts_are_stored_before_anything_is_sent(warehouse: Warehouse, clock: FakeClock, receiver: Receiver) -> None:
    worker = Worker(warehouse, delivery_config(receiver.port), clock)
    alerts = worker.submit(NORTH, SOUTH)
    assert set(worker.status().values()) == {"pending"} and len(worker.status()) == len(alerts)
    assert receiver.received == []
    report = worker.deliverer.deliver_due()
    assert (report.attempted, report.sent) == (len(alerts), len(alerts))
    assert set(worker.status().values()) == {"sent"}
    assert by_key(receiver) == Counter(http_alert_ids(alerts))
    paths = {(r.headers["Idempotency-Key"], r.path) for r in receiver.received}
    assert {p for _, p in paths} == {"/north", "/ns", "/south"}  # North's alerts never reach South's hook
    for alert in alerts:
        (attempt,) = worker.store.attempts(alert.alert_id)
        assert (attempt.attempt, attempt.outcome, attempt.idempotency_key) == (1, "sent", alert.alert_id)


@pytest.mark.usefixtures("tables")
def test_a_routed_alert_written_again_never_undoes_its_delivery(
    warehouse: Warehouse, clock: FakeClock, receiver: Receiver
) -> None:
    worker = Worker(warehouse, delivery_config(receiver.port), clock)
    alerts = worker.submit(NORTH)
    worker.deliverer.deliver_due()
    # A racing routing pass writes pending rows for the same alerts again (not byte-identical, or the
    # table's insert deduplication would drop them before versions had a say).
    worker.store.enqueue([replace(a, reason="routed again") for a in alerts])
    assert set(worker.status().values()) == {"sent"}
    assert worker.deliverer.deliver_due().attempted == 0


@pytest.mark.usefixtures("tables")
def test_cool_down_is_remembered_across_a_restart(warehouse: Warehouse, clock: FakeClock, receiver: Receiver) -> None:
    config = delivery_config(receiver.port)
    first = Worker(warehouse, config, clock)
    first.submit(NORTH)
    first.deliverer.deliver_due()
    sent = len(receiver.received)
    second = Worker(warehouse, config, clock)  # a restarted worker: its memory is the alerts table
    clock.advance(3600)
    episode = replace(NORTH, flag_id="support_rate|precinct|P01|down|2026-10-06T14:00:00+00:00")
    held_back = second.submit(episode)
    assert held_back and {a.status for a in held_back} == {"suppressed"}
    assert second.deliverer.deliver_due().attempted == 0 and len(receiver.received) == sent
    clock.advance(5.5 * 3600)  # 21:30, past the 6 h cool-down and before the lead's quiet hours
    released = second.submit(replace(episode, status="updated"))
    assert {a.alert_id for a in released} == {a.alert_id for a in held_back}
    second.deliverer.deliver_due()
    assert set(second.status().values()) == {"sent"}
    assert len(receiver.received) == 2 * sent


# --- outages and backoff ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tables")
def test_an_outage_is_ridden_out_with_backoff_and_nothing_is_lost(warehouse: Warehouse, clock: FakeClock) -> None:
    down = Receiver(port=free_port())  # configured but not started: connections are refused
    worker = Worker(warehouse, delivery_config(down.port), clock)
    alerts = worker.submit(NORTH, SOUTH)
    hooks = http_alert_ids(alerts)
    waits = []
    for attempt in (1, 2, 3):
        report = worker.deliverer.deliver_due()
        assert report.retrying == len(hooks)
        pending = {a.alert_id: a for a in map(worker.store.get, hooks) if a is not None}
        assert {a.attempts for a in pending.values()} == {attempt}
        due = {a.due_at for a in pending.values()}
        assert len(due) == 1
        waits.append((due.pop() - clock.now).total_seconds())
        clock.advance(waits[-1] - 0.5)
        assert worker.deliverer.deliver_due().attempted == 0  # not before its time
        clock.advance(0.5)
    assert waits == [2.0, 4.0, 8.0]  # initial x 2^(n-1), capped at 8 s (jitter off)
    down.start()
    try:
        report = worker.deliverer.deliver_due()
        assert report.sent == len(hooks)
        assert by_key(down) == Counter(hooks)  # each exactly once
        for alert_id in hooks:
            outcomes = [(a.attempt, a.outcome) for a in worker.store.attempts(alert_id)]
            assert outcomes == [(1, "retryable"), (2, "retryable"), (3, "retryable"), (4, "sent")]
    finally:
        down.stop()


@pytest.mark.usefixtures("tables")
def test_permanent_failures_and_exhausted_retries_end_as_failed(
    warehouse: Warehouse, clock: FakeClock, receiver: Receiver
) -> None:
    worker = Worker(warehouse, delivery_config(receiver.port, max_attempts=3), clock)
    receiver.status = 404
    (north,) = [a for a in worker.submit(NORTH) if a.channel is ChannelKind.WEBHOOK]
    worker.deliverer.deliver_due()
    stored = worker.store.get(north.alert_id)
    assert stored is not None and (stored.status, stored.attempts) == ("failed", 1)
    assert stored.reason == "permanent failure: HTTP 404 Not Found"
    receiver.status = 503
    (south,) = [a for a in worker.submit(SOUTH) if a.channel is ChannelKind.WEBHOOK]
    for _ in range(5):
        worker.deliverer.deliver_due()
        clock.advance(10)
    stored = worker.store.get(south.alert_id)
    assert stored is not None and (stored.status, stored.attempts) == ("failed", 3)
    assert by_key(receiver)[south.alert_id] == 3


@pytest.mark.usefixtures("tables")
def test_email_survives_an_smtp_outage(warehouse: Warehouse, clock: FakeClock, receiver: Receiver) -> None:
    smtp_port, mailbox = free_port(), Mailbox()
    worker = Worker(warehouse, delivery_config(receiver.port, smtp_port), clock)
    (email,) = [a for a in worker.submit(SOUTH) if a.channel is ChannelKind.EMAIL]
    worker.deliverer.deliver_due()
    assert worker.status()[email.alert_id] == "pending"
    server = smtp_server(mailbox, smtp_port)
    try:
        clock.advance(2)
        worker.deliverer.deliver_due()
    finally:
        server.stop()
    assert worker.status()[email.alert_id] == "sent"
    assert [m["Message-ID"] for m in mailbox.messages] == [f"<{email.alert_id}@alerts.groundswell.invalid>"]


# --- restarts and crashes -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tables")
def test_a_restart_between_attempts_sends_nothing_twice(warehouse: Warehouse, clock: FakeClock) -> None:
    receiver = Receiver(port=free_port())
    config = delivery_config(receiver.port)
    first = Worker(warehouse, config, clock)
    hooks = http_alert_ids(first.submit(NORTH, SOUTH))
    first.deliverer.deliver_due()  # the receiver is down: one failed attempt each
    first.client.close()
    second = Worker(warehouse, config, clock)  # the restarted worker
    assert second.submit(NORTH, SOUTH) == []  # its trend agent replays the same flags: nothing new
    receiver.start()
    try:
        clock.advance(2)
        assert second.deliverer.deliver_due().sent == len(hooks)
        third = Worker(warehouse, config, clock)
        clock.advance(60)
        assert third.deliverer.deliver_due().attempted == 0
    finally:
        receiver.stop()
    assert by_key(receiver) == Counter(hooks)


class WorkerKilled(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the deliverer catches it."""


class Dying:
    """A channel whose worker dies before (or after) the real send."""

    def __init__(self, inner: Channel, after_send: bool) -> None:
        self.kind = inner.kind
        self._inner = inner
        self._after_send = after_send

    def send(self, alert: Alert, address: str) -> SendResult:
        if self._after_send:
            self._inner.send(alert, address)
        raise WorkerKilled


def dying_channels(config: AlertConfig, after_send: bool) -> dict[ChannelKind, Channel]:
    channels = dict(build_channels(config))
    channels[ChannelKind.WEBHOOK] = Dying(channels[ChannelKind.WEBHOOK], after_send)
    return channels


@pytest.mark.usefixtures("tables")
def test_a_crash_before_the_send_is_resent_once(warehouse: Warehouse, clock: FakeClock, receiver: Receiver) -> None:
    config = delivery_config(receiver.port)
    first = Worker(warehouse, config, clock, channels=dying_channels(config, after_send=False))
    (hook,) = [a for a in first.submit(NORTH) if a.channel is ChannelKind.WEBHOOK]
    with pytest.raises(WorkerKilled):
        while True:
            first.deliverer.deliver_due()
    assert first.status()[hook.alert_id] == "sending" and receiver.received == []
    second = Worker(warehouse, config, clock)
    second.deliverer.deliver_due()
    assert second.status()[hook.alert_id] == "sent"
    assert by_key(receiver)[hook.alert_id] == 1
    assert [a.outcome for a in second.store.attempts(hook.alert_id)] == ["interrupted", "sent"]


@pytest.mark.usefixtures("tables")
def test_a_crash_between_send_and_record_resends_with_the_same_idempotency_key(
    warehouse: Warehouse, clock: FakeClock, receiver: Receiver
) -> None:
    config = delivery_config(receiver.port)
    first = Worker(warehouse, config, clock, channels=dying_channels(config, after_send=True))
    (hook,) = [a for a in first.submit(NORTH) if a.channel is ChannelKind.WEBHOOK]
    with pytest.raises(WorkerKilled):
        while True:
            first.deliverer.deliver_due()
    second = Worker(warehouse, config, clock)
    second.deliverer.deliver_due()
    # The documented at-least-once window: the receiver saw the alert twice, with one key to dedupe on.
    copies = [r for r in receiver.received if r.path == "/north"]
    assert len(copies) == 2
    assert {r.headers["Idempotency-Key"] for r in copies} == {hook.alert_id}
    assert copies[0].json() == copies[1].json()
    assert second.status()[hook.alert_id] == "sent"


class DiesBeforeMarkingSent(AlertStore):
    def save(self, alerts: Sequence[Alert]) -> list[Alert]:
        if any(a.status == "sent" and a.channel is ChannelKind.WEBHOOK for a in alerts):
            raise WorkerKilled
        return super().save(alerts)


@pytest.mark.usefixtures("tables")
def test_a_crash_after_the_attempt_is_recorded_is_settled_without_resending(
    warehouse: Warehouse, clock: FakeClock, receiver: Receiver
) -> None:
    config = delivery_config(receiver.port)
    first = Worker(warehouse, config, clock, store_type=DiesBeforeMarkingSent)
    alerts = first.submit(NORTH)
    with pytest.raises(WorkerKilled):
        first.deliverer.deliver_due()
    assert [r.path for r in receiver.received].count("/north") == 1  # the webhook went out, then the crash
    assert "sending" in first.status().values()
    second = Worker(warehouse, config, clock)
    report = second.deliverer.deliver_due()
    # Every alert of the batch was sent and its attempt recorded: all are settled, none is sent again.
    assert (report.recovered, report.attempted) == (len(alerts), 0)
    assert len(receiver.received) == len(http_alert_ids(alerts))
    assert by_key(receiver) == Counter(http_alert_ids(alerts))
    assert set(second.status().values()) == {"sent"}


class WarehouseHiccup(AlertStore):
    """ClickHouse refuses one insert: the attempt record right after a send."""

    failed = False

    def record_attempts(self, attempts: Sequence[DeliveryAttempt]) -> None:
        if any(a.channel is ChannelKind.WEBHOOK for a in attempts) and not self.failed:
            self.failed = True
            raise ConnectionError("ClickHouse went away")
        super().record_attempts(attempts)


@pytest.mark.usefixtures("tables")
def test_a_warehouse_error_mid_pass_is_recovered_on_the_next_pass(
    warehouse: Warehouse, clock: FakeClock, receiver: Receiver
) -> None:
    worker = Worker(warehouse, delivery_config(receiver.port), clock, store_type=WarehouseHiccup)
    alerts = worker.submit(NORTH)
    (hook,) = [a for a in alerts if a.channel is ChannelKind.WEBHOOK]
    with pytest.raises(ConnectionError):
        worker.deliverer.deliver_due()
    report = worker.deliverer.deliver_due()  # the same deliverer: it settles what the pass left `sending`
    assert report.recovered == len(alerts)  # the whole batch had been marked `sending`
    assert set(worker.status().values()) == {"sent"}
    # The webhook alert went out, but its attempt was never recorded: re-sent, with the same key.
    assert [r.headers["Idempotency-Key"] for r in receiver.received if r.path == "/north"] == [hook.alert_id] * 2
    # Every other alert arrived exactly once, whether it was sent before the error or after recovery.
    others = Counter(r.headers["Idempotency-Key"] for r in receiver.received if r.path != "/north")
    assert others == Counter(http_alert_ids(alerts) - {hook.alert_id})


# --- quiet hours, the run loop --------------------------------------------------------------------------------


@pytest.mark.usefixtures("tables")
def test_held_alerts_go_out_in_the_morning(warehouse: Warehouse, receiver: Receiver) -> None:
    clock = FakeClock(datetime(2026, 10, 6, 23, 30, tzinfo=UTC))
    worker = Worker(warehouse, delivery_config(receiver.port), clock)
    alerts = worker.submit(NORTH)
    worker.deliverer.deliver_due()
    assert receiver.received == []  # the lead's hooks wait for 07:00
    assert {worker.status()[a.alert_id] for a in alerts if a.recipient == "desk"} == {"sent"}
    clock.now = datetime(2026, 10, 7, 6, 59, tzinfo=UTC)
    assert worker.deliverer.deliver_due().attempted == 0
    clock.now = datetime(2026, 10, 7, 7, 0, tzinfo=UTC)
    worker.deliverer.deliver_due()
    assert by_key(receiver) == Counter(http_alert_ids(alerts))


@pytest.mark.usefixtures("tables")
def test_a_retry_that_would_fall_in_quiet_hours_waits_for_the_morning(warehouse: Warehouse) -> None:
    down = Receiver(port=free_port())
    clock = FakeClock(datetime(2026, 10, 6, 21, 59, 59, tzinfo=UTC))  # the lead's quiet hours start at 22:00
    worker = Worker(warehouse, delivery_config(down.port), clock)
    (hook,) = [a for a in worker.submit(NORTH) if a.channel is ChannelKind.WEBHOOK]
    worker.deliverer.deliver_due()
    stored = worker.store.get(hook.alert_id)
    assert stored is not None and stored.due_at == datetime(2026, 10, 7, 7, 0, tzinfo=UTC)


@pytest.mark.usefixtures("tables")
def test_the_run_loop_delivers_until_stopped(warehouse: Warehouse, receiver: Receiver) -> None:
    receiver.script = [503, 503]  # two failures first: the loop must come back for them
    config = delivery_config(receiver.port, quiet=False, initial_backoff_s=0.05, max_backoff_s=0.1)
    submitter = Worker(warehouse, config, FakeClock(datetime.now(UTC)))
    hooks = http_alert_ids(submitter.submit(NORTH))
    running = Worker(warehouse, config, FakeClock())
    deliverer = AlertDeliverer(running.store, config, build_channels(config), worker="loop")  # the real clock
    stop = threading.Event()
    thread = threading.Thread(target=deliverer.run, args=(stop, 0.05))
    thread.start()
    try:
        for _ in range(400):
            if set(submitter.status().values()) == {"sent"}:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert set(submitter.status().values()) == {"sent"}
    delivered = Counter(r.headers["Idempotency-Key"] for r in receiver.received if r.status == 200)
    assert delivered == Counter(hooks) and len(receiver.received) == len(hooks) + 2


# --- acks -----------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tables")
def test_regional_staff_see_and_ack_only_their_regions(
    warehouse: Warehouse, clock: FakeClock, receiver: Receiver
) -> None:
    worker = Worker(warehouse, delivery_config(receiver.port), clock)
    alerts = worker.submit(NORTH, SOUTH)
    north = next(a for a in alerts if a.region == "North")
    south = next(a for a in alerts if a.region == "South")
    mine = frozenset({"North"})
    assert {a["region"] for a in worker.store.alerts(mine)} == {"North"}
    assert worker.store.ack(south.alert_id, "north-organizer", mine).outcome is AckOutcome.FORBIDDEN
    assert worker.store.ack("no-such-alert", "north-organizer", mine).outcome is AckOutcome.NOT_FOUND
    acked = worker.store.ack(north.alert_id, "north-organizer", mine, now=clock.now)
    assert (acked.outcome, acked.acked_by, acked.acked_at) == (AckOutcome.ACKED, "north-organizer", clock.now)
    again = worker.store.ack(north.alert_id, "someone-else", None)
    assert (again.outcome, again.acked_by) == (AckOutcome.ALREADY_ACKED, "north-organizer")
    assert worker.store.ack(south.alert_id, "statistician", None).outcome is AckOutcome.ACKED
    listed = {a["alert_id"]: a for a in worker.store.alerts(None)}
    assert listed[north.alert_id]["acked_by"] == "north-organizer"
    assert listed[south.alert_id]["acked_by"] == "statistician"
    unacked = [a for a in alerts if a.alert_id not in (north.alert_id, south.alert_id)]
    assert all(listed[a.alert_id]["acked_by"] is None for a in unacked)


# --- privacy ------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tables")
def test_no_pii_in_stored_rows_sent_payloads_or_logs(
    warehouse: Warehouse, client: Client, clock: FakeClock, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    email, phone = "jane.doe@example.com", "614-555-0199"
    worker = Worker(warehouse, delivery_config(receiver.port), clock)
    flags = [(quality_flag(canvasser=email), "North"), (quality_flag(canvasser=phone, check="gps_exceptions"), "South")]
    with caplog.at_level(logging.DEBUG):
        alerts = worker.dispatcher.submit_quality_flags(worker.store, flags)
        worker.deliverer.deliver_due()
    assert len({a.flag_id for a in alerts}) == 2 and receiver.received
    dumps = [client.command(f"SELECT * FROM {warehouse.database}.{t.name} FORMAT TSV") for t in ALERT_TABLES[:2]]
    texts = [str(d) for d in dumps] + [r.body.decode() for r in receiver.received] + [caplog.text]
    for text in texts:
        assert "jane.doe" not in text and "0199" not in re.sub(r"\s", "", text).replace(".", "")
        assert "5550199" not in re.sub(r"\D", "", text)
    assert json.loads(receiver.received[0].body)["flag"]["unit_id"].startswith(("[email:", "[phone:"))
