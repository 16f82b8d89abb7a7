"""A short-lived cache of computed responses, with concurrent identical requests sharing one computation.

Keys name the query and the principal's regions (never the token), so users who may see the same rows
share entries and a regional user never reads another's. Entries live `ttl_s`; callers also put the
live poller's data generation in the key, so a change seen by the poller is never hidden by the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ResponseCache(Generic[V]):
    def __init__(self, ttl_s: float = 1.0, max_entries: int = 512, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[V]] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """The value, and whether it came from the cache (or a computation already under way)."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl:
            self.hits += 1
            return entry[1], True
        task = self._pending.get(key)
        hit = task is not None
        if task is None:
            self.misses += 1
            # A task of its own: a requester that goes away (a closed tab) does not cancel the others' answer.
            task = asyncio.ensure_future(compute())
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settle(key, now, done))
        else:
            self.hits += 1
        return await asyncio.shield(task), hit

    def _settle(self, key: Hashable, at: float, task: asyncio.Future[V]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._store(key, at, task.result())

    def _store(self, key: Hashable, at: float, value: V) -> None:
        self._entries[key] = (at, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
