"""Alert routing and delivery: trend and data-quality flags to the right regional staff.

Flow (docs/alerts.md): `AlertDispatcher.submit_trend_flags(store, flags)` routes flags (pure logic in
`router.py`: region rules, once per episode, cool-down, quiet hours, escalation) and stores the alerts
in ClickHouse (`store.py`, tables in `tables.py`) before anything is sent; `AlertDeliverer` sends
due alerts through the channels (`channels/`: webhook, Slack, email, log) with retries and backoff,
recording each attempt. Configuration: config/alerts.yaml (`config.py`).
"""

from sinks.alerts.alert import Alert, AlertStatus
from sinks.alerts.channels import build_channels
from sinks.alerts.config import AlertConfig, AlertConfigError, ChannelKind, load_alert_config, parse_alert_config
from sinks.alerts.deliverer import AlertDeliverer, DeliveryReport
from sinks.alerts.dispatch import AlertDispatcher
from sinks.alerts.router import AlertRouter
from sinks.alerts.severity import Severity
from sinks.alerts.store import AckOutcome, AckResult, AlertStore, DeliveryAttempt
from sinks.alerts.tables import ALERT_ACKS, ALERT_DELIVERIES, ALERT_TABLES, ALERTS

__all__ = [
    "ALERTS",
    "ALERT_ACKS",
    "ALERT_DELIVERIES",
    "ALERT_TABLES",
    "AckOutcome",
    "AckResult",
    "Alert",
    "AlertConfig",
    "AlertConfigError",
    "AlertDeliverer",
    "AlertDispatcher",
    "AlertRouter",
    "AlertStatus",
    "AlertStore",
    "ChannelKind",
    "DeliveryAttempt",
    "DeliveryReport",
    "Severity",
    "build_channels",
    "load_alert_config",
    "parse_alert_config",
]
