"""What an admin sees of a worker's configuration: every setting, with secrets and passwords hidden."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from config.settings import Settings

HIDDEN = "**********"
URL_SETTINGS = ("kafka_url", "clickhouse_url")


def without_password(url: str) -> str:
    """`https://user:pw@host:8443/db` → `https://user:**********@host:8443/db`; other URLs unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{HIDDEN}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings as JSON. SecretStr fields dump as stars; passwords in URLs are replaced."""
    dumped: dict[str, Any] = settings.model_dump(mode="json")
    for name in URL_SETTINGS:
        if isinstance(dumped.get(name), str):
            dumped[name] = without_password(dumped[name])
    return dumped
