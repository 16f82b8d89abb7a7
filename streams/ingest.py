"""The batch-level ingest path: confluent-kafka `consume` → validate → exactly-once inserts into ClickHouse.

It runs inside the Faust worker (streams/app.py) as a service, beside Faust's own per-event
agents, which cost ~90 µs of framework CPU per event; bench/ingest.py compares the two.

Concurrency: a consumer thread owns the Kafka consumer (streams/kafka_source.py); the event loop
thread decodes and validates; one writer thread owns the ClickHouse client and runs every flush
cycle in order, so validation of the next cycle overlaps the inserts of the last.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from confluent_kafka import Message

from config.geography import Geography
from config.settings import DLQ_TOPIC, EVENT_TOPICS, SIGNUP_TOPIC, Settings
from sinks.clickhouse.batch_state import ClickHouseBatchStateStore
from sinks.clickhouse.client import Warehouse, connect
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.schema import RAW_TABLES, SIGNUP_IDENTITIES
from sinks.clickhouse.writer import RawBatchWriter
from sinks.exactly_once import (
    Batch,
    BatchMark,
    CycleResult,
    FatalSinkError,
    MarkVersions,
    PartitionBuffer,
    PartitionKey,
    PreparedBatch,
    plan_marks,
    resume_plan,
    write_cycle,
)
from sinks.metrics import PipelineMetrics
from streams.broker import cluster_id
from streams.dedup import EventIdWindow
from streams.identity_capture import IdentityCapture
from streams.kafka_source import KafkaSource
from streams.processing import EventProcessor, VoterPrecinctLookup, no_voter_lookup
from streams.rows import RejectedRow

log = logging.getLogger(__name__)

# Cycles handed to the writer thread and not yet committed: 2 lets validation overlap inserts.
MAX_IN_FLIGHT = 2
# On stop, keep consuming until a fetch comes back empty, for at most this long.
DRAIN_SECONDS = 5.0
# The process exit code when the sink cannot go on: exit before any commit, let the supervisor restart.
EXIT_SINK_FAILED = 70


@dataclass(frozen=True)
class _Payload:
    table: str
    body: bytes  # JSONEachRow
    accepted: int
    rejected: list[RejectedRow]
    oldest_timestamp_ms: int | None
    side: tuple[tuple[str, bytes], ...] = ()  # (table, JSONEachRow) written with the batch: signup identities


@dataclass
class _Cycle:
    job: asyncio.Future[CycleResult]
    batches: list[PreparedBatch[_Payload]]
    started: float


class _ClickHouseCycleSink:
    """sinks.exactly_once.CycleSink over the writer thread's ClickHouse client."""

    def __init__(self, store: ClickHouseBatchStateStore, writer: RawBatchWriter) -> None:
        self._store = store
        self._writer = writer

    def save_marks(self, group: str, marks: dict[PartitionKey, BatchMark]) -> None:
        self._store.save(group, marks)

    def insert(self, batch: PreparedBatch[_Payload], token: str) -> None:
        payload = batch.payload
        self._writer.write(payload.table, token, payload.body, payload.rejected, payload.side)


@dataclass
class _PartitionState:
    buffer: PartitionBuffer[Message]
    seen: EventIdWindow


@dataclass
class IngestStats:
    """What the loop has done, for health checks and benchmarks."""

    accepted: int = 0
    rejected: int = 0
    batches: int = 0
    last_flush_at: float | None = None
    assigned: set[PartitionKey] = field(default_factory=set)


