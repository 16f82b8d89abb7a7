"""The batch state machine and flush ordering, without Kafka or ClickHouse."""

from __future__ import annotations

import pytest
from confluent_kafka import Message

from sinks.exactly_once import (
    BatchMark,
    FatalSinkError,
    MarkVersions,
    OffsetGap,
    PartitionBuffer,
    PartitionKey,
    Phase,
    PreparedBatch,
    plan_marks,
    resume_plan,
    write_cycle,
)

KEY = PartitionKey("canvass.knock", 0)


def recs(first: int, last: int) -> list[Message]:
    return [Message(topic=KEY.topic, partition=KEY.partition, offset=o, value=b"{}") for o in range(first, last + 1)]


def test_after_mark_resumes_past_the_batch_and_drops_redelivery() -> None:
    plan = resume_plan(BatchMark(100, 199, Phase.AFTER))
    assert plan.seek_to == 200 and plan.replay is None
    buffer = PartitionBuffer[Message](KEY, plan, max_rows=1000, max_wait_s=0.2)
    buffer.add(recs(150, 250), now=0.0)  # a broker that ignores the seek still cannot double count
    batch = buffer.take(now=1.0)
    assert batch is not None and (batch.first, batch.last) == (200, 250)


def test_before_mark_rebuilds_exactly_the_same_batch_then_continues() -> None:
    plan = resume_plan(BatchMark(100, 199, Phase.BEFORE))
    assert plan.seek_to == 100 and plan.replay == (100, 199)
    buffer = PartitionBuffer[Message](KEY, plan, max_rows=30, max_wait_s=0.0)
    buffer.add(recs(100, 150), now=0.0)
    assert buffer.take(now=10.0, force=True) is None  # incomplete replay is never cut, even when forced
    buffer.add(recs(151, 260), now=0.0)
    replay = buffer.take(now=10.0)
    assert replay is not None and (replay.first, replay.last) == (100, 199)
    assert replay.token("g") == "g/canvass.knock/0/100-199"
    following = buffer.take(now=10.0)
    assert following is not None and (following.first, following.last) == (200, 229)  # max_rows applies again


def test_replay_with_missing_records_is_refused() -> None:
    buffer = PartitionBuffer[Message](KEY, resume_plan(BatchMark(100, 199, Phase.BEFORE)), 1000, 0.2)
    with pytest.raises(OffsetGap):
        buffer.add(recs(120, 130), now=0.0)


def test_the_first_batch_after_assignment_is_small() -> None:
    buffer = PartitionBuffer[Message](KEY, resume_plan(None), max_rows=50_000, max_wait_s=0.5)
    buffer.add(recs(0, 9_999), now=0.0)
    first = buffer.take(now=0.0)
    assert first is not None and len(first.records) == 2_000
    assert buffer.take(now=0.0) is None  # later batches fill up to max_rows (or age)


def test_batches_close_on_size_or_age() -> None:
    buffer = PartitionBuffer[Message](KEY, resume_plan(None), max_rows=10, max_wait_s=0.5)
    buffer.add(recs(0, 4), now=0.0)
    assert buffer.take(now=0.1) is None
    aged = buffer.take(now=0.6)
    assert aged is not None and len(aged.records) == 5
    buffer.add(recs(5, 30), now=1.0)
    sized = buffer.take(now=1.0)
    assert sized is not None and (sized.first, sized.last) == (5, 14)


class RecordingSink:
    def __init__(self, failing_inserts: int = 0) -> None:
        self.calls: list[str] = []
        self.failing_inserts = failing_inserts

    def save_marks(self, group: str, marks: dict[PartitionKey, BatchMark]) -> None:
        self.calls.append("mark:" + ",".join(f"{m.phase.value}{m.version}" for m in marks.values()))

    def insert(self, batch: PreparedBatch[str], token: str) -> None:
        if self.failing_inserts:
            self.failing_inserts -= 1
            self.calls.append(f"failed:{token}")
            raise ConnectionError("insert failed")
        self.calls.append(f"insert:{token}")


def prepared(first: int, last: int) -> PreparedBatch[str]:
    return PreparedBatch(KEY, first, last, "rows")


def test_cycle_order_marks_around_inserts_and_versions_increase() -> None:
    sink, versions = RecordingSink(), MarkVersions()
    batches = [prepared(0, 9)]
    result = write_cycle("g", batches, plan_marks(batches, versions), sink, retry_limit=0)
    assert sink.calls == ["mark:BEFORE1", "insert:g/canvass.knock/0/0-9", "mark:AFTER2"]
    assert result.offsets == {KEY: 10}
    nxt = [prepared(10, 19)]
    write_cycle("g", nxt, plan_marks(nxt, versions), sink, retry_limit=0)
    assert sink.calls[-3:] == ["mark:BEFORE3", "insert:g/canvass.knock/0/10-19", "mark:AFTER4"]


def test_a_failed_insert_is_retried_with_the_same_token() -> None:
    sink = RecordingSink(failing_inserts=2)
    batches = [prepared(0, 9)]
    write_cycle("g", batches, plan_marks(batches, MarkVersions()), sink, retry_limit=5, sleep=lambda s: None)
    token = "g/canvass.knock/0/0-9"
    assert sink.calls == ["mark:BEFORE1", f"failed:{token}", f"failed:{token}", f"insert:{token}", "mark:AFTER2"]


def test_past_the_retry_limit_nothing_is_marked_after() -> None:
    sink = RecordingSink(failing_inserts=10)
    batches = [prepared(0, 9)]
    with pytest.raises(FatalSinkError):
        write_cycle("g", batches, plan_marks(batches, MarkVersions()), sink, retry_limit=2, sleep=lambda s: None)
    assert sink.calls[0] == "mark:BEFORE1" and not any(c.startswith("mark:AFTER") for c in sink.calls)
    assert len([c for c in sink.calls if c.startswith("failed:")]) == 3


def test_a_partition_with_a_backlog_waits_longer_for_a_fuller_batch() -> None:
    buffer = PartitionBuffer[Message](KEY, resume_plan(None), max_rows=1000, max_wait_s=0.2)
    buffer.add(recs(0, 99), now=0.0)
    assert buffer.take(now=0.3, behind=True) is not None  # the first batch never waits longer
    buffer.add(recs(100, 199), now=0.3)
    assert buffer.take(now=0.6, behind=True) is None
    assert buffer.take(now=0.6, behind=False) is not None
