"""Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): `text` plus Block Kit `blocks`.

`text` is the notification fallback; the blocks show the headline, the summary, the key figures and
the dashboard link. Text is escaped for mrkdwn (&, <, >: https://api.slack.com/reference/surfaces/formatting#escaping)
and cut to Block Kit's limits (header 150 characters, section text 3000:
https://api.slack.com/reference/block-kit/blocks). Slack's error answers (400 invalid_payload, 403,
404 no_service, 410 channel_is_archived, 429 with Retry-After, 5xx:
https://api.slack.com/messaging/webhooks#handling_errors) map onto the usual HTTP classes.
"""

from __future__ import annotations

import json
from typing import Any

from sinks.alerts.alert import Alert
from sinks.alerts.channels.base import SendResult
from sinks.alerts.channels.http import post_json
from sinks.alerts.channels.webhook import idempotency_headers
from sinks.alerts.config import ChannelKind

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
SEVERITY_MARK = {"info": "Info", "warning": "Warning", "critical": "CRITICAL"}


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _figures(payload: dict[str, Any]) -> list[str]:
    flag, movement, confidence = payload["flag"], payload.get("movement", {}), payload.get("confidence", {})
    figures = [f"*Region*\n{flag['region']}", f"*Severity*\n{payload['severity']}"]
    if "effect_points" in movement and movement["effect_points"] is not None:
        figures.append(f"*Effect*\n{movement['effect_points']:+.2f} points")
    elif movement.get("effect_percent") is not None:
        figures.append(f"*Effect*\n{movement['effect_percent']:+.0f}%")
    if confidence.get("z_score") is not None:
        figures.append(f"*z*\n{confidence['z_score']:.1f}")
    if confidence.get("p_value") is not None:
        figures.append(f"*p*\n{confidence['p_value']:.1e}")
    return [escape(f) for f in figures]


def render(alert: Alert) -> dict[str, Any]:
    payload = alert.payload
    footer = f"<{escape(payload['link'])}|Open in the dashboard> · alert {alert.alert_id}"
    mark = SEVERITY_MARK.get(payload["severity"], payload["severity"])
    title = f"[{mark}] {payload['title']}"
    return {
        "text": escape(f"{title} {payload['link']}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(title, HEADER_LIMIT)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(payload["summary"]), SECTION_LIMIT)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in _figures(payload)]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]},
        ],
    }


class SlackChannel:
    kind = ChannelKind.SLACK

    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s

    def send(self, alert: Alert, address: str) -> SendResult:
        body = json.dumps(render(alert), allow_nan=False).encode()
        return post_json(address, body, idempotency_headers(alert), self._timeout)
