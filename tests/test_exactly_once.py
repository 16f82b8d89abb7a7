"""The batch state machine and flush ordering, without Kafka or ClickHouse."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sinks.exactly_once import (
    Batch,
    BatchMark,
    FatalSinkError,
    MarkVersions,
    OffsetGap,
    PartitionBuffer,
    PartitionKey,
    Phase,
    flush_cycle,
    resume_plan,
    retry_same_token,
)

KEY = PartitionKey("canvass.knock", 0)


@dataclass(frozen=True)
class Rec:
    offset: int


def recs(first: int, last: int) -> list[Rec]:
    return [Rec(o) for o in range(first, last + 1)]


def test_after_mark_resumes_past_the_batch_and_drops_redelivery() -> None:
    plan = resume_plan(BatchMark(100, 199, Phase.AFTER))
    assert plan.seek_to == 200 and plan.replay is None
    buffer = PartitionBuffer[Rec](KEY, plan, max_rows=1000, max_wait_s=0.2)
    buffer.add(recs(150, 250), now=0.0)  # a broker that ignores the seek still cannot double count
    batch = buffer.take(now=1.0)
    assert batch is not None and (batch.first, batch.last) == (200, 250)


def test_before_mark_rebuilds_exactly_the_same_batch_then_continues() -> None:
    plan = resume_plan(BatchMark(100, 199, Phase.BEFORE))
    assert plan.seek_to == 100 and plan.replay == (100, 199)
    buffer = PartitionBuffer[Rec](KEY, plan, max_rows=30, max_wait_s=0.0)
    buffer.add(recs(100, 150), now=0.0)
    assert buffer.take(now=10.0, force=True) is None  # incomplete replay is never cut, even when forced
    buffer.add(recs(151, 260), now=0.0)
    replay = buffer.take(now=10.0)
    assert replay is not None and (replay.first, replay.last) == (100, 199)
    assert replay.token("g") == "g/canvass.knock/0/100-199"
    following = buffer.take(now=10.0)
    assert following is not None and (following.first, following.last) == (200, 229)  # max_rows applies again


def test_replay_with_missing_records_is_refused() -> None:
    buffer = PartitionBuffer[Rec](KEY, resume_plan(BatchMark(100, 199, Phase.BEFORE)), 1000, 0.2)
    with pytest.raises(OffsetGap):
        buffer.add(recs(120, 130), now=0.0)


def test_batches_close_on_size_or_age() -> None:
    buffer = PartitionBuffer[Rec](KEY, resume_plan(None), max_rows=10, max_wait_s=0.5)
    buffer.add(recs(0, 4), now=0.0)
    assert buffer.take(now=0.1) is None
    aged = buffer.take(now=0.6)
    assert aged is not None and len(aged.records) == 5
    buffer.add(recs(5, 30), now=1.0)
    sized = buffer.take(now=1.0)
    assert sized is not None and (sized.first, sized.last) == (5, 14)


class Recorder:
    def __init__(self, fail_write: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_write = fail_write

    async def mark(self, marks: dict[PartitionKey, BatchMark]) -> None:
        self.calls.append("mark:" + ",".join(m.phase.value for m in marks.values()))

    async def write(self, batch: Batch[Rec], token: str) -> None:
        if self.fail_write:
            raise RuntimeError("insert failed")
        self.calls.append(f"write:{token}")

    async def publish_rejections(self) -> None:
        self.calls.append("dlq")

    async def commit(self, offsets: dict[PartitionKey, int]) -> None:
        self.calls.append(f"commit:{offsets[KEY]}")


async def test_flush_cycle_order_and_versions() -> None:
    steps, versions = Recorder(), MarkVersions()
    await flush_cycle("g", [Batch(KEY, recs(0, 9))], steps, versions)
    assert steps.calls == ["mark:BEFORE", "write:g/canvass.knock/0/0-9", "dlq", "mark:AFTER", "commit:10"]
    assert versions.versions[KEY] == 2


async def test_failed_write_never_marks_after_nor_commits() -> None:
    steps = Recorder(fail_write=True)
    with pytest.raises(RuntimeError):
        await flush_cycle("g", [Batch(KEY, recs(0, 9))], steps, MarkVersions())
    assert steps.calls == ["mark:BEFORE"]


async def test_retry_gives_up_with_fatal_error() -> None:
    attempts = 0

    async def always_fails() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("down")

    with pytest.raises(FatalSinkError):
        await retry_same_token(always_fails, "insert", limit=2, base_delay_s=0.001)
    assert attempts == 3


def test_a_partition_with_a_backlog_waits_longer_for_a_fuller_batch() -> None:
    buffer = PartitionBuffer[Rec](KEY, resume_plan(None), max_rows=1000, max_wait_s=0.2)
    buffer.add(recs(0, 99), now=0.0)
    assert buffer.take(now=0.3, behind=True) is None
    assert buffer.take(now=0.3, behind=False) is not None
