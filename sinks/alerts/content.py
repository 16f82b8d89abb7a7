"""What an alert says: what moved, where, which way, by how much against which baseline, on what
volume, how surely, over which window, and a link to the dashboard view. Figures only, no people.

The content is one JSON-ready dict, stored with the alert and rendered by each channel (the generic
webhook sends it as is). Rates are shown in percent and their effects in points; counts as events
and a percent change against the baseline.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

from models.trends.flags import TrendFlag
from models.trends.quality import QualityFlag
from sinks.alerts.signals import Signal

SCHEMA = "groundswell.alert.v1"
Event = Literal["raised", "escalated", "closed"]

METRIC_LABELS = {
    "support_rate": ("support rate", "IDs"),
    "support_residual": ("support against the model", "IDs"),
    "contact_rate": ("contact rate", "attempts"),
    "email_click_rate": ("email click rate", "delivered emails"),
    "email_unsubscribe_rate": ("unsubscribe rate", "delivered emails"),
}
QUALITY_CHECKS = {
    "contact_rate_high": ("contact rate implausibly high", "contacts", "attempts"),
    "contact_rate_low": ("contact rate implausibly low", "contacts", "attempts"),
    "doors_minutes_apart": ("doors minutes apart", "door gaps under two minutes", "timed door gaps"),
    "gps_exceptions": ("GPS exceptions", "GPS fixes over 100 m from the address", "GPS fixes"),
}
P_VALUE_NOTE = (
    "one-sided, for this unit alone; the alarm itself passed a CUSUM threshold set by the campaign's "
    "false-alarm budget across all units"
)


def dashboard_link(base_url: str, signal: Signal) -> str:
    params = {
        "region": signal.region,
        "metric": signal.metric,
        "level": signal.level,
        "unit": signal.unit_id,
        "flag": signal.flag_id,
    }
    return f"{base_url}/dashboard#{urlencode(params, quote_via=quote, safe='')}"


def metric_label(metric: str) -> tuple[str, str]:
    """(what is measured, what the volume counts)."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    if metric.startswith("signups:"):
        source = metric.removeprefix("signups:")
        return ("signups" if source == "all" else f"signups from {source}"), "expected signups"
    if metric.startswith("quality:"):
        return QUALITY_CHECKS.get(metric.removeprefix("quality:"), (metric, "", ""))[0], ""
    return metric.replace("_", " "), "trials"


def place(signal: Signal) -> str:
    if signal.level == "region":
        return f"region {signal.region}"
    if signal.level == "county":
        # County unit ids are "state/county" (made unique campaign-wide by the trend agent).
        state, _, county = signal.unit_id.rpartition("/")
        name = f"{county}, {state}" if state else county
        return f"{name} ({signal.region})"
    return f"{signal.level} {signal.unit_id} ({signal.region})"


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _percent(proportion: float) -> str:
    value = 100.0 * proportion
    return f"{value:.2f}%" if abs(value) < 1 else f"{value:.1f}%"


def _points(proportion: float) -> str:
    value = 100.0 * abs(proportion)
    return f"{value:.2f} points" if value < 1 else f"{value:.1f} points"


