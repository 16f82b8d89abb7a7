"""config/alerts.yaml: the default loads and matches the geography; bad keys are named; secrets come
from the environment and never show in errors or reprs."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.geography import Geography
from config.settings import DEFAULT_GEOGRAPHY
from sinks.alerts.config import (
    DEFAULT_ALERTS_YAML,
    AlertConfigError,
    ChannelKind,
    load_alert_config,
    parse_alert_config,
)
from tests.test_alerts_helpers import config_dict

SECRET_URL = "https://hooks.slack.com/services/T000/B000/sup3rs3cr3tt0ken"


def test_default_config_loads_and_names_only_regions_of_the_geography() -> None:
    geography = Geography.from_csv(DEFAULT_GEOGRAPHY)
    regions = {p.region for p in geography.precincts.values()}
    config = load_alert_config(regions=regions, env={})
    named = {r for rule in config.rules for r in rule.regions} - {"*"}
    assert named == regions  # every region has someone, and no rule names a region that does not exist
    assert config.escalation_contact is not None and config.member(config.escalation_contact) is not None
    # Without any channel variables set, everyone is reachable through the log.
    assert all(ChannelKind.LOG in s.channels.kinds() for s in config.staff)


def test_default_config_takes_channels_from_the_environment() -> None:
    env = {"GROUNDSWELL_SLACK_WEBHOOK_NORTHEAST": SECRET_URL, "GROUNDSWELL_ALERT_EMAIL_NORTHEAST": "ne@example.org"}
    config = load_alert_config(env=env)
    lead = config.member("northeast-lead")
    assert lead is not None
    assert lead.channels.address(ChannelKind.SLACK) == SECRET_URL
    assert lead.channels.address(ChannelKind.EMAIL) == "ne@example.org"
    assert SECRET_URL not in repr(config) and SECRET_URL not in str(config)


def error_of(data: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(AlertConfigError) as caught:
        parse_alert_config(data, env=env or {})
    return str(caught.value)


def test_unknown_staff_in_a_rule_is_named() -> None:
    data = config_dict()
    data["rules"][1]["staff"] = ["south-lead", "nobody"]
    assert "rules[1].staff: unknown staff ids ['nobody']" in error_of(data)


def test_field_errors_name_the_key_and_never_echo_the_value() -> None:
    data = config_dict()
    data["staff"][0]["channels"]["slack"] = "ftp://" + SECRET_URL.removeprefix("https://")
    message = error_of(data)
    assert "  staff[0].channels.slack: must be an http(s) URL" in message
    assert "sup3rs3cr3t" not in message
    data = config_dict()
    data["rules"][0]["min_severity"] = "urgent"
    assert "rules[0].min_severity" in error_of(data)
    data = config_dict(cooldown_minutes=-5)
    assert "cooldown_minutes" in error_of(data)
    data = config_dict(surprise=True)
    assert "surprise" in error_of(data)


def test_a_missing_environment_variable_is_named_with_its_key() -> None:
    data = config_dict()
    data["staff"][1]["channels"]["slack"] = "${GROUNDSWELL_SLACK_WEBHOOK_SOUTH}"
    message = error_of(data)
    assert "staff[1].channels.slack: environment variable GROUNDSWELL_SLACK_WEBHOOK_SOUTH is not set" in message
    config = parse_alert_config(data, env={"GROUNDSWELL_SLACK_WEBHOOK_SOUTH": SECRET_URL})
    south = config.member("south-lead")
    assert south is not None and south.channels.address(ChannelKind.SLACK) == SECRET_URL


def test_an_empty_optional_variable_turns_the_channel_off() -> None:
    data = config_dict()
    data["staff"][1]["channels"]["slack"] = "${GROUNDSWELL_SLACK_WEBHOOK_SOUTH:-}"
    south = parse_alert_config(data, env={}).member("south-lead")
    assert south is not None and ChannelKind.SLACK not in south.channels.kinds()


def test_a_variables_value_cannot_change_the_yaml_structure(tmp_path: Path) -> None:
    data = config_dict()
    data["staff"][2]["name"] = "${DESK_NAME}"
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_alert_config(path, env={"DESK_NAME": "x\nrules: []\n"})
    desk = config.member("desk")
    assert desk is not None and desk.name == "x\nrules: []\n"
    assert len(config.rules) == len(data["rules"])


def test_cross_field_checks() -> None:
    data = config_dict()
    data["staff"][2]["channels"] = {"email": "desk@example.org"}
    assert "smtp: required because staff ['desk'] have an email channel" in error_of(data)
    data = config_dict(escalation_contact="ghost")
    assert "escalation_contact: unknown staff id 'ghost'" in error_of(data)
    data = config_dict()
    data["rules"][3]["channels"] = ["webhook"]  # the desk has no webhook
    assert "rules[3].channels: webhook is not configured for staff ['desk']" in error_of(data)
    data = config_dict()
    data["staff"][2]["channels"] = {"log": False}
    assert "staff[2]: channels: at least one channel is needed" in error_of(data)
    data = config_dict()
    data["staff"].append(dict(data["staff"][0]))
    assert "staff: duplicate ids ['north-lead']" in error_of(data)
    data = config_dict()
    data["staff"][0]["quiet_hours"] = {"start": "22:00", "end": "22:00"}
    assert "staff[0].quiet_hours" in error_of(data)


def test_regions_are_checked_against_the_geography() -> None:
    config = parse_alert_config(config_dict(), env={})
    config.check_regions({"North", "South"})
    with pytest.raises(AlertConfigError, match=r"rules\[0\]\.regions: unknown regions \['North'\]"):
        config.check_regions({"South", "East"})


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError, match="cannot read"):
        load_alert_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"staff: [\n  slack: {SECRET_URL}\n  - :\n")
    with pytest.raises(AlertConfigError, match="not valid YAML") as caught:
        load_alert_config(bad)
    assert "sup3rs3cr3t" not in str(caught.value)


def test_quiet_hours_and_retry_policies_parse() -> None:
    config = load_alert_config(DEFAULT_ALERTS_YAML, env={})
    lead = config.member("northeast-lead")
    assert lead is not None and lead.quiet_hours is not None
    assert (lead.quiet_hours.start, lead.quiet_hours.end) == (time(22, 0), time(7, 0))
    assert config.retry.of(ChannelKind.WEBHOOK).max_attempts == 40
