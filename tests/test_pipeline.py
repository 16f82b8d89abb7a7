"""End to end against the real embedded broker and chDB: a worker process fed by a kafka-python producer.

The expected numbers come from streams.simulation.truth, which decodes the produced JSON itself
and shares no code with the pipeline.
"""

from __future__ import annotations

import itertools
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from kafka import KafkaConsumer, TopicPartition

from config.geography import Geography
from config.settings import DLQ_TOPIC, EVENT_TOPICS
from streams.broker import EmbeddedBroker
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import ReplayClock
from streams.simulation.payloads import SimEvent
from streams.simulation.truth import Truth, compute_truth
from streams.simulation.world import build_world
from tests.harness import PARTITIONS, WorkerProcess, free_port, produce, wait_for

COUNTED = ("attempts", "contacts", "ids", "supporters", "signups", "email_sends", "donations_cents")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(free_port(), tmp_path / "broker.log") as running:
        yield running


@pytest.fixture
def campaign(tmp_path: Path) -> tuple[Path, Geography, list[SimEvent]]:
    world = build_world(seed=11, precincts=80, counties=4, regions=2, voters_per_precinct=150)
    path = tmp_path / "geography.csv"
    world.write_geography_csv(path)
    clock = ReplayClock.ending_now(days=6)
    events = list(itertools.islice(CampaignGenerator(world, seed=11, malformed_share=0.02, clock=clock), 12_000))
    return path, Geography.from_csv(path), events


def messages(events: list[SimEvent]) -> list[tuple[str, bytes | None, bytes]]:
    return [(e.topic, e.key, e.value) for e in events]


def ingested(worker: WorkerProcess) -> int:
    rows = worker.sql(
        "SELECT (SELECT count() FROM raw_canvass) + (SELECT count() FROM raw_signups) "
        "+ (SELECT count() FROM raw_email) + (SELECT count() FROM rejected_events)"
    )
    return int(rows[0][0])


def assert_matches_truth(worker: WorkerProcess, truth: Truth) -> None:
    per_precinct = worker.sql(
        f"SELECT precinct_id, {', '.join(f'sum({c})' for c in COUNTED)}, uniqExactMerge(doors), "
        "uniqExactMerge(email_unique_clicks) FROM agg_precinct_1d GROUP BY precinct_id"
    )
    got = {row[0]: tuple(int(v) for v in row[1:]) for row in per_precinct}
    expected = {
        precinct: (*(getattr(c, name) for name in COUNTED), c.doors, c.email_unique_clicks)
        for precinct, c in truth.precincts.items()
    }
    assert got == expected
    # "unassigned" exists under several counties: merge it across them, as the truth does
    windows = worker.sql(
        "SELECT precinct_id, toUnixTimestamp(window_start), sum(attempts), sum(contacts), uniqExactMerge(doors), "
        "uniqExactMerge(email_unique_clicks) FROM agg_precinct_15m GROUP BY precinct_id, window_start"
    )
    got_windows = {(r[0], int(r[1])): tuple(int(v) for v in r[2:]) for r in windows}
    expected_windows = {
        (precinct, int(start.timestamp())): (c.attempts, c.contacts, c.doors, c.email_unique_clicks)
        for (precinct, start), c in truth.windows.items()
    }
    assert got_windows == expected_windows
    reasons = dict((r[0], int(r[1])) for r in worker.sql("SELECT reason_code, count() FROM rejected_events GROUP BY 1"))
    assert reasons == dict(truth.rejections)


