"""Frozen settings: defaults < config/groundswell.yaml (or GROUNDSWELL_CONFIG) < GROUNDSWELL_* environment.

Every bad value fails at start-up with a message that names the setting, never later in the stream.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_YAML = PACKAGE_DIR / "groundswell.yaml"
DEFAULT_GEOGRAPHY = PACKAGE_DIR / "geography.csv"
DEFAULT_ALERTS = PACKAGE_DIR / "alerts.yaml"
CONFIG_ENV = "GROUNDSWELL_CONFIG"

CANVASS_TOPIC = "canvass.knock"
SIGNUP_TOPIC = "digital.signup"
EMAIL_TOPIC = "email.event"
DLQ_TOPIC = "groundswell.dlq"
CONTROL_TOPIC = "groundswell.control"
EVENT_TOPICS = (CANVASS_TOPIC, SIGNUP_TOPIC, EMAIL_TOPIC)


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


class TopicSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)


class IngestSettings(BaseModel):
    """The batch-level ingest path (see docs/architecture.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consumer_group: str = Field(default="groundswell-ingest", min_length=1)
    # A batch closes at whichever comes first; 200 ms keeps p99 freshness under a second.
    batch_max_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    batch_max_wait_ms: int = Field(default=200, ge=1, le=60_000)
    # The broker holds a fetch this long when there is no data: a latency floor.
    fetch_max_wait_ms: int = Field(default=50, ge=0, le=5_000)
    # Unset: 3 s on the embedded broker (which completes a group join only after half the session
    # timeout, so this is start-up time) and 10 s on Kafka (whose brokers refuse less than 6 s).
    session_timeout_ms: int | None = Field(default=None, ge=1_000, le=300_000)
    heartbeat_interval_ms: int = Field(default=1_000, ge=100, le=60_000)
    max_partition_fetch_bytes: int = Field(default=8 << 20, ge=64 << 10)
    # Messages the consumer prefetches in the background, in KiB (librdkafka queued.max.messages.kbytes).
    prefetch_kbytes: int = Field(default=32 << 10, ge=1 << 10, le=2 << 20)
    # event_ids remembered per partition to reject re-sent events (bounded memory).
    dedup_window_events: int = Field(default=500_000, ge=0, le=50_000_000)
    max_event_bytes: int = Field(default=64 << 10, ge=1024)
    future_tolerance_s: int = Field(default=600, ge=0)
    insert_retry_limit: int = Field(default=20, ge=0)

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> IngestSettings:
        if self.session_timeout_ms is not None and self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("ingest.heartbeat_interval_ms must be at most a third of ingest.session_timeout_ms")
        return self

    def session_timeout(self, embedded_broker: bool) -> int:
        if self.session_timeout_ms is not None:
            return self.session_timeout_ms
        return 3_000 if embedded_broker else 10_000


class ClickHouseSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # A cluster name renders Replicated engines, Distributed tables and ON CLUSTER DDL.
    cluster: str | None = None
    deduplication_window: int = Field(default=10_000, ge=100, le=1_000_000)


class TrendSettings(BaseModel):
    """The trend agent (streams/trends.py): which worker runs it, how often, how long an hour stays open."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    interval_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    # An hour is evaluated this long after it ends, so late events still count in it.
    grace_s: float = Field(default=600.0, ge=0.0, le=86_400.0)


class ScoringSettings(BaseModel):
    """The scoring agent (streams/scoring.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Voters kept out of online training, so model metrics are not biased by who was contacted.
    evaluation_share: float = Field(default=0.05, ge=0.0, lt=0.5)
    batch_rows: int = Field(default=50_000, ge=100, le=1_000_000)
    # How often learner states and metrics are saved; a crash replays at most this much.
    checkpoint_s: float = Field(default=30.0, ge=1.0, le=3600.0)


class LinkingSettings(BaseModel):
    """The linking agent (streams/linking.py, docs/linking.md): people in the stream joined to the voter file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    interval_s: float = Field(default=2.0, ge=0.1, le=3600.0)
    # Raw events read per micro-batch (signups and email events each).
    batch_rows: int = Field(default=20_000, ge=10, le=1_000_000)
    # The model is trained (unsupervised) once this many people are known, on up to training_people.
    min_training_people: int = Field(default=1_000, ge=1)
    training_people: int = Field(default=30_000, ge=1)
    training_u_pairs: int = Field(default=1_000_000, ge=1_000)
    training_address_u_pairs: int = Field(default=20_000_000, ge=0)
    # Decision thresholds on the posterior (models/linking/matcher.py; chosen in docs/linking.md).
    match_threshold: float = Field(default=0.80, gt=0.0, le=1.0)
    review_threshold: float = Field(default=0.20, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> LinkingSettings:
        if self.review_threshold > self.match_threshold:
            raise ValueError("linking.review_threshold must not exceed linking.match_threshold")
        return self


class Settings(BaseSettings):
    """All of Groundswell's configuration. Frozen: pass it around, never mutate it."""

    model_config = SettingsConfigDict(
        env_prefix="GROUNDSWELL_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        yaml_file=None,
    )

    campaign_name: str = "Simulated campaign"
    kafka_url: str | None = None
    clickhouse_url: str | None = None
    data_dir: Path = Path("groundswell-data")
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    secret: SecretStr | None = None
    demo: bool = False
    geography: Path = DEFAULT_GEOGRAPHY
    # Who receives which alerts, through which channels (docs/alerts.md).
    alerts_config: Path = DEFAULT_ALERTS
    campaign_start: date | None = None
    timezone: str = "UTC"
    admin_token: SecretStr | None = None
    metrics_public: bool = False
    embedded_broker_port: int = Field(default=9092, ge=1, le=65535)
    # Names this worker's Faust consumer group: unique per worker so each sees every control message.
    worker_id: str = Field(default_factory=lambda: socket.gethostname() or "worker-1", min_length=1)
    topics: dict[str, TopicSettings] = Field(default_factory=dict)
    ingest: IngestSettings = IngestSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    trends: TrendSettings = TrendSettings()
    scoring: ScoringSettings = ScoringSettings()
    linking: LinkingSettings = LinkingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_path = Path(os.environ.get(CONFIG_ENV) or DEFAULT_YAML)
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))

    @field_validator("kafka_url")
    @classmethod
    def _kafka_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not re.fullmatch(r"kafka://[^,/\s]+:\d+(,[^,/\s]+:\d+)*/?", value.strip()):
            raise ValueError(f"expected kafka://host:port[,host:port...], got {value!r}")
        return value.strip().rstrip("/")

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not re.match(r"^(chdb://.*|https?://[^/\s]+(/\w*)?)$", value.strip()):
            raise ValueError(f"expected chdb:///path or http(s)://user:password@host:port/database, got {value!r}")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, value: dict[str, TopicSettings]) -> dict[str, TopicSettings]:
        known = {*EVENT_TOPICS, DLQ_TOPIC, CONTROL_TOPIC}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown topics {unknown}; known: {sorted(known)}")
        return value

    @model_validator(mode="after")
    def _secret_outside_demo(self) -> Settings:
        if not self.demo and self.secret is None:
            raise ValueError(
                "GROUNDSWELL_SECRET is required outside demo mode (it keys the hashes of emails and phones)"
            )
        if self.secret is not None and len(self.secret.get_secret_value()) < 16:
            raise ValueError("GROUNDSWELL_SECRET must be at least 16 characters")
        return self

    # Derived values: computed, never stored twice.
    @property
    def uses_embedded_broker(self) -> bool:
        return self.kafka_url is None

    @property
    def bootstrap_servers(self) -> str:
        if self.kafka_url is None:
            return f"127.0.0.1:{self.embedded_broker_port}"
        return self.kafka_url.removeprefix("kafka://")

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def is_embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    def topic(self, name: str) -> TopicSettings:
        return self.topics.get(name, TopicSettings(partitions=1 if name == CONTROL_TOPIC else 4))

    @property
    def hashing_secret(self) -> bytes:
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        # Demo mode only: a fixed, public key. Hashes are then pseudonyms, not protection.
        return b"groundswell-demo-secret-not-for-real-data"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings or raise ConfigError naming every bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            env = "GROUNDSWELL_" + "__".join(str(p) for p in err["loc"]).upper() if err["loc"] else ""
            problems.append(f"  {where} ({env}): {err['msg']}" if env else f"  {where}: {err['msg']}")
        raise ConfigError("invalid Groundswell configuration:\n" + "\n".join(problems)) from None
