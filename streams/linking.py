"""The linking agent: signups and email people joined to voter-file records as they arrive (issue #5).

Like the scoring agent it reads what ingest has written, never Kafka: new signups (with their
identities) and email events after its checkpointed (partition, offset) per stream, so a replay
sees the same rows in the same order. Per micro-batch it links the person records it has not yet
decided in this *generation* (the voter-file load and model in use) with models/linking off the
event loop, and writes, in this order:

1. `linked_events`: the batch's events whose person is linked, placed in the voter's precinct, and
   every event of a person whose link changed (undone ones with linked = 0). Keyed by event and
   versioned, so writing them twice changes nothing read with FINAL;
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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

from config.settings import LinkingSettings
from models.linking import LinkageModel, LinkResult, MatchConfig, Matcher, PersonRecord, TrainingConfig, VoterIndex
from models.linking import train as train_model
from sinks.clickhouse.links import (
    EMAIL,
    SIGNUP,
    Geo,
    Link,
    LinkedEvent,
    LinkStore,
    PersonEvent,
    Review,
    record_ids,
)
from sinks.clickhouse.scoring import EPOCH, Position

log = logging.getLogger(__name__)
T = TypeVar("T")
LINKING_GROUP = "groundswell-linking"
# Bounded caches of current links and voter geography (a 1M-person list would hold ~300 MB).
CACHE_ENTRIES = 200_000
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
    previous: Link | None,
    generation: str,
    version: int,
    now: datetime,
) -> Link:
    """One record's link, by precedence: reviewer's accept, sender's voter_id, the matcher."""
    if decisions is not None and decisions.accepted is not None:
        candidates = result.candidates if result else ()
        shown = tuple((c.voter_id, c.probability, c.match_weight) for c in candidates) or (
            previous.candidates if previous else ()
        )
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
        result.match_weight, tuple((c.voter_id, c.probability, c.match_weight) for c in result.candidates),
        "model", "", generation, version, now,
    )  # fmt: skip


def linked_event_rows(
    events: Iterable[PersonEvent], links: dict[str, Link], geography: dict[str, Geo], undo: set[str], version: int
) -> list[LinkedEvent]:
    """Rows for the events whose person is linked (in the voter's precinct), and linked = 0 rows for
    the events of records in `undo` (their link was undone). One row per event."""
    rows: dict[object, LinkedEvent] = {}
    for event in events:
        link = links.get(event.record_id)
        geo = geography.get(link.voter_id) if link is not None and link.matched else None
        if geo is not None and link is not None:
            rows[event.event_id] = LinkedEvent(event, link.voter_id, geo, version)
        elif event.record_id in undo:
            rows[event.event_id] = LinkedEvent(event, "", None, version)
    return list(rows.values())


def _events_of(kind: str, ids: set[str], store: LinkStore) -> list[PersonEvent]:
    return store.signup_events(ids) if kind == SIGNUP else store.email_events(ids)


@dataclass(frozen=True)
class LinkOutcome:
    status: str  # linking | no voter file | waiting for people to train on
    signups: int = 0  # signup events read
    email_events: int = 0
    decided: int = 0  # records (re)decided
    changed: int = 0  # of which the decision changed
    reviews: int = 0  # reviewer decisions applied


