"""The linking agent: signups and email people joined to voter-file records as they arrive (issue #5).

Like the scoring agent it reads what ingest has written, never Kafka: new signups (with their
identities) and email events after its checkpointed (partition, offset) per stream, so a replay
sees the same rows in the same order. Per micro-batch it links the person records it has not yet
decided in this *generation* (the voter-file load and model in use) with models/linking off the
event loop, and writes, in this order:

1. `linked_events`: the batch's events whose person is linked, placed in the voter's precinct, and
   every event of a person whose earlier link changed (undone ones with linked = 0). Keyed by event
   and versioned, so writing them twice changes nothing read with FINAL;
2. `link_history` (changes only, with a token naming the changes) and `links` (the current rows);
3. the checkpoint.
A crash anywhere replays the batch: records already decided in this generation keep their links,
and the writes above are idempotent, so nothing is counted twice.

A person record is a signup event (record id: its event id) or an email address (its hash).
Precedence: a reviewer's accepted link (never overridden by the model, also after a voter-file
reload); else a voter_id the email sender supplied, when that voter is on the file; else the
matcher, with the pairs reviewers rejected left out. A new voter-file load (or a newly trained
model) starts a new generation: the index is rebuilt and every record is linked again from the
start of the streams, so links follow the new file and counts move to where it puts people.

Speed: a batch stays columnar from the read (one query per stream, the records' current links
joined in) to the Arrow inserts; Python touches each record once, to decide it. The voter file's
places are arrays by row, looked up by `searchsorted` (bench/linking_stream.py, docs/linking.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa

from config.settings import LinkingSettings
from models.linking import LinkageModel, LinkResult, MatchConfig, Matcher, TrainingConfig, VoterIndex
from models.linking import train as train_model
from sinks.clickhouse.links import (
    EMAIL,
    PLACE_FIELDS,
    SIGNUP,
    EventBatch,
    Link,
    LinkStore,
    PriorLink,
    Review,
    VoterPlaces,
)
from sinks.clickhouse.scoring import EPOCH, Position
from sinks.metrics import PipelineMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")
LINKING_GROUP = "groundswell-linking"
MAX_BATCHES_PER_RUN = 20


class Runner(Protocol):
    """Runs a blocking function with a LinkStore on a thread that owns a ClickHouse client."""

    def __call__(self, fn: Callable[[LinkStore], T], /) -> Awaitable[T]: ...


@dataclass
class Decisions:
    """A record's reviewer decisions in force: the voters turned down, and the one accepted (if any)."""

    rejected: set[str] = field(default_factory=set)
    accepted: str | None = None
    reviewer: str = ""


def decisions_in_force(reviews: Iterable[Review]) -> dict[tuple[str, str], Decisions]:
    """The latest decision on each (record, voter) pair is in force; of the pairs accepted, the latest."""
    latest: dict[tuple[str, str, str], Review] = {}
    for review in sorted(reviews, key=lambda r: (r.decided_at, r.recorded_at or EPOCH, r.review_id)):
        latest[(review.record_kind, review.record_id, review.voter_id)] = review
    out: dict[tuple[str, str], Decisions] = {}
    for review in sorted(latest.values(), key=lambda r: (r.decided_at, r.recorded_at or EPOCH, r.review_id)):
        decisions = out.setdefault((review.record_kind, review.record_id), Decisions())
        if review.decision == "reject":
            decisions.rejected.add(review.voter_id)
            if decisions.accepted == review.voter_id:
                decisions.accepted, decisions.reviewer = None, ""
        else:
            decisions.accepted, decisions.reviewer = review.voter_id, review.reviewer
    return out


