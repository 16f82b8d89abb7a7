"""The embedded development broker: a clear error when its port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams.broker import BrokerError, EmbeddedBroker


def test_a_taken_port_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} is already in use.*GROUNDSWELL_KAFKA_URL"):
            EmbeddedBroker(port, tmp_path / "broker.log").start()
