"""A confluent-kafka consumer driven from asyncio, for the batch ingest path.

Why confluent-kafka here (and not aiokafka, which Faust uses): librdkafka fetches and parses in
its own threads and hands back C-level message objects, while aiokafka builds a Python
ConsumerRecord per message on the event loop thread; at ingest rates that was ~27% of the loop
thread's time (docs/benchmarks.md).

Threading contract: one dedicated thread owns the consumer and makes every call on it (consume,
commit, assign, close). librdkafka runs rebalance callbacks inside `consume()` on that thread;
they hand the work to the asyncio loop with `run_coroutine_threadsafe` and block until it is done
(the loop is free: it is only awaiting that same `consume()`), so an assignment is in place before
the first message of a new partition is returned.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import OFFSET_STORED, Consumer, KafkaException, Message, TopicPartition

from sinks.exactly_once import PartitionKey

log = logging.getLogger(__name__)

# Assigned: returns where to start reading each partition (missing: the committed offset).
OnAssigned = Callable[[Sequence[PartitionKey]], Awaitable[dict[PartitionKey, int]]]
OnRevoked = Callable[[Sequence[PartitionKey]], Awaitable[None]]


class KafkaSource:
    """Subscribes to topics; `poll()` returns new messages grouped by partition, in offset order."""

    def __init__(
        self, config: dict[str, Any], topics: Sequence[str], on_assigned: OnAssigned, on_revoked: OnRevoked
    ) -> None:
        self._config = {**config, "logger": logging.getLogger("groundswell.kafka")}
        self._topics = list(topics)
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="groundswell-consumer")
        self._consumer: Consumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commit_lock = threading.Lock()
        self._to_commit: dict[PartitionKey, int] = {}
        self._highwater: dict[PartitionKey, int] = {}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._in_thread(self._open)

    def _open(self) -> None:
        self._consumer = Consumer(self._config)
        self._consumer.subscribe(
            self._topics, on_assign=self._assign_callback, on_revoke=self._revoke_callback, on_lost=self._lost_callback
        )

    async def poll(self, max_messages: int, timeout_s: float) -> dict[PartitionKey, list[Message]]:
        """Up to `max_messages`; waits at most `timeout_s` for a full batch."""
        return await self._in_thread(self._poll, max_messages, timeout_s)  # type: ignore[no-any-return]

    def commit(self, offsets: dict[PartitionKey, int]) -> None:
        """Queue an asynchronous commit; the consumer thread sends it before its next fetch.

        A lost commit is harmless for the ingest path: its stored AFTER marks say where to resume."""
        with self._commit_lock:
            self._to_commit.update(offsets)

    def highwater(self, key: PartitionKey) -> int | None:
        """The partition's end offset as of the last fetch (no broker round trip)."""
        return self._highwater.get(key)

    async def close(self) -> None:
        """Send queued commits and leave the group (which revokes, through the callback, what is assigned)."""
        if self._consumer is not None:
            await self._in_thread(self._close)
        self._thread.shutdown(wait=True)

    # --- the consumer thread ----------------------------------------------------------------

    def _poll(self, max_messages: int, timeout_s: float) -> dict[PartitionKey, list[Message]]:
        consumer = self._require()
        self._send_commits(asynchronous=True)
        messages = consumer.consume(max_messages, timeout_s)
        grouped: dict[PartitionKey, list[Message]] = {}
        current: list[Message] | None = None
        current_id: tuple[str | None, int | None] = (None, None)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("Kafka consumer: %s", error)
                continue
            ident = (message.topic(), message.partition())
            if ident != current_id:  # messages come in runs per partition: look up the list once per run
                current_id = ident
                key = PartitionKey(str(ident[0]), int(ident[1] or 0))
                current = grouped.setdefault(key, [])
            assert current is not None
            current.append(message)
        for tp in consumer.assignment():
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                self._highwater[PartitionKey(tp.topic, tp.partition)] = high
        return grouped

    def _send_commits(self, asynchronous: bool) -> None:
        with self._commit_lock:
            offsets, self._to_commit = self._to_commit, {}
        if not offsets:
            return
        partitions = [TopicPartition(k.topic, k.partition, o) for k, o in offsets.items()]
        try:
            if asynchronous:
                self._require().commit(offsets=partitions, asynchronous=True)
            else:
                self._require().commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            log.warning("offset commit failed (the stored AFTER marks still hold the position): %s", exc)

    def _close(self) -> None:
        consumer = self._require()
        self._send_commits(asynchronous=False)
        consumer.close()
        self._consumer = None

    def _assign_callback(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [PartitionKey(tp.topic, tp.partition) for tp in partitions]
        starts = self._run_on_loop(self._on_assigned(keys))
        consumer.assign([TopicPartition(k.topic, k.partition, starts.get(k, OFFSET_STORED)) for k in keys])

    def _revoke_callback(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [PartitionKey(tp.topic, tp.partition) for tp in partitions]
        self._run_on_loop(self._on_revoked(keys))
        # Still a member of this generation: commit what the revoked partitions finished, synchronously.
        self._send_commits(asynchronous=False)
        for key in keys:
            self._highwater.pop(key, None)

    def _lost_callback(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [PartitionKey(tp.topic, tp.partition) for tp in partitions]
        log.warning("lost %d partitions (session expired); their next owner resumes from the stored marks", len(keys))
        self._run_on_loop(self._on_revoked(keys))
        with self._commit_lock:  # no longer a member: these commits would be refused
            self._to_commit.clear()

    def _run_on_loop(self, work: Awaitable[Any]) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(_as_coroutine(work), self._loop).result()

    def _require(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("the Kafka consumer is not open")
        return self._consumer

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)


async def _as_coroutine(work: Awaitable[Any]) -> Any:
    return await work
