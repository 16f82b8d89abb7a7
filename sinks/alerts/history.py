"""What has been alerted already: the router's memory for deduplication and cool-down.

Built from the alerts table (AlertStore.history) for the flags and units at hand, and extended by
the router as it plans, so two flags in one batch see each other. Suppressed alerts are remembered
but do not count as alerted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sinks.alerts.alert import Alert, AlertStatus
from sinks.alerts.config import ChannelKind
from sinks.alerts.severity import Severity, rank


@dataclass(frozen=True)
class PastAlert:
    alert_id: str
    flag_id: str
    raise_event: bool
    level: str
    unit_id: str
    metric: str
    severity: Severity
    recipient: str
    channel: ChannelKind
    status: AlertStatus
    created_at: datetime

    @classmethod
    def of(cls, alert: Alert) -> PastAlert:
        return cls(
            alert.alert_id, alert.flag_id, alert.is_raise, alert.level, alert.unit_id, alert.metric, alert.severity,
            alert.recipient, alert.channel, alert.status, alert.created_at,
        )  # fmt: skip

    @property
    def alerted(self) -> bool:
        return self.status != "suppressed"


class RoutingHistory:
    """Past alerts by id, indexed by (flag, person) and (level, unit, metric, person): a batch of
    thousands of flags routes in linear time."""

    def __init__(self, past: Iterable[PastAlert] = ()) -> None:
        self._by_id: dict[str, PastAlert] = {}
        self._by_flag: dict[str, set[str]] = defaultdict(set)
        self._by_unit: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
        for item in past:
            self._put(item)

    def _put(self, item: PastAlert) -> None:
        # An id's flag, unit and person never change (they make the id); only its status can.
        self._by_id[item.alert_id] = item
        self._by_flag[item.flag_id].add(item.alert_id)
        self._by_unit[(item.level, item.unit_id, item.metric, item.recipient)].add(item.alert_id)

    def copy(self) -> RoutingHistory:
        return RoutingHistory(self._by_id.values())

    def add(self, alert: Alert) -> None:
        self._put(PastAlert.of(alert))

    def status_of(self, alert_id: str) -> AlertStatus | None:
        item = self._by_id.get(alert_id)
        return item.status if item else None

    def _raised(self, ids: Iterable[str]) -> Iterator[PastAlert]:
        return (p for p in map(self._by_id.__getitem__, ids) if p.raise_event and p.alerted)

    def highest_raised(self, flag_id: str, recipient: str) -> Severity | None:
        """The most severe alert this person has had about this flag episode."""
        severities = [p.severity for p in self._raised(self._by_flag.get(flag_id, ())) if p.recipient == recipient]
        return max(severities, key=rank, default=None)

    def highest_raised_any(self, flag_id: str) -> Severity | None:
        """The most severe alert anyone has had about this flag episode."""
        return max((p.severity for p in self._raised(self._by_flag.get(flag_id, ()))), key=rank, default=None)

    def raised_targets(self, flag_id: str) -> list[tuple[str, ChannelKind]]:
        """Who was alerted about this episode, on which channels (for its close notice)."""
        return sorted({(p.recipient, p.channel) for p in self._raised(self._by_flag.get(flag_id, ()))})

    def raised_since(self, level: str, unit_id: str, metric: str, recipient: str, since: datetime) -> list[PastAlert]:
        """This person's alerts about this unit and metric (any episode) created at or after `since`."""
        ids = self._by_unit.get((level, unit_id, metric, recipient), ())
        return [p for p in self._raised(ids) if p.created_at >= since]