def _when(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M %Z").strip()
    return moment.isoformat()


def _trend_figures(flag: TrendFlag, label: str, volume_unit: str, where: str) -> tuple[str, str, dict[str, Any]]:
    """(headline, summary, movement) for a trend flag."""
    rate = flag.effect_kind == "difference"
    if rate:
        size = _points(flag.effect)
        against = (
            f"{_percent(flag.observed)} observed against a baseline of {_percent(flag.baseline)} "
            f"over {flag.volume:,.0f} {volume_unit}"
        )
    else:
        size = f"{100 * abs(flag.effect):.0f}%" if math.isfinite(flag.effect) else "from a zero baseline"
        against = f"{flag.observed:,.0f} observed against {flag.baseline:,.1f} expected"
    headline = f"{label.capitalize()} {flag.direction} {size} in {where}"
    summary = (
        f"{label.capitalize()} in {where}: {flag.direction} {size}, {against} since {_when(flag.onset)} "
        f"(estimated onset). z = {flag.z_score:.1f}, one-sided p = {flag.p_value:.1e} for this unit alone. "
        f"Latest window {_when(flag.window_start)} to {_when(flag.window_end)}."
    )
    movement: dict[str, Any] = {
        "direction": flag.direction,
        "effect": _number(flag.effect),
        "effect_kind": flag.effect_kind,
        "effect_points" if rate else "effect_percent": _number(round(100 * flag.effect, 2)),
        "baseline": _number(flag.baseline),
        "observed": _number(flag.observed),
        "volume": _number(flag.volume),
        "volume_unit": volume_unit if rate else "expected events",
    }
    return headline, summary, movement


def _trend_content(signal: Signal, flag: TrendFlag, event: Event) -> dict[str, Any]:
    label, volume_unit = metric_label(signal.metric)
    where = place(signal)
    headline, summary, movement = _trend_figures(flag, label, volume_unit, where)
    if event == "closed":
        title = f"Closed: {label} {flag.direction} in {where}"
        summary = f"The episode that began {_when(flag.onset)} has closed (no new alarm since). Last figures: {summary}"
    else:
        title = headline if event == "raised" else f"Now {signal.severity}: {headline}"
        summary += _members_note(signal)
    return {
        "title": title,
        "summary": summary,
        "movement": movement,
        "confidence": {
            "z_score": _number(flag.z_score),
            "p_value": _number(flag.p_value),
            "p_value_note": P_VALUE_NOTE,
        },
        "window": {
            "start": flag.window_start.isoformat(),
            "end": flag.window_end.isoformat(),
            "onset": flag.onset.isoformat(),
            "raised_at": flag.raised_at.isoformat(),
        },
    }


def _members_note(signal: Signal) -> str:
    """The county and precinct flags this alert speaks for (sinks/alerts/grouping.py)."""
    if not signal.grouped:
        return ""
    counts = {level: sum(m.startswith(f"{level}:") for m in signal.grouped) for level in ("county", "precinct")}
    parts = [f"{n} {level if n == 1 else ('counties' if level == 'county' else 'precincts')}"
             for level, n in counts.items() if n]  # fmt: skip
    return f" Also flagged the same way, without alerts of their own: {' and '.join(parts)} of {signal.region}."


def _quality_content(signal: Signal, flag: QualityFlag, event: Event) -> dict[str, Any]:
    label, counted, out_of = QUALITY_CHECKS.get(flag.check, (flag.check, "events", "trials"))
    where = place(signal)
    beyond = "below" if flag.check == "contact_rate_low" else "above"
    headline = f"Data quality: {label} for {where} on {flag.day.isoformat()}"
    summary = (
        f"{where.capitalize()}: {flag.count} {counted} of {flag.total} {out_of} ({_percent(flag.observed)}) "
        f"on {flag.day.isoformat()}, "
        f"{beyond} the plausible limit of {_percent(flag.limit)}: exact binomial p = {flag.p_value:.1e}, "
        f"under the day's Bonferroni level {flag.p_value_limit:.1e}."
    )
    return {
        "title": headline if event == "raised" else f"Now {signal.severity}: {headline}",
        "summary": summary,
        "movement": {
            "check": flag.check,
            "direction": "down" if flag.check == "contact_rate_low" else "up",
            "observed": _number(flag.observed),
            "limit": _number(flag.limit),
            "count": flag.count,
            "total": flag.total,
        },
        "confidence": {"p_value": _number(flag.p_value), "p_value_limit": _number(flag.p_value_limit)},
        "window": {"day": flag.day.isoformat()},
    }


def alert_content(signal: Signal, event: Event, dashboard_url: str) -> dict[str, Any]:
    """The alert's JSON-ready content, the same for every recipient."""
    if isinstance(signal.flag, TrendFlag):
        body = _trend_content(signal, signal.flag, event)
    else:
        body = _quality_content(signal, signal.flag, event)
    label, _ = metric_label(signal.metric)
    return {
        "schema": SCHEMA,
        "event": event,
        "severity": signal.severity,
        **body,
        "flag": {
            "id": signal.flag_id,
            "source": signal.source,
            "status": signal.status,
            "metric": signal.metric,
            "metric_label": label,
            "level": signal.level,
            "unit_id": signal.unit_id,
            "region": signal.region,
        },
        **({"group": {"id": signal.group_id, "members": list(signal.grouped)}} if signal.group_id else {}),
        "link": dashboard_link(dashboard_url, signal),
    }
