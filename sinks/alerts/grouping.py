"""One movement, one alert: county and precinct flags grouped under their region's flag.

The trend detectors put a county or precinct episode into the group of its region's open episode on
the same metric and direction (TrendFlag.group_id). Here, before routing, such a member is absorbed
into its group, sending nothing of its own, when the group has been (or is now being) alerted at a
severity at least its own; the group's alert then lists it. A member more severe than anything its
group was alerted at says something the group's alert did not, so it is routed on its own, as is a
member whose group reached nobody (a region flag too weak for any rule). Close notices are never
absorbed: whoever heard of a flag hears that it closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sinks.alerts.history import RoutingHistory
from sinks.alerts.severity import Severity, rank
from sinks.alerts.signals import Signal


def group_signals(signals: Sequence[Signal], history: RoutingHistory) -> list[Signal]:
    """`signals` with absorbed members removed and listed on their group's signal (when in the batch).

    `history` must hold the alerts about the groups' flags (AlertDispatcher loads them)."""
    in_batch: dict[str, Signal] = {s.flag_id: s for s in signals if not s.is_group_member and s.group_id}
    alerted: dict[str, Severity | None] = {}

    def group_severity(group_id: str) -> Severity | None:
        if group_id not in alerted:
            known: list[Severity] = []
            before = history.highest_raised_any(group_id)
            if before is not None:
                known.append(before)
            parent = in_batch.get(group_id)
            if parent is not None and parent.status != "closed":
                known.append(parent.severity)
            alerted[group_id] = None
            if known:
                top: Severity = max(known, key=rank)
                alerted[group_id] = top
        return alerted[group_id]

    absorbed: dict[str, list[str]] = {}
    kept: list[Signal] = []
    for signal in signals:
        if signal.is_group_member and signal.status != "closed":
            ceiling = group_severity(signal.group_id)
            if ceiling is not None and rank(signal.severity) <= rank(ceiling):
                absorbed.setdefault(signal.group_id, []).append(f"{signal.level}:{signal.unit_id}")
                continue
        kept.append(signal)
    return [
        replace(s, grouped=tuple(sorted(absorbed[s.flag_id]))) if s.flag_id in absorbed and not s.is_group_member
        else s
        for s in kept
    ]  # fmt: skip
