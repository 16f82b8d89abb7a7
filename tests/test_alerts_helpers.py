"""Shared pieces for the alert tests: flag builders, a small routing config, a movable clock, and real
local receivers (an HTTP server in a thread, an aiosmtpd SMTP server). No tests here."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from models.trends.flags import TrendFlag
from models.trends.quality import QualityFlag
from sinks.alerts.config import AlertConfig, parse_alert_config

T0 = datetime(2026, 10, 6, 15, 0, tzinfo=UTC)  # a Tuesday, mid-afternoon UTC


def trend_flag(**overrides: Any) -> TrendFlag:
    """A precinct support-rate flag in North, 20 points down on 240 IDs; override any field."""
    base = TrendFlag(
        flag_id="support_rate|precinct|P01|down|2026-10-05T09:00:00+00:00",
        status="new",
        metric="support_rate",
        level="precinct",
        unit_id="P01",
        region_id="North",
        direction="down",
        effect=-0.20,
        effect_kind="difference",
        baseline=0.55,
        observed=0.35,
        volume=240.0,
        z_score=4.0,
        p_value=3.2e-5,
        statistic=9.1,
        threshold=8.0,
        onset=datetime(2026, 10, 5, 9, tzinfo=UTC),
        raised_at=datetime(2026, 10, 6, 14, tzinfo=UTC),
        window_start=datetime(2026, 10, 6, 14, tzinfo=UTC),
        window_end=datetime(2026, 10, 6, 15, tzinfo=UTC),
    )
    return replace(base, **overrides)


def quality_flag(canvasser: str = "C0042", check: str = "contact_rate_high") -> QualityFlag:
    day = date(2026, 10, 6)
    return QualityFlag(f"quality|{check}|{canvasser}|{day}", canvasser, day, check, 0.9, 0.6, 45, 50, 1e-9, 1e-6)


def config_dict(**overrides: Any) -> dict[str, Any]:
    """Two regions: each lead gets warning and above for their region; the desk gets everything."""
    data: dict[str, Any] = {
        "dashboard_url": "https://gs.example.org/",
        "cooldown_minutes": 360,
        "escalation_contact": "on-call",
        "severity": {"material_effect": {"support_rate": 0.04, "contact_rate": 0.02, "signups:*": 0.3}},
        "staff": [
            {"id": "north-lead", "name": "North lead", "channels": {"log": True, "webhook": "http://127.0.0.1:9/n"},
             "quiet_hours": {"start": "22:00", "end": "07:00"}},
            {"id": "south-lead", "name": "South lead", "channels": {"log": True, "webhook": "http://127.0.0.1:9/s"},
             "quiet_hours": {"start": "22:00", "end": "07:00"}},
            {"id": "desk", "name": "Analytics desk", "channels": {"log": True}},
            {"id": "on-call", "name": "On call", "channels": {"log": True},
             "quiet_hours": {"start": "23:00", "end": "06:00"}},
        ],
        "rules": [
            {"regions": ["North"], "staff": ["north-lead"], "min_severity": "warning"},
            {"regions": ["South"], "staff": ["south-lead"], "min_severity": "warning"},
            {"regions": ["North", "South"], "metrics": ["quality:*"], "staff": ["north-lead"], "min_severity": "info",
             "channels": ["log"]},
            {"regions": ["*"], "staff": ["desk"], "min_severity": "info"},
        ],
    }  # fmt: skip
    data.update(overrides)
    return data


def make_config(**overrides: Any) -> AlertConfig:
    return parse_alert_config(config_dict(**overrides), env={})


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# --- a real HTTP receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server in a thread that records every POST and answers `status` (or a script of them)."""

    status: int = 200
    script: list[int] = field(default_factory=list)  # answered first, one per request
    extra_headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    code = receiver.script.pop(0) if receiver.script else receiver.status
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body, code))
                self.send_response(code)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                if 300 <= code < 400:
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/moved")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until `start` is called again (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a real SMTP server (aiosmtpd) --------------------------------------------------------------------


@dataclass
class Mailbox:
    """Records accepted messages; `rcpt_reply` lets a test refuse recipients (e.g. '550 ...')."""

    messages: list[Message] = field(default_factory=list)
    rcpt_reply: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        return "250 Message accepted"


def smtp_server(mailbox: Mailbox, port: int, tls: ssl.SSLContext | None = None) -> Controller:
    kwargs: dict[str, Any] = {"tls_context": tls, "require_starttls": True} if tls else {}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with the openssl command line (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
