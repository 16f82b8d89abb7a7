"""Each channel against a real local receiver: what arrives, and how failures are classified."""

from __future__ import annotations

import logging
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.alerts.alert import Alert
from sinks.alerts.channels import EmailChannel, LogChannel, SlackChannel, WebhookChannel
from sinks.alerts.channels.email import message_id
from sinks.alerts.channels.slack import escape
from sinks.alerts.config import SmtpSettings
from sinks.alerts.history import RoutingHistory
from sinks.alerts.privacy import Redactor
from sinks.alerts.router import AlertRouter
from sinks.alerts.signals import trend_signal
from tests.test_alerts_helpers import (
    T0,
    Mailbox,
    Receiver,
    free_port,
    make_config,
    self_signed_certificate,
    smtp_server,
    trend_flag,
)


@pytest.fixture
def alert() -> Alert:
    config = make_config()
    signal = trend_signal(trend_flag(), config.severity, Redactor(b"test-secret-0123456789"))
    return AlertRouter(config, "UTC").route([signal], RoutingHistory(), T0)[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def test_webhook_posts_the_content_with_the_idempotency_key(alert: Alert, receiver: Receiver) -> None:
    result = WebhookChannel(timeout_s=5).send(alert, receiver.url("/hooks/desk"))
    assert result.ok and result.status_code == 200
    (got,) = receiver.received
    assert got.path == "/hooks/desk"
    assert got.json() == alert.payload
    assert got.headers["Idempotency-Key"] == alert.alert_id == got.headers["X-Groundswell-Alert-Id"]
    assert got.headers["Content-Type"].startswith("application/json")


def test_slack_posts_text_and_blocks(alert: Alert, receiver: Receiver) -> None:
    assert SlackChannel(timeout_s=5).send(alert, receiver.url()).ok
    body = receiver.received[0].json()
    # mrkdwn escapes & < > everywhere, links included; Slack decodes them for display.
    assert alert.payload["title"] in body["text"] and escape(alert.payload["link"]) in body["text"]
    assert "&amp;metric=" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "sent"), (204, "sent"), (500, "retryable"), (503, "retryable"), (408, "retryable"), (429, "retryable"),
     (400, "permanent"), (404, "permanent"), (410, "permanent"), (301, "permanent"), (307, "permanent")],
)  # fmt: skip
def test_http_answers_are_classified(alert: Alert, receiver: Receiver, status: int, outcome: str) -> None:
    receiver.status = status
    result = WebhookChannel(timeout_s=5).send(alert, receiver.url())
    assert (result.outcome, result.status_code) == (outcome, status)
    assert len(receiver.received) == 1  # a redirect is not followed


def test_retry_after_is_kept(alert: Alert, receiver: Receiver) -> None:
    receiver.status, receiver.extra_headers = 429, {"Retry-After": "7"}
    result = SlackChannel(timeout_s=5).send(alert, receiver.url())
    assert (result.outcome, result.retry_after_s) == ("retryable", 7.0)


def test_a_receiver_that_is_down_is_retryable_and_the_detail_names_no_url(alert: Alert) -> None:
    url = f"http://127.0.0.1:{free_port()}/secret-token-path"
    result = WebhookChannel(timeout_s=2).send(alert, url)
    assert result.outcome == "retryable"
    assert "secret-token-path" not in result.detail and "127.0.0.1" not in result.detail


def smtp_settings(port: int, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "security": "none",
                                 "from_address": "alerts@example.org", "timeout_s": 5}  # fmt: skip
    values.update(overrides)
    return SmtpSettings.model_validate(values)


def test_email_arrives_with_a_stable_message_id(alert: Alert) -> None:
    mailbox, port = Mailbox(), free_port()
    server = smtp_server(mailbox, port)
    try:
        result = EmailChannel(smtp_settings(port)).send(alert, "north@example.org")
    finally:
        server.stop()
    assert result.ok
    (message,) = mailbox.messages
    assert message["Message-ID"] == message_id(alert) == f"<{alert.alert_id}@alerts.groundswell.invalid>"
    assert message["To"] == "north@example.org" and message["Auto-Submitted"] == "auto-generated"
    assert alert.payload["title"] in message["Subject"]
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes) and alert.payload["link"].encode() in body


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_email_over_starttls_with_a_private_ca(alert: Alert, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    mailbox, port = Mailbox(), free_port()
    server = smtp_server(mailbox, port, tls=tls)
    try:
        trusted = EmailChannel(smtp_settings(port, security="starttls", ca_file=cert)).send(alert, "n@example.org")
        untrusted = EmailChannel(smtp_settings(port, security="starttls")).send(alert, "n@example.org")
        plain = EmailChannel(smtp_settings(port, security="none")).send(alert, "n@example.org")
    finally:
        server.stop()
    assert trusted.ok and len(mailbox.messages) == 1
    assert untrusted.outcome == "permanent" and "certificate" in untrusted.detail
    # The server requires STARTTLS: a plain session is refused (530), which no retry will fix.
    assert (plain.outcome, plain.status_code) == ("permanent", 530)


def test_starttls_required_but_not_offered_is_permanent(alert: Alert) -> None:
    mailbox, port = Mailbox(), free_port()
    server = smtp_server(mailbox, port)
    try:
        result = EmailChannel(smtp_settings(port, security="starttls")).send(alert, "n@example.org")
    finally:
        server.stop()
    assert result.outcome == "permanent" and not mailbox.messages


@pytest.mark.parametrize(
    ("reply", "outcome"), [("550 5.1.1 no such user", "permanent"), ("451 4.3.0 later", "retryable")]
)
def test_refused_recipients_are_classified_by_reply_code(alert: Alert, reply: str, outcome: str) -> None:
    mailbox, port = Mailbox(rcpt_reply=reply), free_port()
    server = smtp_server(mailbox, port)
    try:
        result = EmailChannel(smtp_settings(port)).send(alert, "gone@example.org")
    finally:
        server.stop()
    assert (result.outcome, result.status_code) == (outcome, int(reply[:3]))
    assert "gone@example.org" not in result.detail


def test_an_smtp_server_that_is_down_is_retryable(alert: Alert) -> None:
    result = EmailChannel(smtp_settings(free_port())).send(alert, "n@example.org")
    assert result.outcome == "retryable"


def test_log_channel_writes_one_line_without_addresses(alert: Alert, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="groundswell.alerts"):
        assert LogChannel().send(alert, "log").ok
    (record,) = caplog.records
    assert record.levelno == logging.WARNING  # a warning-severity alert
    assert alert.alert_id in record.getMessage() and alert.payload["link"] in record.getMessage()
    assert "127.0.0.1:9" not in record.getMessage()  # the staff webhook URL
