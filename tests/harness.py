"""Running the real system in tests: an embedded broker, worker processes, and queries over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from config.settings import EVENT_TOPICS

TOKEN = "gs_test_admin_token_0123456789"
PARTITIONS = 3
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@dataclass
class WorkerProcess:
    """`groundswell worker` in its own process, as an operator runs it."""

    bootstrap: str
    data_dir: Path
    geography: Path | None = None
    extra_env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    def start(self) -> WorkerProcess:
        self.port = free_port()
        env = {
            **os.environ,
            "GROUNDSWELL_KAFKA_URL": f"kafka://{self.bootstrap}",
            "GROUNDSWELL_DATA_DIR": str(self.data_dir),
            "GROUNDSWELL_SECRET": "test-secret-0123456789abcdef",
            "GROUNDSWELL_ADMIN_TOKEN": TOKEN,
            "GROUNDSWELL_WEB_PORT": str(self.port),
            # The broker is the embedded one: use its session timeout (see IngestSettings).
            "GROUNDSWELL_INGEST__SESSION_TIMEOUT_MS": "3000",
            # Several partitions per topic (the default is one), so that batching, marks and
            # replays are exercised per partition.
            **{f"GROUNDSWELL_TOPICS__{topic}__PARTITIONS": str(PARTITIONS) for topic in EVENT_TOPICS},
            **({"GROUNDSWELL_GEOGRAPHY": str(self.geography)} if self.geography else {}),
            **(self.extra_env or {}),
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(self.healthy, 60, "the worker to become healthy")
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}: {self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                return bool(json.loads(response.read()).get("consuming"))
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self) -> str:
        path = self.data_dir / "worker.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def sql(self, query: str) -> list[list[Any]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1/sql",
            data=json.dumps({"query": query}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return list(json.loads(response.read())["rows"])

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                return response.status, json.loads(body) if body.startswith((b"{", b"[")) else body.decode()
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    """Send with kafka-python, as an outside producer would; returns how many were acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    futures = [producer.send(topic, key=key, value=value) for topic, key, value in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    producer.close()
    return len(futures)


def call(worker: WorkerProcess, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """One JSON API call to a worker as `token`: (status, decoded body), errors included."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
