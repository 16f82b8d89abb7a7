"""Alert channels: generic JSON webhook, Slack-compatible webhook, SMTP email, log."""

from __future__ import annotations

from collections.abc import Mapping

from sinks.alerts.channels.base import Channel, Outcome, SendResult
from sinks.alerts.channels.email import EmailChannel
from sinks.alerts.channels.log import LogChannel
from sinks.alerts.channels.slack import SlackChannel
from sinks.alerts.channels.webhook import WebhookChannel
from sinks.alerts.config import AlertConfig, ChannelKind


def build_channels(config: AlertConfig) -> Mapping[ChannelKind, Channel]:
    """One sender per channel kind the configuration can use (email only with SMTP settings)."""
    channels: dict[ChannelKind, Channel] = {
        ChannelKind.WEBHOOK: WebhookChannel(config.retry.webhook.timeout_s),
        ChannelKind.SLACK: SlackChannel(config.retry.slack.timeout_s),
        ChannelKind.LOG: LogChannel(),
    }
    if config.smtp is not None:
        channels[ChannelKind.EMAIL] = EmailChannel(config.smtp)
    return channels


__all__ = [
    "Channel",
    "EmailChannel",
    "LogChannel",
    "Outcome",
    "SendResult",
    "SlackChannel",
    "WebhookChannel",
    "build_channels",
]
