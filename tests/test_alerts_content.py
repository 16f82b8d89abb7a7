"""What an alert says: figures in points and percent recomputed from the flag, a dashboard link that
parses back to the flag, and no email addresses or phone numbers whatever the identifiers hold."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from sinks.alerts.channels import slack
from sinks.alerts.channels.email import render as render_email
from sinks.alerts.content import alert_content
from sinks.alerts.history import RoutingHistory
from sinks.alerts.privacy import Redactor
from sinks.alerts.router import AlertRouter
from sinks.alerts.signals import quality_signal, trend_signal
from tests.test_alerts_helpers import T0, make_config, quality_flag, trend_flag

REDACT = Redactor(b"test-secret-0123456789")
EMAIL = "jane.doe+canvass@example.com"
PHONE = "(614) 555-0199"
PHONE_DIGITS = "6145550199"


def test_rate_figures_are_in_points_and_percent() -> None:
    flag = trend_flag(effect=-0.0625, baseline=0.5125, observed=0.45, volume=312.0, z_score=4.14, p_value=1.7e-5)
    content = alert_content(trend_signal(flag, make_config().severity, REDACT), "raised", "https://gs.example.org")
    movement = content["movement"]
    assert movement["effect_points"] == round(100 * (0.45 - 0.5125), 2)
    assert (movement["baseline"], movement["observed"], movement["volume"]) == (0.5125, 0.45, 312.0)
    assert content["title"] == "Support rate down 6.2 points in precinct P01 (North)"
    for text in ("45.0% observed", "baseline of 51.2%", "312 IDs", "z = 4.1", "p = 1.7e-05"):
        assert text in content["summary"], text
    assert content["window"]["start"] == flag.window_start.isoformat()
    assert content["window"]["onset"] == flag.onset.isoformat()
    assert content["confidence"]["z_score"] == 4.14


def test_count_figures_are_a_percent_change_and_infinite_effects_stay_valid_json() -> None:
    flag = trend_flag(metric="signups:all", effect=0.85, effect_kind="ratio", baseline=40.0, observed=74.0,
                      volume=40.0, direction="up", level="region", unit_id="North")  # fmt: skip
    content = alert_content(trend_signal(flag, make_config().severity, REDACT), "raised", "https://x.org")
    assert content["movement"]["effect_percent"] == 85.0
    assert content["title"] == "Signups up 85% in region North"
    infinite = trend_flag(metric="signups:all", effect=float("inf"), effect_kind="ratio", baseline=0.0, observed=3.0)
    content = alert_content(trend_signal(infinite, make_config().severity, REDACT), "raised", "https://x.org")
    assert content["movement"]["effect"] is None
    json.dumps(content, allow_nan=False)  # raises on inf or nan


def test_the_link_opens_the_flag_in_the_dashboard() -> None:
    flag = trend_flag(level="county", unit_id="OH/Alder County", region_id="North East")
    signal = trend_signal(flag, make_config().severity, REDACT)
    link = alert_content(signal, "raised", "https://gs.example.org")["link"]
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "gs.example.org", "/dashboard")
    params = {k: v[0] for k, v in parse_qs(parts.fragment).items()}
    assert params == {"region": "North East", "metric": "support_rate", "level": "county",
                      "unit": "OH/Alder County", "flag": flag.flag_id}  # fmt: skip
    assert "Alder County, OH (North East)" in alert_content(signal, "raised", "https://gs.example.org")["title"]


def pii_free(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return EMAIL not in text and "jane.doe" not in text and PHONE not in text and PHONE_DIGITS not in digits


def test_no_pii_reaches_any_rendering_even_from_identifiers_that_hold_some() -> None:
    config = make_config()
    router = AlertRouter(config, "UTC")
    signals = [
        quality_signal(quality_flag(canvasser=EMAIL), "North", config.severity, REDACT),
        quality_signal(quality_flag(canvasser=PHONE, check="gps_exceptions"), "North", config.severity, REDACT),
        trend_signal(
            trend_flag(flag_id=f"signups:{EMAIL}|region|North|up|2026", metric=f"signups:{EMAIL}", level="region",
                       unit_id="North", effect=1.0, effect_kind="ratio", direction="up"),
            config.severity, REDACT,
        ),
    ]  # fmt: skip
    alerts = router.route(signals, RoutingHistory(), T0)
    assert len({a.flag_id for a in alerts}) == 3  # two people do not collapse into one pseudonym
    for alert in alerts:
        renderings = [
            json.dumps(alert.payload),
            json.dumps(slack.render(alert)),
            render_email(alert, "alerts@example.org", "lead@example.org").as_string(),
            " ".join(str(v) for v in (alert.flag_id, alert.unit_id, alert.metric, alert.reason)),
        ]
        for text in renderings:
            assert pii_free(text), text
    # Pseudonyms are stable (dedup survives a restart) and keyed (another deployment's differ).
    assert REDACT(EMAIL) == Redactor(b"test-secret-0123456789")(EMAIL)
    assert REDACT(EMAIL) != Redactor(b"another-secret-0123456")(EMAIL)


def test_geography_ids_and_dates_are_not_mistaken_for_pii() -> None:
    flag = trend_flag(unit_id="3904912345678", flag_id="support_rate|precinct|3904912345678|down|2026-10-05")
    signal = trend_signal(flag, make_config().severity, REDACT)
    # A long precinct code from the operator's geography file, and the flag id that holds it, are kept.
    assert (signal.unit_id, signal.flag_id) == (flag.unit_id, flag.flag_id)
    assert REDACT("2026-10-05T09:00:00+00:00 C004512") == "2026-10-05T09:00:00+00:00 C004512"


def test_slack_payload_escapes_markup_and_keeps_block_limits() -> None:
    config = make_config()
    flag = trend_flag(metric="signups:<script>&co", level="region", unit_id="North", effect=0.5,
                      effect_kind="ratio", direction="up")  # fmt: skip
    alert = AlertRouter(config, "UTC").route(
        [trend_signal(flag, config.severity, REDACT)], RoutingHistory(), datetime(2026, 10, 6, 12, tzinfo=UTC)
    )[0]
    payload = slack.render(alert)
    section = payload["blocks"][1]["text"]["text"]
    assert "<script>" not in section and "&lt;script&gt;&amp;co" in section
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert slack.escape(alert.payload["link"]) in payload["blocks"][3]["elements"][0]["text"]
