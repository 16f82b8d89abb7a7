"""Produce SimEvents to Kafka, at a target rate or flat out, losing none.

aiokafka's per-message `send()` costs a coroutine and a future per event; here events go into
one `BatchBuilder` per topic-partition (partitioned by key exactly like the Java and aiokafka
default partitioner, murmur2), and full batches are handed over with `send_batch`. The
accumulator holds one undrained batch per partition, which is the backpressure. Every batch's
delivery future is awaited before `produce` returns, so a return means every event is in Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from config.settings import EVENT_TOPICS
from streams.simulation.payloads import OK, SimEvent

BATCH_BYTES = 512 * 1024
FLAT_OUT_CHUNK = 4096  # events between yields to the event loop when producing flat out
MAX_IN_FLIGHT_BATCHES = 512


@dataclass
class ProduceStats:
    sent: int = 0  # handed to Kafka; all of them delivered once produce() returns
    malformed: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


Reporter = Callable[[ProduceStats, float], None]  # (totals so far, events/s over the last interval)


async def ensure_topics(bootstrap: str, topics: Iterable[str] = EVENT_TOPICS, partitions: int = 4) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="groundswell-simulate-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            # Another process (a worker starting up) may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
        return missing
    finally:
        await admin.close()


class _Batches:
    """Open batches per topic-partition and the delivery futures of submitted ones."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}
        self.partition_of: dict[tuple[str, bytes], int] = {}
        self.open: dict[tuple[str, int], Any] = {}
        self.in_flight: deque[asyncio.Future[Any]] = deque()

    async def partition(self, topic: str, key: bytes) -> int:
        """The default partitioner's choice (cached: keys are precincts, zips and mailings)."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        chosen = partitions[(int(murmur2(key)) & 0x7FFFFFFF) % len(partitions)]
        self.partition_of[(topic, key)] = chosen
        return chosen

    async def submit(self, target: tuple[str, int]) -> None:
        batch = self.open.pop(target, None)
        if batch is None or batch.record_count() == 0:
            return
        self.in_flight.append(await self._producer.send_batch(batch, target[0], partition=target[1]))
        while len(self.in_flight) > MAX_IN_FLIGHT_BATCHES or (self.in_flight and self.in_flight[0].done()):
            await self.in_flight.popleft()  # raises if that batch failed for good

    async def submit_all(self) -> None:
        for target in list(self.open):
            await self.submit(target)

    async def drain(self) -> None:
        await self.submit_all()
        while self.in_flight:
            await self.in_flight.popleft()


async def produce(
    bootstrap: str,
    events: Iterable[SimEvent],
    rate: float | None,
    *,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    report: Reporter | None = None,
    report_interval_s: float = 1.0,
    linger_ms: int = 20,
    acks: int | str = 1,
) -> ProduceStats:
    """Send events at `rate` events/s (None: flat out) until they run out, `duration_s` passes or `stop` is set.

    Every event taken from `events` is delivered before this returns (or an error is raised).
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive, or None for flat out")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="groundswell-simulate",
        acks=acks,
        linger_ms=linger_ms,
        max_batch_size=BATCH_BYTES,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        batches = _Batches(producer)
        stats = ProduceStats()
        started = time.monotonic()
        await _pump(
            producer, batches, iter(events), rate, duration_s, stop, report, report_interval_s, stats, linger_ms
        )
        await batches.drain()
        stats.elapsed_s = time.monotonic() - started  # includes waiting for the last acknowledgements
        return stats
    finally:
        await producer.stop()


async def _pump(
    producer: AIOKafkaProducer,
    batches: _Batches,
    events: Iterator[SimEvent],
    rate: float | None,
    duration_s: float | None,
    stop: asyncio.Event | None,
    report: Reporter | None,
    report_interval_s: float,
    stats: ProduceStats,
    linger_ms: int,
) -> None:
    clock = time.monotonic
    started = last_report = last_flush = clock()
    reported_count = 0
    deadline = started + duration_s if duration_s is not None else None
    linger_s = linger_ms / 1000.0
    by_topic = stats.by_topic
    open_batches = batches.open
    partition_of = batches.partition_of
    exhausted = False
    while not exhausted and not (stop is not None and stop.is_set()):
        now = clock()
        if deadline is not None and now >= deadline:
            break
        if rate is None:
            quota = FLAT_OUT_CHUNK
        else:
            quota = min(int((now - started) * rate) - stats.sent, FLAT_OUT_CHUNK)
            if quota <= 0:
                await batches.submit_all()  # paced: nothing waits longer than one tick
                await asyncio.sleep(min(0.005, 1.0 / rate))
                continue
        taken = 0
        for event in events:
            topic = event.topic
            partition = partition_of.get((topic, event.key))
            if partition is None:
                partition = await batches.partition(topic, event.key)
            target = (topic, partition)
            batch = open_batches.get(target)
            if batch is None:
                batch = open_batches[target] = producer.create_batch()
            if batch.append(timestamp=None, key=event.key, value=event.value) is None:
                await batches.submit(target)  # full: hand it over, start the next one
                batch = open_batches[target] = producer.create_batch()
                batch.append(timestamp=None, key=event.key, value=event.value)
            by_topic[topic] += 1
            if event.expected != OK:
                stats.malformed += 1
            taken += 1
            if taken >= quota:
                break
        else:
            exhausted = True
        stats.sent += taken
        now = clock()
        if rate is not None or exhausted or now - last_flush >= linger_s:
            await batches.submit_all()
            last_flush = now
        else:
            await asyncio.sleep(0)  # let the sender task run
        if report is not None and now - last_report >= report_interval_s:
            stats.elapsed_s = now - started
            report(stats, (stats.sent - reported_count) / (now - last_report))
            last_report, reported_count = now, stats.sent
