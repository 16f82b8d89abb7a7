"""The live stream's parts without a worker: the response cache, the poller, and what a tick says to whom."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from streams.web.cache import ResponseCache
from streams.web.live import LOOKBACK, LivePoller, LiveSnapshot, Marks
from streams.web.stream import sse_frame, tick_payload

T0 = datetime(2026, 10, 31, 14, 3, 20, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_cache_shares_one_computation_and_expires_entries() -> None:
    clock = FakeClock()
    cache: ResponseCache[int] = ResponseCache(ttl_s=1.0, clock=clock)
    calls = 0
    release = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    waiting = [asyncio.ensure_future(cache.get("k", compute)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiting)
    assert [value for value, _ in results] == [1] * 5 and calls == 1
    assert sorted(hit for _, hit in results) == [False, True, True, True, True]
    assert await cache.get("k", compute) == (1, True)
    clock.now = 1.0  # the entry is a second old: computed again
    assert await cache.get("k", compute) == (2, False)
    assert await cache.get(("k", "other regions"), compute) == (3, False)  # keys never mix


async def test_a_failure_reaches_every_waiter_and_is_not_cached() -> None:
    cache: ResponseCache[int] = ResponseCache(ttl_s=60.0, clock=FakeClock())
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise RuntimeError("warehouse busy")
        return 7

    first, second = await asyncio.gather(cache.get("k", flaky), cache.get("k", flaky), return_exceptions=True)
    assert isinstance(first, RuntimeError) and isinstance(second, RuntimeError) and attempts == 1
    assert await cache.get("k", flaky) == (7, False)


async def test_a_requester_that_goes_away_does_not_cancel_the_others() -> None:
    cache: ResponseCache[str] = ResponseCache(clock=FakeClock())
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "view"

    gone = asyncio.ensure_future(cache.get("k", slow))
    staying = asyncio.ensure_future(cache.get("k", slow))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await staying == ("view", True)
    assert gone.cancelled()


class FakeWarehouse:
    """Marks as a warehouse would give them: rows ingested at or after `since`."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, datetime]] = []
        self.flags: dict[str, tuple[int, datetime]] = {}
        self.asked: list[datetime | None] = []

    async def marks(self, since: datetime | None) -> Marks:
        self.asked.append(since)
        newest: dict[str, datetime] = {}
        for region, at in self.rows:
            if since is None or at >= since:
                newest[region] = max(at, newest.get(region, at))
        return newest, dict(self.flags)


async def test_the_poller_reads_only_what_is_new_and_counts_changes() -> None:
    warehouse = FakeWarehouse()
    clock = iter(T0 + timedelta(seconds=s) for s in range(100))
    poller = LivePoller(warehouse.marks, clock=lambda: next(clock))
    warehouse.rows = [("North", T0 - timedelta(hours=3)), ("South", T0 - timedelta(hours=1))]

    first = await poller.poll()
    assert warehouse.asked == [None]  # the first poll reads every row once
    assert first.newest == {"North": T0 - timedelta(hours=3), "South": T0 - timedelta(hours=1)}
    assert first.generation == 1

    quiet = await poller.poll()
    assert warehouse.asked[-1] == first.polled_at - LOOKBACK
    assert quiet.newest == first.newest and quiet.generation == 1 and quiet.seq == first.seq + 1

    warehouse.rows.append(("North", T0 + timedelta(seconds=1)))
    moved = await poller.poll()
    assert moved.newest["North"] == T0 + timedelta(seconds=1) and moved.newest["South"] == first.newest["South"]
    assert moved.generation == 2
    north_only = moved.visible(frozenset({"North"}))
    assert north_only.newest == {"North": T0 + timedelta(seconds=1)}
    assert north_only.changed_since(first.visible(frozenset({"North"}))) == (["North"], False)
    assert moved.visible(frozenset({"South"})).changed_since(first.visible(frozenset({"South"}))) == ([], False)

    warehouse.flags = {"South": (1, T0)}
    flagged = await poller.poll()
    assert flagged.generation == 3
    assert flagged.visible(frozenset({"South"})).changed_since(moved.visible(frozenset({"South"}))) == ([], True)
    assert flagged.visible(frozenset({"North"})).changed_since(moved.visible(frozenset({"North"}))) == ([], False)


async def test_waiting_for_the_next_snapshot_returns_the_current_one_after_a_timeout() -> None:
    warehouse = FakeWarehouse()
    poller = LivePoller(warehouse.marks, interval_s=0.01)
    snapshot = await poller.wait_after(0, timeout_s=0.01)
    assert snapshot.seq == 0
    async with poller.listening():
        newer = await poller.wait_after(0, timeout_s=5)
        assert newer.seq >= 1
    await poller.close()
    assert poller.closed.is_set()


def test_a_tick_names_only_the_principals_regions_and_counts_only_for_those_who_see_all() -> None:
    before = LiveSnapshot(1, T0, {"North": T0 - timedelta(seconds=5), "South": T0 - timedelta(seconds=9)})
    after = LiveSnapshot(2, T0, {"North": T0 - timedelta(seconds=5), "South": T0 - timedelta(seconds=1)})
    south = frozenset({"South"})
    tick = tick_payload(after.visible(south), before.visible(south), T0 + timedelta(seconds=0.25), None)
    assert tick == {"now": (T0 + timedelta(seconds=0.25)).isoformat(), "as_of": (T0 - timedelta(seconds=1)).isoformat(),
                    "behind_s": 1.25, "changed": ["South"], "flags_changed": False}  # fmt: skip
    north = frozenset({"North"})
    tick = tick_payload(after.visible(north), before.visible(north), T0, None)
    assert tick["changed"] == [] and tick["behind_s"] == 5.0 and "events_accepted" not in tick
    everyone = tick_payload(after.visible(None), before.visible(None), T0, 1234)
    assert everyone["events_accepted"] == 1234 and everyone["changed"] == ["South"]
    nothing = tick_payload(LiveSnapshot(0, T0).visible(None), LiveSnapshot(0, T0).visible(None), T0, None)
    assert nothing["as_of"] is None and nothing["behind_s"] is None


@pytest.mark.parametrize("data", [{"a": "line\nbreak", "b": [1, 2]}, {"text": "é ✓"}])
def test_an_event_frame_is_one_data_line(data: dict[str, object]) -> None:
    frame = sse_frame("tick", data)
    assert frame.endswith(b"\n\n") and frame.count(b"\n") == 3
    name, payload = frame.decode().strip().split("\n")
    assert name == "event: tick" and msgspec.json.decode(payload.removeprefix("data: ")) == data
