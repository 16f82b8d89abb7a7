"""The baseline: a plain faust-streaming agent handling one event at a time.

It validates with the same EventProcessor and inserts into chDB every 5,000 rows or 200 ms with the
same writer, so the difference to the batch path is Faust's per-event cost (no exactly-once marks
here, which only favours the baseline). Prints one JSON line when it has seen `--expect` events.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict
from pathlib import Path

import faust
import msgspec

from config.geography import Geography
from config.settings import DEFAULT_GEOGRAPHY, EVENT_TOPICS, load_settings
from sinks.clickhouse.client import connect, warehouse_from_dsn
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.schema import RAW_TABLES
from sinks.clickhouse.writer import RawBatchWriter
from streams.dedup import EventIdWindow
from streams.processing import EventProcessor


class Rec:
    """What EventProcessor reads of a message (streams.processing.KafkaRecord: confluent-kafka's methods)."""

    __slots__ = ("_key", "_offset", "_timestamp_ms", "_value")

    def __init__(self, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None) -> None:
        self._offset, self._timestamp_ms, self._key, self._value = offset, timestamp_ms, key, value

    def offset(self) -> int | None:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()
    started = time.time()
    settings = load_settings(demo=True)
    geography = Geography.from_csv(DEFAULT_GEOGRAPHY)
    warehouse = warehouse_from_dsn(f"chdb://{args.data_dir / 'clickhouse'}")
    client = connect(warehouse)
    migrate(client, warehouse, settings.timezone)
    writer = RawBatchWriter(client, warehouse)
    processors = {t: EventProcessor(t, settings, geography) for t in EVENT_TOPICS}
    windows = {t: EventIdWindow(500_000) for t in EVENT_TOPICS}
    encoder = msgspec.json.Encoder()
    pending: defaultdict[tuple[str, int], list[Rec]] = defaultdict(list)
    state = {"seen": 0, "first": 0.0, "flushed": time.monotonic(), "batch": 0}

    app = faust.App(
        "bench-faust-baseline", broker=f"kafka://{args.bootstrap}", store="memory://", web_enabled=False,
        datadir=str(args.data_dir / "faust"), broker_session_timeout=3.0, broker_heartbeat_interval=1.0,
        topic_disable_leader=True, topic_allow_declare=False,
    )  # fmt: skip
    topic = app.topic(*EVENT_TOPICS, value_serializer="raw", key_serializer="raw")

    def flush() -> None:
        for (name, partition), records in pending.items():
            if records:
                batch = processors[name].process(partition, records, windows[name])
                state["batch"] += 1
                body = encoder.encode_lines(batch.rows) if batch.rows else b""
                writer.write(RAW_TABLES[name].name, f"baseline/{state['batch']}", body, batch.rejected)
                records.clear()
        state["flushed"] = time.monotonic()

    @app.agent(topic, concurrency=1)
    async def one_at_a_time(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            if state["seen"] == 0:
                state["first"] = time.time()
            pending[(message.topic, message.partition)].append(
                Rec(message.offset, int(message.timestamp * 1000), message.key, message.value)
            )
            state["seen"] += 1
            if sum(map(len, pending.values())) >= 5000 or time.monotonic() - state["flushed"] > 0.2:
                flush()
            if state["seen"] >= args.expect:
                flush()
                done = time.time()
                peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                print(
                    json.dumps(
                        {
                            "events": state["seen"],
                            "first_event_s": state["first"] - started,
                            "seconds": done - state["first"],
                            "peak_rss_mib": peak_kib / 1024,
                        }
                    ),
                    flush=True,
                )
                os._exit(0)  # a benchmark: skip Faust's shutdown

    app.finalize()
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