def decide(
    kind: str,
    record_id: str,
    result: LinkResult | None,
    supplied: str,
    decisions: Decisions | None,
    on_file: Callable[[str], bool],
    shown_before: tuple[tuple[str, float, float], ...],
    generation: str,
    version: int,
    now: datetime,
) -> Link:
    """One record's link, by precedence: reviewer's accept (showing the candidates of the matcher's
    result, else `shown_before`), sender's voter_id, the matcher."""
    if decisions is not None and decisions.accepted is not None:
        candidates = result.candidates if result else ()
        shown = tuple((c.voter_id, c.probability, c.match_weight) for c in candidates) or shown_before
        return Link(kind, record_id, decisions.accepted, "matched", "review", 1.0, None, shown, "reviewer",
                    decisions.reviewer, generation, version, now)  # fmt: skip
    rejected = decisions.rejected if decisions else set()
    if supplied and supplied not in rejected and on_file(supplied):
        return Link(kind, record_id, supplied, "matched", "supplied", 1.0, None, (), "sender", "", generation,
                    version, now)  # fmt: skip
    if result is None:
        return Link(kind, record_id, "", "unmatched", "none", 0.0, None, (), "model", "", generation, version, now)
    return Link(
        kind, record_id, result.voter_id or "", result.status.value, result.method.value, result.probability,
        result.match_weight, tuple([(c.voter_id, c.probability, c.match_weight) for c in result.candidates]),
        "model", "", generation, version, now,
    )  # fmt: skip


def linked_events_table(
    batch: EventBatch, voter_of: dict[str, str], places: VoterPlaces, undo: set[str], version: int
) -> pa.Table:
    """`linked_events` rows for the batch's events whose person is linked to a voter on the file (in the
    voter's place), and linked = 0 rows for the events of records in `undo` (their link was undone)."""
    records = batch.column("record_id")
    voters = [voter_of.get(r, "") for r in records]
    rows = places.rows(voters)
    linked = rows >= 0
    undone = np.fromiter((r in undo for r in records), bool, len(records)) if undo else np.zeros(len(records), bool)
    keep = np.flatnonzero(linked | undone)
    place = np.full(len(records), places.blank, dtype=np.int64)
    place[linked] = places.place_of_row[rows[linked]]
    events = batch.table.select(["event_id", "source", "record_id", "kind", "mailing_id", "amount_cents",
                                 "occurred_at", "raw_precinct_id"]).take(keep)  # fmt: skip
    located = places.places.take(place[keep])
    kept_linked = linked[keep]
    voter_ids = [voters[i] if on else "" for i, on in zip(keep.tolist(), kept_linked.tolist(), strict=True)]
    events = events.append_column("voter_id", pa.array(voter_ids, pa.string()))
    for name in PLACE_FIELDS:
        events = events.append_column(name, located.column(name))
    events = events.append_column("linked", pa.array(kept_linked.astype(np.uint8)))
    return events.append_column("version", pa.array(np.full(len(keep), version, dtype=np.uint64)))


def _events_of(kind: str, ids: set[str], store: LinkStore) -> EventBatch:
    return store.signup_events(ids) if kind == SIGNUP else store.email_events(ids)


@dataclass(frozen=True)
class LinkOutcome:
    status: str  # linking | no voter file | waiting for people to train on
    signups: int = 0  # signup events read
    email_events: int = 0
    decided: int = 0  # records (re)decided
    changed: int = 0  # of which the decision changed
    reviews: int = 0  # reviewer decisions applied


@dataclass(frozen=True)
class Plan:
    """One batch's decisions, not yet written: linked-event rows, links (with their history)."""

    kind: str
    events: pa.Table | None = None
    links: list[Link] = field(default_factory=list)
    history: list[tuple[Link, PriorLink | None]] = field(default_factory=list)
    decided: int = 0  # records (re)decided
    changed: int = 0  # of which the decision changed