def dlq_messages(bootstrap: str) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000, auto_offset_reset="earliest")
    partitions = [TopicPartition(DLQ_TOPIC, p) for p in consumer.partitions_for_topic(DLQ_TOPIC) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    found = list(consumer)
    consumer.close()
    return found


def test_aggregates_equal_ground_truth_and_every_rejection_reaches_the_dlq(
    broker: EmbeddedBroker, campaign: tuple[Path, Geography, list[SimEvent]], tmp_path: Path
) -> None:
    geography_path, geography, events = campaign
    truth = compute_truth(events, geography)
    assert len(truth.rejections) >= 10 and truth.accepted > 10_000  # the malformed mix really is in play
    worker = WorkerProcess(broker.bootstrap, tmp_path / "data", geography_path).start()
    try:
        produce(broker.bootstrap, messages(events))
        wait_for(lambda: ingested(worker) == len(events), 120, "every event to be ingested or rejected")
        assert_matches_truth(worker, truth)

        dlq = dlq_messages(broker.bootstrap)
        assert len(dlq) == sum(truth.rejections.values())
        headers = dict(dlq[0].headers)
        assert set(headers) == {"source_topic", "source_partition", "source_offset", "reason_code", "reason_text"}
        assert headers["source_topic"].decode() in EVENT_TOPICS

        status, body = worker.get("/api/v1/metrics?level=state&window=1d")
        assert status == 200
        assert sum(r["attempts"] for r in body["rows"]) == truth.total().attempts
        assert {"window_start", "contact_rate", "support_rate", "email_delivered", "donations_cents"} <= set(
            body["rows"][0]
        )
        assert worker.get("/api/v1/metrics?level=state", token=None)[0] == 401
        assert worker.get("/api/v1/metrics?level=planet")[0] == 400
        with pytest.raises(urllib.error.HTTPError) as refused:  # SQL is read-only
            worker.sql("INSERT INTO raw_canvass (voter_id) VALUES ('x')")
        assert refused.value.code == 400
        status, text = worker.get("/metrics")
        assert status == 200 and 'groundswell_rejected_events_total{reason="invalid_json"' in text
    finally:
        worker.stop()


def test_kill_9_mid_stream_then_restart_counts_everything_exactly_once(
    broker: EmbeddedBroker, campaign: tuple[Path, Geography, list[SimEvent]], tmp_path: Path
) -> None:
    geography_path, geography, events = campaign
    truth = compute_truth(events, geography)
    # Small, frequent batches, so that a kill lands between BEFORE and AFTER marks often.
    small = {"GROUNDSWELL_INGEST__BATCH_MAX_ROWS": "300", "GROUNDSWELL_INGEST__BATCH_MAX_WAIT_MS": "20"}
    data = tmp_path / "data"
    worker = WorkerProcess(broker.bootstrap, data, geography_path, small).start()

    def produce_slowly() -> None:
        for start in range(0, len(events), 1000):
            produce(broker.bootstrap, messages(events[start : start + 1000]))
            time.sleep(0.3)

    producer = threading.Thread(target=produce_slowly)
    producer.start()
    try:
        for kill_after in (2_000, 6_000):
            wait_for(lambda n=kill_after, w=worker: ingested(w) >= n, 120, f"{kill_after} events ingested")
            worker.kill9()
            worker = WorkerProcess(broker.bootstrap, data, geography_path, small).start()
        producer.join()
        wait_for(lambda: ingested(worker) == len(events), 120, "every event after two kill -9s")
        # nothing lost, nothing counted twice, and no event judged a duplicate of itself on replay
        assert_matches_truth(worker, truth)
    finally:
        producer.join()
        worker.stop()


def test_rewound_offsets_are_not_counted_twice(
    broker: EmbeddedBroker, campaign: tuple[Path, Geography, list[SimEvent]], tmp_path: Path
) -> None:
    geography_path, geography, events = campaign
    truth = compute_truth(events, geography)
    data = tmp_path / "data"
    worker = WorkerProcess(broker.bootstrap, data, geography_path).start()
    produce(broker.bootstrap, messages(events))
    wait_for(lambda: ingested(worker) == len(events), 120, "every event to be ingested")
    assert worker.stop() == 0

    # Rewind the ingest group to the start of every partition while no worker runs.
    # As a group member: the embedded broker refuses offset commits from outside the group.
    assert len(rewind_group(broker.bootstrap, "groundswell-ingest")) == 3 * PARTITIONS

    worker = WorkerProcess(broker.bootstrap, data, geography_path).start()
    try:
        time.sleep(3)  # let it fetch everything again
        produce(broker.bootstrap, messages(events[:1]))  # the same first event re-sent by its source
        wait_for(lambda: ingested(worker) == len(events) + 1, 60, "the re-sent event to be judged")
        assert_matches_truth_with_extra_duplicate(worker, truth)
    finally:
        worker.stop()


def rewind_group(bootstrap: str, group: str) -> set[tuple[str, int]]:
    """Commit offset 0 for every partition, as a member of the group (with the worker's client, so its
    group protocol): the embedded broker refuses offset commits from outside the group."""
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
         "session.timeout.ms": 3000, "heartbeat.interval.ms": 1000}
    )  # fmt: skip
    consumer.subscribe(list(EVENT_TOPICS))
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.consume(1000, 0.2)
        assigned = consumer.assignment()
        consumer.commit(
            offsets=[confluent_kafka.TopicPartition(tp.topic, tp.partition, 0) for tp in assigned], asynchronous=False
        )
        return {(tp.topic, tp.partition) for tp in assigned}
    finally:
        consumer.close()


def assert_matches_truth_with_extra_duplicate(worker: WorkerProcess, truth: Truth) -> None:
    first_expected = truth.rejections.copy()
    first_expected["duplicate_event_id"] += 1
    truth_with_resend = Truth(truth.windows, truth.precincts, first_expected, truth.accepted)
    assert_matches_truth(worker, truth_with_resend)
