"""A bounded memory of recent event_ids per partition, to reject events a source re-sent."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class EventIdWindow:
    """Remembers the last `capacity` accepted event_ids (as 128-bit ints), oldest forgotten first."""

    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int, initial: Iterable[int] = ()) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()
        for event_id in initial:
            self.add(event_id)

    def __contains__(self, event_id: int) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: int) -> None:
        if self._capacity <= 0:
            return
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
