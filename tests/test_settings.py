"""Every bad setting fails at start-up with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.geography import Geography, GeographyError
from config.settings import ConfigError, load_settings


def test_secret_required_outside_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROUNDSWELL_SECRET", raising=False)
    with pytest.raises(ConfigError, match="GROUNDSWELL_SECRET is required"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("GROUNDSWELL_KAFKA_URL", "broker1:9092", "kafka://host:port"),
        ("GROUNDSWELL_CLICKHOUSE_URL", "postgres://x", "chdb:///path"),
        ("GROUNDSWELL_TIMEZONE", "Mars/Olympus", "unknown IANA time zone"),
        ("GROUNDSWELL_WEB_PORT", "99999", "GROUNDSWELL_WEB_PORT"),
        ("GROUNDSWELL_CAMPAIGN_START", "31/10/2026", "GROUNDSWELL_CAMPAIGN_START"),
        ("GROUNDSWELL_INGEST__BATCH_MAX_ROWS", "0", "GROUNDSWELL_INGEST__BATCH_MAX_ROWS"),
        ("GROUNDSWELL_SECRET", "short", "at least 16"),
    ],
)
def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch, env: str, value: str, fragment: str) -> None:
    monkeypatch.setenv("GROUNDSWELL_DEMO", "true")
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_settings()


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "gs.yaml"
    config.write_text("web_port: 7000\ntimezone: America/Chicago\ningest: {batch_max_rows: 1000}\n")
    monkeypatch.setenv("GROUNDSWELL_CONFIG", str(config))
    monkeypatch.setenv("GROUNDSWELL_DEMO", "1")
    monkeypatch.setenv("GROUNDSWELL_WEB_PORT", "7001")
    settings = load_settings()
    assert (settings.web_port, settings.timezone, settings.ingest.batch_max_rows) == (7001, "America/Chicago", 1000)
    assert settings.uses_embedded_broker and settings.clickhouse_dsn.startswith("chdb://")
    with pytest.raises(Exception, match="frozen"):
        settings.web_port = 1  # type: ignore[misc]


def test_unknown_yaml_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "gs.yaml"
    config.write_text("web_prot: 7000\n")
    monkeypatch.setenv("GROUNDSWELL_CONFIG", str(config))
    monkeypatch.setenv("GROUNDSWELL_DEMO", "1")
    with pytest.raises(ConfigError, match="web_prot"):
        load_settings()


@pytest.mark.parametrize(
    ("csv", "fragment"),
    [
        ("precinct_id,county,state\nP1,A,OH\n", "header lacks columns ['region']"),
        ("precinct_id,county,region,state\nP1,A,R1,OH\nP1,A,R1,OH\n", "listed twice"),
        ("precinct_id,county,region,state\nP1,A,R1,OH\nP2,A,R2,OH\n", "county 'A' is in region 'R1'"),
        ("precinct_id,county,region,state\nP1,,R1,OH\n", "line 2: empty ['county']"),
        ("precinct_id,county,region,state\n", "no precincts"),
    ],
)
def test_bad_geography(tmp_path: Path, csv: str, fragment: str) -> None:
    path = tmp_path / "geo.csv"
    path.write_text(csv)
    with pytest.raises(GeographyError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Geography.from_csv(path)
