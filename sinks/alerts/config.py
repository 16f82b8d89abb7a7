"""Alert routing configuration (config/alerts.yaml): who hears about what, how, and when.

Loaded into frozen pydantic models; every error names the offending key (`rules[2].staff`,
`staff[0].channels.slack`), and never echoes a value, since values may be secrets. Webhook URLs and
the SMTP password are `SecretStr`: they do not show in reprs or logs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from sinks.alerts.backoff import RetryPolicy
from sinks.alerts.env import MissingVariable, expand
from sinks.alerts.quiet import QuietHours
from sinks.alerts.severity import Severity, SeverityRules, rank

DEFAULT_ALERTS_YAML = Path(__file__).resolve().parents[2] / "config" / "alerts.yaml"
ALL_REGIONS = "*"
STAFF_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Deliberately loose (RFC 5322 allows far more); it catches typos, the SMTP server judges the rest.
EMAIL_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[A-Za-z0-9-]{2,}$")


class AlertConfigError(ValueError):
    """The alert configuration is unreadable or invalid; the message names each bad key."""


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"
    LOG = "log"


def _http_url(value: SecretStr | None) -> SecretStr | None:
    if value is None or not value.get_secret_value().strip():
        return None  # `${VAR:-}` left empty: the channel is off
    parts = urlsplit(value.get_secret_value().strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return SecretStr(value.get_secret_value().strip())


class StaffChannels(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str | None = None
    webhook: SecretStr | None = None  # generic JSON webhook
    slack: SecretStr | None = None  # Slack-compatible incoming webhook
    log: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not EMAIL_ADDRESS.match(value.strip()):
            raise ValueError("is not an email address")
        return value.strip()

    _webhook = field_validator("webhook", "slack")(_http_url)

    def kinds(self) -> tuple[ChannelKind, ...]:
        """The channels this person can be reached on, in a fixed order."""
        on = {
            ChannelKind.WEBHOOK: self.webhook is not None,
            ChannelKind.SLACK: self.slack is not None,
            ChannelKind.EMAIL: self.email is not None,
            ChannelKind.LOG: self.log,
        }
        return tuple(kind for kind, enabled in on.items() if enabled)

    def address(self, kind: ChannelKind) -> str | None:
        """Where to send on `kind` (a secret for webhooks: never log it)."""
        if kind is ChannelKind.WEBHOOK:
            return self.webhook.get_secret_value() if self.webhook else None
        if kind is ChannelKind.SLACK:
            return self.slack.get_secret_value() if self.slack else None
        if kind is ChannelKind.EMAIL:
            return self.email
        return "log" if self.log else None


class StaffMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=200)
    channels: StaffChannels
    quiet_hours: QuietHours | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not STAFF_ID.match(value):
            raise ValueError("must be lower-case letters, digits, '.', '_' or '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> StaffMember:
        if not self.channels.kinds():
            raise ValueError("channels: at least one channel is needed (email, webhook, slack or log: true)")
        return self


class Rule(BaseModel):
    """Flags from `regions` (and `metrics`, if given) at `min_severity` or above go to `staff`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    regions: tuple[str, ...] = Field(min_length=1)  # "*": every region
    staff: tuple[str, ...] = Field(min_length=1)
    metrics: tuple[str, ...] | None = None  # names or patterns ("signups:*", "quality:*"); None: all
    min_severity: Severity = "warning"
    channels: tuple[ChannelKind, ...] | None = None  # None: each person's configured channels

    def covers(self, region: str, metric: str, severity: Severity) -> bool:
        if ALL_REGIONS not in self.regions and region not in self.regions:
            return False
        if self.metrics is not None and not any(fnmatchcase(metric, m) for m in self.metrics):
            return False
        return rank(severity) >= rank(self.min_severity)


class SmtpSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    ca_file: Path | None = None  # a private CA for the relay's certificate; default: the system's
    timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        if not EMAIL_ADDRESS.match(value.strip()):
            raise ValueError("is not an email address")
        return value.strip()

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # `${GROUNDSWELL_SMTP_USER:-}` left empty: no login
        return value.strip()

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None


