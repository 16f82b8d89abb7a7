"""Exactly-once effect under at-least-once delivery, after ClickHouse's Kafka sink (docs/DESIGN.md there).

Per topic-partition, batches are cut at offsets that can be rebuilt identically after a crash, and
each is inserted with the token `group/topic/partition/first-last`, so a retried or replayed batch
changes nothing. Before inserting, a BEFORE mark with the batch's offsets is stored; after the
insert is acknowledged, an AFTER mark; the Kafka offset is committed only after that.

On (re)assignment the stored mark decides where to resume:
- AFTER [a, b]: everything up to b is in; seek to b + 1.
- BEFORE [a, b]: the insert may or may not have landed; seek to a and re-cut exactly [a, b] (the
  same token), then carry on.
- none: start from the committed offset.

This module knows neither Kafka clients nor Faust: records only need an `offset()` (as confluent-kafka's
Message has).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class Phase(StrEnum):
    BEFORE = "BEFORE"
    AFTER = "AFTER"


@dataclass(frozen=True, order=True)
class PartitionKey:
    topic: str
    partition: int


@dataclass(frozen=True)
class BatchMark:
    first: int
    last: int
    phase: Phase
    version: int = 0


class BatchStateStore(Protocol):
    """Durable BEFORE/AFTER marks. `save` returns only once the marks are stored."""

    def load(self, group: str, keys: Sequence[PartitionKey]) -> dict[PartitionKey, BatchMark]: ...

    def save(self, group: str, marks: dict[PartitionKey, BatchMark]) -> None: ...


class HasOffset(Protocol):
    def offset(self) -> int | None: ...  # None only on error messages, which never reach a buffer


R = TypeVar("R", bound=HasOffset)


def offset_of(record: HasOffset) -> int:
    offset = record.offset()
    if offset is None:
        raise ValueError("a record without an offset (a Kafka error message) reached a partition buffer")
    return offset


# How much longer a partition with a backlog waits to fill its batch.
BACKLOG_WAIT_FACTOR = 5
# The most rows in a partition's first batch after (re)assignment.
FIRST_BATCH_ROWS = 2_000


class OffsetGap(RuntimeError):
    """Records needed to rebuild an unconfirmed batch are gone (retention, or offsets moved by hand)."""


class FatalSinkError(RuntimeError):
    """The sink cannot go on; the caller must exit without committing."""


@dataclass(frozen=True)
class ResumePlan:
    seek_to: int | None  # None: the committed offset
    replay: tuple[int, int] | None  # an unconfirmed batch to rebuild exactly


def resume_plan(mark: BatchMark | None) -> ResumePlan:
    if mark is None:
        return ResumePlan(None, None)
    if mark.phase is Phase.AFTER:
        return ResumePlan(mark.last + 1, None)
    return ResumePlan(mark.first, (mark.first, mark.last))


@dataclass
class Batch(Generic[R]):
    key: PartitionKey
    records: list[R]

    @property
    def first(self) -> int:
        return offset_of(self.records[0])

    @property
    def last(self) -> int:
        return offset_of(self.records[-1])

    def token(self, group: str) -> str:
        return f"{group}/{self.key.topic}/{self.key.partition}/{self.first}-{self.last}"


@dataclass
class PartitionBuffer(Generic[R]):
    """Collects one partition's records and cuts batches: the replay batch first, then by size or age."""

    key: PartitionKey
    plan: ResumePlan
    max_rows: int
    max_wait_s: float
    next_offset: int | None = None  # the lowest offset still wanted
    pending: list[R] = field(default_factory=list)
    opened_at: float | None = None
    cut_batches: int = 0

    def __post_init__(self) -> None:
        if self.plan.seek_to is not None:
            self.next_offset = self.plan.seek_to

    def add(self, records: Sequence[R], now: float) -> None:
        for record in records:
            offset = offset_of(record)
            if self.next_offset is not None and offset < self.next_offset:
                continue  # already inserted and marked AFTER: redelivered, not new
            if self.plan.replay is not None and not self.pending and offset > self.plan.replay[0]:
                raise OffsetGap(
                    f"{self.key.topic}[{self.key.partition}]: unconfirmed batch {self.plan.replay} must be rebuilt "
                    f"but the first record available is at offset {offset}"
                )
            self.pending.append(record)
            self.next_offset = offset + 1
        if self.pending and self.opened_at is None:
            self.opened_at = now

    def take(self, now: float, force: bool = False, behind: bool = False) -> Batch[R] | None:
        """The next batch if one is due. A replay batch is due only once it is complete, whatever `force`.

        `behind`: the partition has a backlog, so freshness is already lost; waiting longer for a
        bigger batch makes the catch-up faster (one insert costs milliseconds whatever its size).
        """
        if not self.pending:
            return None
        if self.plan.replay is not None:
            last = self.plan.replay[1]
            if offset_of(self.pending[-1]) < last:
                return None
            cut = next(i for i, r in enumerate(self.pending) if offset_of(r) >= last) + 1
            if offset_of(self.pending[cut - 1]) != last:
                log.warning("%s: offset %d of the unconfirmed batch is missing; cutting before it", self.key, last)
                cut -= 1
            self.plan = ResumePlan(None, None)
            return self._cut(cut, now)
        # The first batch after (re)assignment is small and never waits longer: start-up waits for it.
        limit = self.max_rows if self.cut_batches else min(self.max_rows, FIRST_BATCH_ROWS)
        due = force or len(self.pending) >= limit
        if not due and self.opened_at is not None:
            patience = BACKLOG_WAIT_FACTOR if behind and self.cut_batches else 1
            due = now - self.opened_at >= self.max_wait_s * patience
        return self._cut(min(len(self.pending), limit), now) if due else None

    def _cut(self, count: int, now: float) -> Batch[R]:
        self.cut_batches += 1
        batch = Batch(self.key, self.pending[:count])
        del self.pending[:count]
        self.opened_at = now if self.pending else None
        return batch