class LinkingAgent:
    def __init__(
        self,
        run: Runner,
        settings: LinkingSettings,
        group: str = LINKING_GROUP,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._run = run
        self._settings = settings
        self._group = group
        self._clock_ns = clock_ns
        self._load_id: str | None = None
        self._index: VoterIndex | None = None
        self._matcher: Matcher | None = None
        self.generation: str | None = None
        self._positions: dict[str, Position] = {}
        self._reviews: list[Review] = []
        self._seen_reviews: set[str] = set()
        self._review_mark = EPOCH
        self._decisions: dict[tuple[str, str], Decisions] = {}
        self._links: dict[tuple[str, str], Link] = {}
        self._geo: dict[str, Geo] = {}

    @property
    def batch_rows(self) -> int:
        return self._settings.batch_rows

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
        load_id = await self._run(lambda store: store.current_load())
        if load_id is None:
            return LinkOutcome("no voter file")
        if load_id != self._load_id:
            await self._open(load_id)
        if self._matcher is None and not await self._train():
            return LinkOutcome("waiting for people to train on")
        reviews, decided, changed = await self._apply_reviews()
        signups = await self._read(SIGNUP)
        d, c = await self._link(SIGNUP, signups, complete=False)
        decided, changed = decided + d, changed + c
        emails = await self._read(EMAIL)
        d, c = await self._link(EMAIL, emails, complete=False)
        decided, changed = decided + d, changed + c
        if signups or emails:
            self._advance(signups)
            self._advance(emails)
            await self._checkpoint()
        return LinkOutcome("linking", len(signups), len(emails), decided, changed, reviews)

    # --- generations: a voter-file load and a model ------------------------------------------

    async def _open(self, load_id: str) -> None:
        """Build the index of this load's voter file and take its model, if one was trained."""
        self._index = self._matcher = None  # free the old index before building the next
        self._load_id, self.generation = load_id, None
        self._links.clear()
        self._geo.clear()
        voters = await self._run(lambda store: store.voter_columns())
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

    async def _read(self, source: str) -> list[PersonEvent]:
        positions, limit = self._partition_positions(source), self._settings.batch_rows
        if source == SIGNUP:
            return await self._run(lambda store: store.read_signups(positions, limit))
        return await self._run(lambda store: store.read_emails(positions, limit))

    def _advance(self, events: Sequence[PersonEvent]) -> None:
        """Events come in (partition, offset) order: each partition's last is its new position."""
        for e in events:
            self._positions[f"{e.source}/{e.kafka_partition}"] = Position(e.kafka_offset, e.ingested_at)

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
        self, kind: str, events: list[PersonEvent], complete: bool, force: set[str] | None = None
    ) -> tuple[int, int]:
        """Decide the events' records that need it; write linked events, history and links.

        `complete`: `events` hold every event of their records (else a changed email person's
        other events are fetched). `force`: records to decide again even if decided in this generation.
        """
        if not events:
            return 0, 0
        assert self._matcher is not None and self.generation is not None
        ids = record_ids(events)
        current = await self._current(kind, ids)
        supplied: dict[str, str] = {}
        people: dict[str, PersonRecord] = {}
        for e in events:
            if e.supplied_voter_id:
                supplied[e.record_id] = e.supplied_voter_id  # the latest the sender gave
            people[e.record_id] = e.person or PersonRecord(e.record_id, email_hash=e.record_id)
        on_file = self._on_file(supplied.values())
        need = [r for r in ids if (force and r in force) or self._stale(current.get(r), supplied.get(r), on_file)]
        version = self._clock_ns()
        now = datetime.fromtimestamp(version / 1e9, UTC)
        decided: dict[str, Link] = {}
        if need:
            model_ids = [r for r in need if self._decisions_of(kind, r).accepted is None]
            rejected = {r: d.rejected for r in model_ids if (d := self._decisions.get((kind, r))) and d.rejected}
            records = [people[r] for r in model_ids]
            results = await asyncio.to_thread(self._matcher.link, records, rejected)
            by_id = dict(zip(model_ids, results, strict=True))
            for r in need:
                decided[r] = decide(kind, r, by_id.get(r), supplied.get(r, ""), self._decisions.get((kind, r)),
                                    on_file.__contains__, current.get(r), self.generation, version, now)  # fmt: skip
        writes: list[Link] = []
        history: list[tuple[Link, Link | None]] = []
        changed: set[str] = set()
        undo: set[str] = set()
        for r, new in decided.items():
            old = current.get(r)
            if old is not None and old.same_decision(new):
                if old.generation != new.generation:
                    writes.append(new)  # same decision, now made in this generation
                continue
            writes.append(new)
            history.append((new, old))
            changed.add(r)
            if old is not None and old.matched and not new.matched:
                undo.add(r)
        final = {**current, **{link.record_id: link for link in writes}}
        affected = list(events)
        if kind == EMAIL and changed and not complete:
            more = sorted(changed)
            affected += await self._run(lambda store: store.email_events(more))
        voters = {final[e.record_id].voter_id for e in affected if e.record_id in final and final[e.record_id].matched}
        geography = await self._geography(voters)
        rows = linked_event_rows(affected, final, geography, undo, version)
        await self._run(lambda store: store.write_linked_events(rows))
        await self._run(lambda store: store.write_links(writes, history))
        if len(self._links) > CACHE_ENTRIES:
            self._links.clear()
        for link in writes:
            self._links[(kind, link.record_id)] = link
        return len(decided), len(changed)

    def _decisions_of(self, kind: str, record_id: str) -> Decisions:
        return self._decisions.get((kind, record_id)) or Decisions()

    def _stale(self, link: Link | None, supplied: str | None, on_file: set[str]) -> bool:
        if link is None or link.generation != self.generation:
            return True
        # A sender's voter_id that differs from the model's link wins (a reviewer's does not yield).
        return bool(supplied) and supplied in on_file and link.decided_by == "model" and link.voter_id != supplied

    def _on_file(self, voter_ids: Iterable[str]) -> set[str]:
        assert self._index is not None
        return set(self._index.row_of(sorted(set(voter_ids))))

    async def _current(self, kind: str, ids: list[str]) -> dict[str, Link]:
        found = {r: link for r in ids if (link := self._links.get((kind, r))) is not None}
        missing = [r for r in ids if r not in found]
        if missing:
            stored = await self._run(lambda store: store.current_links(kind, missing))
            if len(self._links) > CACHE_ENTRIES:
                self._links.clear()
            for r, link in stored.items():
                self._links[(kind, r)] = link
            found.update(stored)
        return found

    async def _geography(self, voter_ids: set[str]) -> dict[str, Geo]:
        missing = sorted(v for v in voter_ids if v not in self._geo)
        if missing:
            found = await self._run(lambda store: store.voter_geography(missing))
            if len(self._geo) > CACHE_ENTRIES:
                self._geo.clear()
            self._geo.update(found)
        return {v: self._geo[v] for v in voter_ids if v in self._geo}