class RetryPolicies(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook: RetryPolicy = RetryPolicy()
    slack: RetryPolicy = RetryPolicy()
    email: RetryPolicy = RetryPolicy(initial_backoff_s=30.0, max_backoff_s=1800.0, max_attempts=30)
    log: RetryPolicy = RetryPolicy(max_attempts=3, initial_backoff_s=1.0, max_backoff_s=10.0)

    def of(self, kind: ChannelKind) -> RetryPolicy:
        policy: RetryPolicy = getattr(self, kind.value)
        return policy


class AlertConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dashboard_url: str = "http://127.0.0.1:6066"
    # A new alert on the same (level, unit, metric) to the same person within this many minutes of the
    # last one is suppressed unless it is more severe than that one.
    cooldown_minutes: float = Field(default=360.0, ge=0, le=7 * 24 * 60)
    notify_on_close: bool = True  # tell whoever was alerted about an episode when it closes
    # Gets critical alerts at once while their regular recipients are in quiet hours. None: critical
    # alerts then go to the regular recipients at once, quiet hours or not.
    escalation_contact: str | None = None
    severity: SeverityRules = SeverityRules()
    smtp: SmtpSettings | None = None
    retry: RetryPolicies = RetryPolicies()
    staff: tuple[StaffMember, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _references(self) -> AlertConfig:
        ids = [s.id for s in self.staff]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"staff: duplicate ids {duplicates}")
        by_id = {s.id: s for s in self.staff}
        for i, rule in enumerate(self.rules):
            unknown = [s for s in rule.staff if s not in by_id]
            if unknown:
                raise ValueError(f"rules[{i}].staff: unknown staff ids {unknown}")
            for kind in rule.channels or ():
                missing = [s for s in rule.staff if kind not in by_id[s].channels.kinds()]
                if missing:
                    raise ValueError(f"rules[{i}].channels: {kind.value} is not configured for staff {missing}")
        if self.escalation_contact is not None and self.escalation_contact not in by_id:
            raise ValueError(f"escalation_contact: unknown staff id {self.escalation_contact!r}")
        emailed = [s.id for s in self.staff if s.channels.email is not None]
        if emailed and self.smtp is None:
            raise ValueError(f"smtp: required because staff {emailed} have an email channel")
        return self

    def member(self, staff_id: str) -> StaffMember | None:
        return next((s for s in self.staff if s.id == staff_id), None)

    def check_regions(self, known: Collection[str]) -> None:
        """Every region a rule names must exist in the campaign's geography."""
        problems = []
        for i, rule in enumerate(self.rules):
            unknown = sorted(r for r in rule.regions if r != ALL_REGIONS and r not in known)
            if unknown:
                problems.append(f"  rules[{i}].regions: unknown regions {unknown}; known: {sorted(known)}")
        if problems:
            raise AlertConfigError("invalid alert configuration:\n" + "\n".join(problems))


def _location(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "alerts"


def parse_alert_config(data: Any, env: Mapping[str, str] | None = None, source: str = "alerts") -> AlertConfig:
    """Validate already-parsed YAML (a mapping), filling `${NAME}` references from `env`."""
    if not isinstance(data, Mapping):
        raise AlertConfigError(f"{source}: expected a mapping at the top level")
    try:
        expanded = expand(data, os.environ if env is None else env)
        return AlertConfig.model_validate(expanded)
    except MissingVariable as exc:
        raise AlertConfigError(f"invalid alert configuration in {source}:\n  {exc}") from None
    except ValidationError as exc:
        # Only locations and messages: `input` may be a webhook URL or a password.
        problems = []
        for error in exc.errors(include_input=False):
            message = error["msg"].removeprefix("Value error, ")
            # Cross-field checks name their keys themselves.
            problems.append(f"  {_location(tuple(error['loc']))}: {message}" if error["loc"] else f"  {message}")
        raise AlertConfigError(f"invalid alert configuration in {source}:\n" + "\n".join(problems)) from None


def load_alert_config(
    path: Path = DEFAULT_ALERTS_YAML, env: Mapping[str, str] | None = None, regions: Collection[str] | None = None
) -> AlertConfig:
    """Read, expand and validate the YAML; with `regions`, also check the rules' regions exist."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertConfigError(f"cannot read alert configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # Not str(exc): PyYAML quotes the offending line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise AlertConfigError(f"alert configuration {path} is not valid YAML: {problem}{where}") from None
    config = parse_alert_config(data, env, source=str(path))
    if regions is not None:
        config.check_regions(regions)
    return config