@dataclass
class MarkVersions:
    """The mark version per partition, increasing, so the newest mark wins in the store."""

    versions: dict[PartitionKey, int] = field(default_factory=dict)

    def next(self, key: PartitionKey) -> int:
        self.versions[key] = self.versions.get(key, 0) + 1
        return self.versions[key]


P = TypeVar("P")


@dataclass(frozen=True)
class PreparedBatch(Generic[P]):
    """A batch's offsets and what will be inserted for it (validated rows, rejections, ...)."""

    key: PartitionKey
    first: int
    last: int
    payload: P

    def token(self, group: str) -> str:
        return f"{group}/{self.key.topic}/{self.key.partition}/{self.first}-{self.last}"


class CycleSink(Protocol[P]):
    """The blocking operations of a flush cycle. Both raise on failure and may be retried as they are."""

    def save_marks(self, group: str, marks: dict[PartitionKey, BatchMark]) -> None: ...

    def insert(self, batch: PreparedBatch[P], token: str) -> None: ...


@dataclass(frozen=True)
class CycleResult:
    offsets: dict[PartitionKey, int]  # what may now be committed to Kafka
    insert_seconds: dict[PartitionKey, float]


def plan_marks(
    batches: Sequence[PreparedBatch[P]], versions: MarkVersions
) -> tuple[dict[PartitionKey, BatchMark], dict[PartitionKey, BatchMark]]:
    """The BEFORE and AFTER marks of one cycle, versioned now, in the order they will be stored."""
    before = {b.key: BatchMark(b.first, b.last, Phase.BEFORE, versions.next(b.key)) for b in batches}
    after = {b.key: BatchMark(b.first, b.last, Phase.AFTER, versions.next(b.key)) for b in batches}
    return before, after


def write_cycle(
    group: str,
    batches: Sequence[PreparedBatch[P]],
    marks: tuple[dict[PartitionKey, BatchMark], dict[PartitionKey, BatchMark]],
    sink: CycleSink[P],
    retry_limit: int,
    sleep: Callable[[float], None] = time.sleep,
) -> CycleResult:
    """BEFORE marks → one token-carrying insert per batch → AFTER marks. Blocking; one thread runs all cycles
    in order, so a partition's next BEFORE mark is never stored before its previous AFTER mark.

    The caller commits `offsets` only after this returns. On FatalSinkError it must exit without committing.
    """
    before, after = marks
    retry_same_token(lambda: sink.save_marks(group, before), "storing BEFORE marks", retry_limit, sleep)
    seconds = {}
    for batch in batches:
        token = batch.token(group)
        started = time.perf_counter()
        retry_same_token(partial(sink.insert, batch, token), f"insert {token}", retry_limit, sleep)
        seconds[batch.key] = time.perf_counter() - started
    retry_same_token(lambda: sink.save_marks(group, after), "storing AFTER marks", retry_limit, sleep)
    return CycleResult({b.key: b.last + 1 for b in batches}, seconds)


T = TypeVar("T")


def retry_same_token(
    attempt: Callable[[], T],
    what: str,
    limit: int,
    sleep: Callable[[float], None] = time.sleep,
    base_delay_s: float = 0.2,
    max_delay_s: float = 10.0,
) -> T:
    """Retry an idempotent step (a token-carrying insert, a mark) until it succeeds; past `limit`
    failures raise FatalSinkError."""
    failures = 0
    while True:
        try:
            return attempt()
        except Exception as exc:
            failures += 1
            if failures > limit:
                raise FatalSinkError(f"{what}: gave up after {failures} failed attempts: {exc}") from exc
            delay = min(max_delay_s, base_delay_s * 2 ** (failures - 1)) * (0.5 + random.random() / 2)
            log.warning("%s failed (attempt %d, retrying in %.1fs with the same token): %s", what, failures, delay, exc)
            sleep(delay)