class LinkingAgent:
    def __init__(
        self,
        run: Runner,
        settings: LinkingSettings,
        group: str = LINKING_GROUP,
        clock_ns: Callable[[], int] = time.time_ns,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self._run = run
        self._settings = settings
        self._group = group
        self._clock_ns = clock_ns
        self._metrics = metrics
        self._load_id: str | None = None
        self._index: VoterIndex | None = None
        self._places: VoterPlaces | None = None
        self._matcher: Matcher | None = None
        self.generation: str | None = None
        self._positions: dict[str, Position] = {}
        self._reviews: list[Review] = []
        self._seen_reviews: set[str] = set()
        self._review_mark = EPOCH
        self._decisions: dict[tuple[str, str], Decisions] = {}
        self._ambiguous: int | None = None  # links awaiting review: counted once, then kept by the changes

    @property
    def batch_rows(self) -> int:
        return self._settings.batch_rows

    @property
    def matcher(self) -> Matcher | None:
        """The matcher of the current generation (None until a model is trained or loaded)."""
        return self._matcher

    async def run_ticks(self, max_batches: int = MAX_BATCHES_PER_RUN) -> LinkOutcome | None:
        """What a timer calls: ticks until caught up (at most `max_batches`); a failure is logged and
        the next call retries from the stored state."""
        outcome = None
        try:
            for _ in range(max_batches):
                outcome = await self.tick()
                if max(outcome.signups, outcome.email_events) < self._settings.batch_rows:
                    break
        except Exception:
            log.exception("linking tick failed; the next tick retries")
        return outcome

    async def tick(self) -> LinkOutcome:
        started = time.perf_counter()
        outcome = await self._tick()
        if self._metrics is not None and (outcome.signups or outcome.email_events or outcome.reviews):
            self._metrics.linking_batch_seconds.observe(time.perf_counter() - started)
        return outcome

    async def _tick(self) -> LinkOutcome:
        load_id = await self._run(lambda store: store.current_load())
        if load_id is None:
            return LinkOutcome("no voter file")
        if load_id != self._load_id:
            await self._open(load_id)
        if self._matcher is None and not await self._train():
            return LinkOutcome("waiting for people to train on")
        if self._ambiguous is None and self._metrics is not None:
            self._ambiguous = await self._run(lambda store: store.ambiguous_count())
            self._metrics.link_review_queue.set(self._ambiguous)
        reviews, decided, changed = await self._apply_reviews()
        # Two streams, overlapped: the email batch is read while the signups are matched, and the
        # signups' rows are written while the emails are matched (each on its own thread; records of
        # the two kinds never share a link). The checkpoint waits for every write.
        signups = await self._read(SIGNUP)
        reading = asyncio.ensure_future(self._read(EMAIL))
        writing: asyncio.Future[None] | None = None
        try:
            signup_plan = await self._decide(SIGNUP, signups, complete=False)
            writing = asyncio.ensure_future(self._write(signup_plan))
            emails = await reading
            email_plan = await self._decide(EMAIL, emails, complete=False)
            await writing
            await self._write(email_plan)
        finally:  # after a failure: nothing is left running unobserved (the tick is replayed)
            for pending in (reading, writing):
                if pending is not None and not pending.done():
                    pending.cancel()
                elif pending is not None and not pending.cancelled():
                    pending.exception()
        decided += signup_plan.decided + email_plan.decided
        changed += signup_plan.changed + email_plan.changed
        if len(signups) or len(emails):
            self._advance(signups)
            self._advance(emails)
            await self._checkpoint()
        return LinkOutcome("linking", len(signups), len(emails), decided, changed, reviews)

    # --- generations: a voter-file load and a model ------------------------------------------

    async def _open(self, load_id: str) -> None:
        """Build the index of this load's voter file and take its model, if one was trained."""
        self._index = self._matcher = self._places = None  # free the old index before building the next
        self._load_id, self.generation = load_id, None
        voters, self._places = await self._run(lambda store: store.voter_file())
        started = time.perf_counter()
        self._index = await asyncio.to_thread(VoterIndex.build, voters)
        log.info("linking: indexed %d voters of load %s in %.1f s", len(voters), load_id[:12],
                 time.perf_counter() - started)  # fmt: skip
        stored = await self._run(lambda store: store.load_model(load_id))
        if stored is not None:
            await self._use_model(*stored)

    async def _use_model(self, model_id: str, model_json: str) -> None:
        assert self._index is not None and self._load_id is not None
        config = MatchConfig(match_threshold=self._settings.match_threshold,
                             review_threshold=self._settings.review_threshold)  # fmt: skip
        self._matcher = Matcher(self._index, LinkageModel.from_json(model_json), config)
        self.generation = f"{self._load_id}/{model_id}"
        generation, group = self.generation, self._group
        self._positions = await self._run(lambda store: store.load_positions(group, generation))
        log.info("linking: generation %s, resuming from %d positions", generation, len(self._positions))

    async def _train(self) -> bool:
        """Train once enough people are known (unsupervised: EM on them), and store the model as JSON."""
        assert self._index is not None and self._load_id is not None
        s = self._settings
        if await self._run(lambda store: store.people_count()) < s.min_training_people:
            return False
        people = await self._run(lambda store: store.training_people(s.training_people))
        config = TrainingConfig(u_pairs=s.training_u_pairs, address_u_pairs=s.training_address_u_pairs)
        started = time.perf_counter()
        report = await asyncio.to_thread(train_model, self._index, people, config)
        load_id, model_json = self._load_id, report.model.to_json()
        model_id = await self._run(lambda store: store.save_model(load_id, len(people), model_json))
        log.info("linking: trained model %s on %d people in %.1f s (match rate %.3f)", model_id, len(people),
                 time.perf_counter() - started, report.model.match_rate)  # fmt: skip
        await self._use_model(model_id, model_json)
        return True

    # --- reading and positions ---------------------------------------------------------------

    def _partition_positions(self, source: str) -> dict[int, Position]:
        prefix = source + "/"
        return {int(k[len(prefix) :]): p for k, p in self._positions.items() if k.startswith(prefix)}

    async def _read(self, source: str) -> EventBatch:
        positions, limit = self._partition_positions(source), self._settings.batch_rows
        if source == SIGNUP:
            return await self._run(lambda store: store.read_signups(positions, limit))
        return await self._run(lambda store: store.read_emails(positions, limit))

    def _advance(self, batch: EventBatch) -> None:
        for partition, position in batch.last_positions().items():
            self._positions[f"{batch.source}/{partition}"] = position

    async def _checkpoint(self) -> None:
        group, generation, positions = self._group, self.generation, dict(self._positions)
        assert generation is not None
        await self._run(lambda store: store.save_positions(group, generation, positions))

    # --- reviews -----------------------------------------------------------------------------

    async def _apply_reviews(self) -> tuple[int, int, int]:
        """Take reviewer decisions recorded since the last look, and decide their records again."""
        mark = self._review_mark
        found = await self._run(lambda store: store.reviews_since(mark))
        new = [r for r in found if r.review_id not in self._seen_reviews]
        if not new:
            return 0, 0, 0
        self._reviews += new
        self._seen_reviews.update(r.review_id for r in new)
        self._review_mark = max(r.recorded_at or mark for r in new)
        self._decisions = decisions_in_force(self._reviews)
        decided = changed = 0
        for kind in (SIGNUP, EMAIL):
            ids = {r.record_id for r in new if r.record_kind == kind}
            if not ids:
                continue
            events = await self._run(partial(_events_of, kind, ids))
            d, c = await self._link(kind, events, complete=True, force=ids)
            decided, changed = decided + d, changed + c
        log.info("linking: applied %d review decisions (%d links changed)", len(new), changed)
        return len(new), decided, changed

    # --- linking -----------------------------------------------------------------------------

    async def _link(
        self, kind: str, batch: EventBatch, complete: bool, force: set[str] | None = None
    ) -> tuple[int, int]:
        """Decide the batch's records that need it; write linked events, history and links."""
        plan = await self._decide(kind, batch, complete, force)
        await self._write(plan)
        return plan.decided, plan.changed

    async def _decide(self, kind: str, batch: EventBatch, complete: bool, force: set[str] | None = None) -> Plan:
        """Decide the batch's records that need it, and the rows that record the decisions.

        `complete`: `batch` holds every event of its records (else the other events of an email
        person whose earlier link changed are fetched). `force`: records to decide again even if
        decided in this generation.
        """
        if not len(batch):
            return Plan(kind)
        assert self._matcher is not None and self._places is not None and self.generation is not None
        current = batch.prior_links()
        supplied = batch.supplied()
        on_file = self._on_file(supplied.values())
        generation, decisions = self.generation, self._decisions
        need = [
            r for r in batch.record_ids()
            if (prior := current.get(r)) is None or prior.generation != generation or (force and r in force)
            or (r in supplied and self._sender_overrides(prior, supplied[r], on_file))
        ]  # fmt: skip
        version = self._clock_ns()
        now = datetime.fromtimestamp(version / 1e9, UTC)
        decided: dict[str, Link] = {}
        if need:
            model_ids = [r for r in need if (d := decisions.get((kind, r))) is None or d.accepted is None]
            rejected = {r: d.rejected for r in model_ids if (d := decisions.get((kind, r))) and d.rejected}
            people = batch.people(model_ids)
            records = [people[r] for r in model_ids]
            results = await asyncio.to_thread(self._matcher.link, records, rejected)
            by_id = dict(zip(model_ids, results, strict=True))
            accepted = [r for r in need if r not in by_id and r in current]
            shown = await self._run(lambda store: store.candidates_shown(kind, accepted)) if accepted else {}
            for r in need:
                decided[r] = decide(kind, r, by_id.get(r), supplied.get(r, ""), decisions.get((kind, r)),
                                    on_file.__contains__, shown.get(r, ()), generation, version, now)  # fmt: skip
        writes: list[Link] = []
        history: list[tuple[Link, PriorLink | None]] = []
        changed: set[str] = set()
        undo: set[str] = set()
        for r, new in decided.items():
            old = current.get(r)
            if old is not None and new.same_decision(old):
                if old.generation != new.generation:
                    writes.append(new)  # same decision, now made in this generation
                continue
            writes.append(new)
            history.append((new, old))
            changed.add(r)
            if old is not None and old.matched and not new.matched:
                undo.add(r)
        voter_of = {r: prior.voter_id for r, prior in current.items() if prior.matched}
        for written in writes:
            if written.matched:
                voter_of[written.record_id] = written.voter_id
            else:
                voter_of.pop(written.record_id, None)
        places = self._places
        rows = linked_events_table(batch, voter_of, places, undo, version)
        # An email person linked before has events in earlier batches, counted where the old link put
        # them: they move too. One decided for the first time has none (each earlier event was read in
        # an earlier batch, which decided the person), so most batches read nothing more.
        moved = sorted(r for r in changed if r in current) if kind == EMAIL and not complete else []
        if moved:
            earlier = await self._run(lambda store: store.email_events(moved))
            moved_set = set(moved)
            others = pa.array([r not in moved_set for r in batch.column("record_id")])
            rest = EventBatch(batch.source, batch.table.filter(others))
            rows = pa.concat_tables([linked_events_table(rest, voter_of, places, undo, version),
                                     linked_events_table(earlier, voter_of, places, undo, version)])  # fmt: skip
        return Plan(kind, rows, writes, history, len(decided), len(changed))

    async def _write(self, plan: Plan) -> None:
        """Linked events, then history and links (the order the module docstring gives)."""
        if plan.events is not None:
            events = plan.events
            await self._run(lambda store: store.write_linked_events(events))
        if plan.links:
            await self._run(lambda store: store.write_links(plan.links, plan.history))
        self._count(plan)

    def _count(self, plan: Plan) -> None:
        """Metrics: decisions written, by kind, status and method; the review queue, by the changes."""
        if self._metrics is None:
            return
        for (status, method), n in Counter((link.status, link.method) for link in plan.links).items():
            self._metrics.linked_records.labels(plan.kind, status, method).inc(n)
        if self._ambiguous is not None:
            self._ambiguous += sum(
                (new.status == "ambiguous") - (old is not None and old.status == "ambiguous")
                for new, old in plan.history
            )
            self._metrics.link_review_queue.set(self._ambiguous)

    @staticmethod
    def _sender_overrides(link: PriorLink, supplied: str, on_file: set[str]) -> bool:
        """A sender's voter_id on the file that differs from the model's link wins (a reviewer's does not yield)."""
        return supplied in on_file and link.decided_by == "model" and link.voter_id != supplied

    def _on_file(self, voter_ids: Iterable[str]) -> set[str]:
        assert self._places is not None
        wanted = sorted(set(voter_ids))
        rows = self._places.rows(wanted)
        return {v for v, row in zip(wanted, rows.tolist(), strict=True) if row >= 0}