class IngestLoop:
    def __init__(
        self,
        settings: Settings,
        geography: Geography,
        warehouse: Warehouse,
        metrics: PipelineMetrics,
        voter_precinct: VoterPrecinctLookup = no_voter_lookup,
        bootstrap: str | None = None,
    ) -> None:
        self._settings = settings
        self._ingest = settings.ingest
        self._warehouse = warehouse
        self._metrics = metrics
        self._bootstrap = bootstrap or settings.bootstrap_servers
        self._processors = {t: EventProcessor(t, settings, geography, voter_precinct) for t in EVENT_TOPICS}
        self._partitions: dict[PartitionKey, _PartitionState] = {}
        self._versions = MarkVersions()
        self._lock = asyncio.Lock()  # a flush cycle and a rebalance never interleave
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="groundswell-writer")
        self._encoder = msgspec.json.Encoder()
        self._identities = IdentityCapture()
        self._group = self._ingest.consumer_group
        self._source: KafkaSource | None = None
        self._producer: AIOKafkaProducer | None = None
        self._store: ClickHouseBatchStateStore | None = None
        self._writer: RawBatchWriter | None = None
        self._warehouse_ready: asyncio.Future[None] | None = None
        self._sink: _ClickHouseCycleSink | None = None
        self._in_flight: deque[_Cycle] = deque()
        self.stats = IngestStats()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        log_id = await asyncio.to_thread(cluster_id, self._bootstrap)
        if log_id is None:
            raise RuntimeError(f"Kafka at {self._bootstrap} did not answer")
        # Marks and tokens name the cluster: a recreated (e.g. embedded, in-memory) log starts clean.
        self._group = f"{self._ingest.consumer_group}@{log_id}"
        # The warehouse is opened and migrated while the consumer joins its group (a join takes
        # seconds); partition assignment waits for it.
        self._warehouse_ready = asyncio.ensure_future(self._in_writer(self._open_warehouse))
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=5)
        await self._producer.start()
        session_ms = self._ingest.session_timeout(self._settings.uses_embedded_broker)
        self._source = KafkaSource(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": self._ingest.consumer_group,
                "client.id": f"groundswell-ingest-{self._settings.worker_id}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": self._ingest.fetch_max_wait_ms,
                "max.partition.fetch.bytes": self._ingest.max_partition_fetch_bytes,
                "fetch.max.bytes": max(64 << 20, self._ingest.max_partition_fetch_bytes),
                "queued.max.messages.kbytes": self._ingest.prefetch_kbytes,
                "session.timeout.ms": session_ms,
                "heartbeat.interval.ms": self._ingest.heartbeat_interval_ms,
            },
            EVENT_TOPICS,
            self.on_assigned,
            self.on_revoked,
        )
        await self._source.start()
        await self._warehouse_ready
        _tune_gc()
        log.info("ingest consumer started for group %s", self._group)

    def _open_warehouse(self) -> None:
        """In the writer thread: the writer's own client, the schema, the mark store."""
        client = connect(self._warehouse)
        applied = migrate(client, self._warehouse, self._settings.timezone)
        if applied:
            log.info("applied migrations %s", applied)
        self._store = ClickHouseBatchStateStore(client, self._warehouse)
        self._writer = RawBatchWriter(client, self._warehouse)
        self._sink = _ClickHouseCycleSink(self._store, self._writer)

    async def stop(self) -> None:
        """Flush what is buffered, commit it, and leave the group."""
        try:
            if self._source is not None and self._writer is not None:
                async with self._lock:
                    await self._flush(force=True)
                    await self._settle(keep=0)
        finally:
            if self._source is not None:
                await self._source.close()  # outside the lock: leaving the group calls on_revoked
            if self._producer is not None:
                await self._producer.stop()
            self._executor.shutdown(wait=True)

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set, then drain briefly; a sink that cannot go on exits before committing."""
        assert self._source is not None
        poll_s = max(1, min(self._ingest.batch_max_wait_ms // 2, 100)) / 1000
        drain_deadline: float | None = None
        try:
            while True:
                if stopping.is_set() and drain_deadline is None:
                    drain_deadline = time.monotonic() + DRAIN_SECONDS
                fetched = await self._source.poll(self._ingest.batch_max_rows, poll_s)
                if drain_deadline is not None and not fetched:
                    break  # stopping and drained: stop() flushes what is buffered
                async with self._lock:
                    now = time.monotonic()
                    for key, records in fetched.items():
                        state = self._partitions.get(key)
                        if state is not None:  # else revoked while fetching: the new owner reads it
                            state.buffer.add(records, now)
                    await self._flush(force=False)
                    self._update_lag()
                if drain_deadline is not None and time.monotonic() > drain_deadline:
                    break  # stopping under a steady stream: the rest is read again by the next worker
        except Exception:  # FatalSinkError, OffsetGap, a fatal Kafka error, or a bug
            # Nothing of the failed cycle is marked AFTER or committed: a restart rebuilds it exactly.
            log.critical("ingest cannot go on; exiting before any further commit", exc_info=True)
            logging.shutdown()
            os._exit(EXIT_SINK_FAILED)

    # --- flushing ----------------------------------------------------------------------------

    async def _flush(self, force: bool) -> None:
        """Cut due batches, validate them, and hand the cycle to the writer thread without waiting for it:
        the next cycle is fetched and validated while this one is written (at most MAX_IN_FLIGHT cycles)."""
        now = time.monotonic()
        batches = []
        for key, state in self._partitions.items():
            behind = self._backlog(key, state.buffer) > self._ingest.batch_max_rows // 10
            while (batch := state.buffer.take(now, force=force, behind=behind)) is not None:
                batches.append(batch)
                if not force:
                    break
        if batches:
            prepared = [self._prepare(batch) for batch in batches]
            rejected = [r for p in prepared for r in p.payload.rejected]
            if rejected:
                # Before the inserts, at least once: a batch replayed after a crash publishes again.
                await self._publish_rejections(rejected)
            marks = plan_marks(prepared, self._versions)
            assert self._sink is not None
            job = asyncio.get_running_loop().run_in_executor(
                self._executor, write_cycle, self._group, prepared, marks, self._sink, self._ingest.insert_retry_limit
            )
            self._in_flight.append(_Cycle(job, prepared, time.perf_counter()))
        await self._settle(keep=MAX_IN_FLIGHT - 1)

    def _prepare(self, batch: Batch[Message]) -> PreparedBatch[_Payload]:
        state = self._partitions[batch.key]
        processed = self._processors[batch.key.topic].process(batch.key.partition, batch.records, state.seen)
        side: tuple[tuple[str, bytes], ...] = ()
        if batch.key.topic == SIGNUP_TOPIC and processed.rows:
            identities = self._identities.rows(processed.rows, batch.records)
            side = ((SIGNUP_IDENTITIES.name, self._encoder.encode_lines(identities)),)
        payload = _Payload(
            table=RAW_TABLES[batch.key.topic].name,
            body=self._encoder.encode_lines(processed.rows) if processed.rows else b"",
            accepted=len(processed.rows),
            rejected=processed.rejected,
            oldest_timestamp_ms=processed.oldest_timestamp_ms,
            side=side,
        )
        return PreparedBatch(batch.key, batch.first, batch.last, payload)

    async def _settle(self, keep: int) -> None:
        """Wait for written cycles, oldest first, until at most `keep` are in flight; commit each one's offsets."""
        while self._in_flight and (len(self._in_flight) > keep or self._in_flight[0].job.done()):
            cycle = self._in_flight.popleft()
            result: CycleResult = await cycle.job  # FatalSinkError propagates: no commit, exit
            self._record(cycle, result)
            await self._commit(result.offsets)

    def _record(self, cycle: _Cycle, result: CycleResult) -> None:
        now_ms = time.time() * 1000
        self._metrics.cycle_seconds.observe(time.perf_counter() - cycle.started)
        for batch in cycle.batches:
            topic, payload = batch.key.topic, batch.payload
            self._metrics.insert_seconds.labels(topic).observe(result.insert_seconds[batch.key])
            self._metrics.batches.labels(topic).inc()
            self._metrics.events.labels(topic).inc(payload.accepted)
            for row in payload.rejected:
                self._metrics.rejected.labels(topic, row.reason_code).inc()
            if payload.oldest_timestamp_ms is not None:
                self._metrics.freshness.labels(topic).observe(max(0.0, (now_ms - payload.oldest_timestamp_ms) / 1000))
            self.stats.accepted += payload.accepted
            self.stats.rejected += len(payload.rejected)
            self.stats.batches += 1
        self.stats.last_flush_at = time.time()

    async def _commit(self, offsets: dict[PartitionKey, int]) -> None:
        assert self._source is not None
        self._source.commit(offsets)

    async def _publish_rejections(self, rejected: list[RejectedRow]) -> None:
        assert self._producer is not None
        producer = self._producer
        for attempt in range(self._ingest.insert_retry_limit + 1):
            try:
                futures = [
                    await producer.send(DLQ_TOPIC, value=r.raw, key=r.kafka_key or None, headers=_dlq_headers(r))
                    for r in rejected
                ]
                await asyncio.gather(*futures)
                return
            except Exception as exc:
                log.warning("publishing %d rejections to the DLQ failed (try %d): %s", len(rejected), attempt + 1, exc)
                await asyncio.sleep(min(10.0, 0.2 * 2**attempt))
        raise FatalSinkError(f"could not publish {len(rejected)} rejections to {DLQ_TOPIC}")

    async def _in_writer(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    def _backlog(self, key: PartitionKey, buffer: PartitionBuffer[Message]) -> int:
        """Records in Kafka beyond what this worker has fetched (0 when unknown)."""
        assert self._source is not None
        highwater = self._source.highwater(key)
        if highwater is None or buffer.next_offset is None:
            return 0
        return max(0, int(highwater) - buffer.next_offset)

    def backlog(self) -> int:
        """Events waiting for this worker: in Kafka beyond what it fetched, plus fetched and not yet
        written. Other work in the process (trends, scoring) waits while this is large."""
        if self._source is None:
            return 0
        return sum(self._backlog(k, s.buffer) + len(s.buffer.pending) for k, s in self._partitions.items())

    def _update_lag(self) -> None:
        for key, state in self._partitions.items():
            self._metrics.lag.labels(key.topic, str(key.partition)).set(self._backlog(key, state.buffer))

    # --- rebalancing -------------------------------------------------------------------------

    async def on_assigned(self, keys: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        """Resume each partition from its stored mark; returns where to start reading (else the committed offset)."""
        assert self._warehouse_ready is not None
        await self._warehouse_ready
        assert self._store is not None
        starts: dict[PartitionKey, int] = {}
        async with self._lock:
            marks: dict[PartitionKey, BatchMark] = await self._in_writer(self._store.load, self._group, keys)
            windows = await self._recent_event_ids(keys, marks)
            for key in keys:
                mark = marks.get(key)
                plan = resume_plan(mark)
                if mark is not None:
                    self._versions.versions[key] = mark.version
                if plan.seek_to is not None:
                    starts[key] = plan.seek_to
                if plan.replay is not None:
                    self._metrics.replayed_batches.inc()
                    log.info("%s[%d]: rebuilding unconfirmed batch %s", key.topic, key.partition, plan.replay)
                buffer = PartitionBuffer[Message](
                    key, plan, self._ingest.batch_max_rows, self._ingest.batch_max_wait_ms / 1000
                )
                self._partitions[key] = _PartitionState(buffer, windows[key])
            self.stats.assigned = set(self._partitions)
            self._metrics.assigned.set(len(self._partitions))
        log.info("assigned %d partitions (%d resumed from marks)", len(keys), len(marks))
        return starts

    async def on_revoked(self, revoked: Sequence[PartitionKey]) -> None:
        # Unflushed records are simply dropped: they were never marked or committed, so the next
        # owner reads them again from the committed offset.
        async with self._lock:
            await self._settle(keep=0)  # finish and commit what was handed to the writer
            for key in revoked:
                self._partitions.pop(key, None)
            self.stats.assigned = set(self._partitions)
            self._metrics.assigned.set(len(self._partitions))

    async def _recent_event_ids(
        self, keys: Sequence[PartitionKey], marks: dict[PartitionKey, BatchMark]
    ) -> dict[PartitionKey, EventIdWindow]:
        """Rebuild each partition's event_id window from what ClickHouse already holds.

        Rows of an unconfirmed batch are left out: rebuilding that batch must judge its events
        exactly as the first attempt did.
        """
        capacity = self._ingest.dedup_window_events
        windows = {k: EventIdWindow(capacity) for k in keys}
        if capacity == 0:
            return windows
        topo = self._warehouse.topology
        for topic in {k.topic for k in keys}:
            parts = [k.partition for k in keys if k.topic == topic]
            exclusions = [
                f"NOT (kafka_partition = {k.partition} AND kafka_offset BETWEEN {m.first} AND {m.last})"
                for k, m in marks.items()
                if k.topic == topic and m.phase.value == "BEFORE"
            ]
            where = " AND ".join([f"kafka_partition IN ({', '.join(map(str, parts))})", *exclusions])
            sql = (
                f"SELECT kafka_partition, event_id FROM {topo.qualified(topo.local_name(RAW_TABLES[topic].name))} "
                f"WHERE {where} ORDER BY ingested_at DESC, kafka_offset DESC LIMIT {capacity} BY kafka_partition"
            )
            rows = await self._in_writer(_query_rows, self._writer, sql)
            by_partition: dict[int, list[int]] = {}
            for partition, event_id in rows:
                by_partition.setdefault(int(partition), []).append(event_id.int)
            for partition, ids in by_partition.items():
                windows[PartitionKey(topic, partition)] = EventIdWindow(capacity, reversed(ids))
        return windows


def _query_rows(writer: RawBatchWriter | None, sql: str) -> Sequence[Sequence[Any]]:
    assert writer is not None
    return writer.client.query(sql).result_rows


def _dlq_headers(row: RejectedRow) -> list[tuple[str, bytes]]:
    return [
        ("source_topic", row.source_topic.encode()),
        ("source_partition", str(row.kafka_partition).encode()),
        ("source_offset", str(row.kafka_offset).encode()),
        ("reason_code", row.reason_code.encode()),
        ("reason_text", row.reason_text.encode()),
    ]


def _tune_gc() -> None:
    """Python's cyclic GC, tuned for a stream of short-lived objects.

    With the default gen-0 threshold (700 allocations) a collection runs every few dozen events
    and walks the young objects each time; measured in bench/ingest it took ~15% of the loop
    thread. Start-up objects are frozen out of the collector's sight; the thresholds make young
    collections rare (event structs are already untracked: `gc=False`).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
