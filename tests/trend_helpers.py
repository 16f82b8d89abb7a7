"""Driving the trend agent in tests: its ClickHouse reads on a thread, and ticks until it has caught up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.trends import TrendStore
from streams.trends import TrendAgent

T = TypeVar("T")


def runner(client: Client, warehouse: Warehouse) -> Callable[[Callable[[TrendStore], T]], asyncio.Future[T]]:
    def run(fn: Callable[[TrendStore], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(None, fn, TrendStore(client, warehouse))

    return run


async def run_until_caught_up(agent: TrendAgent, now: datetime) -> list[object]:
    """Tick at `now` until a tick evaluates no new window; the flags of every tick."""
    flags: list[object] = []
    while True:
        before = agent.windows_evaluated
        flags += await agent.tick(now)
        if agent.windows_evaluated == before:
            return flags
