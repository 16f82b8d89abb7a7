"""What the linking agent and the review API read and write in ClickHouse (issue #5).

Reads: the voter file for the matcher's index, new signups (with their identities) and email
events after the agent's position, in (partition, offset) order, as sinks/clickhouse/scoring.py
reads canvass events; current links, reviews, the stored model and checkpoint. Writes: links and
their history, linked events, reviewer decisions, the model (JSON) and the checkpoint.

Blocking; one thread per client. Names and addresses pass through here but are never logged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from models.linking import PersonRecord, VoterColumns
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.scoring import EPOCH, Position
from sinks.clickhouse.writer import EXACTLY_ONCE_SETTINGS

SIGNUP = "signup"
EMAIL = "email"
RECORD_KINDS = (SIGNUP, EMAIL)
LINK_FIELDS = ("record_kind", "record_id", "voter_id", "status", "method", "probability", "match_weight",
               "candidates", "decided_by", "reviewer", "generation", "version", "linked_at")  # fmt: skip
LINKED_EVENT_FIELDS = ("event_id", "source", "record_id", "voter_id", "kind", "mailing_id", "amount_cents",
                       "occurred_at", "state", "region", "county", "precinct_id", "raw_precinct_id", "linked",
                       "version")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Link:
    """A `links` row: the current decision about one person record."""

    record_kind: str
    record_id: str
    voter_id: str  # empty unless matched
    status: str  # matched | ambiguous | unmatched
    method: str  # the matcher's methods, or review | supplied
    probability: float
    match_weight: float | None
    candidates: tuple[tuple[str, float, float], ...]
    decided_by: str  # model | reviewer | sender
    reviewer: str
    generation: str
    version: int
    linked_at: datetime

    @property
    def matched(self) -> bool:
        return self.status == "matched"

    def same_decision(self, other: Link) -> bool:
        return (self.status, self.voter_id, self.method, self.decided_by) == (
            other.status, other.voter_id, other.method, other.decided_by,
        )  # fmt: skip

    def row(self) -> list[Any]:
        return [getattr(self, name) for name in LINK_FIELDS]


@dataclass(frozen=True, slots=True)
class PersonEvent:
    """A raw signup or email event as linking needs it; `record_id` names its person record."""

    source: str  # signup | email
    record_id: str  # a signup's event id; an email person's email hash
    event_id: uuid.UUID
    kind: str  # the signup's action type, the email event's kind
    mailing_id: str
    amount_cents: int | None
    occurred_at: datetime
    raw_precinct_id: str  # where the raw aggregates count it
    kafka_partition: int
    kafka_offset: int
    ingested_at: datetime
    supplied_voter_id: str = ""  # an email event's voter_id, as the sender gave it
    person: PersonRecord | None = None  # signups: the identity to match


@dataclass(frozen=True, slots=True)
class Geo:
    precinct_id: str
    county: str
    region: str
    state: str


@dataclass(frozen=True, slots=True)
class LinkedEvent:
    event: PersonEvent
    voter_id: str
    geo: Geo | None  # None: the event's person is not (or no longer) linked
    version: int

    def row(self) -> list[Any]:
        e, g = self.event, self.geo
        return [e.event_id, e.source, e.record_id, self.voter_id if g else "", e.kind, e.mailing_id, e.amount_cents,
                e.occurred_at, g.state if g else "", g.region if g else "", g.county if g else "",
                g.precinct_id if g else "", e.raw_precinct_id, 1 if g else 0, self.version]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Review:
    review_id: str
    record_kind: str
    record_id: str
    voter_id: str
    decision: str  # accept | reject
    reviewer: str
    decided_at: datetime
    recorded_at: datetime | None = None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _after(positions: dict[int, Position]) -> str:
    """Rows after each partition's position; a partition without one is read from its start."""
    parts = [
        f"(kafka_partition = {int(p)} AND kafka_offset > {int(pos.offset)} AND ingested_at >= "
        f"toDateTime64({pos.ingested_at.timestamp():.3f}, 3, 'UTC'))"
        for p, pos in positions.items()
    ]
    known = ", ".join(str(int(p)) for p in positions)
    parts.append(f"kafka_partition NOT IN ({known})" if known else "1")
    return " OR ".join(parts)


class LinkStore:
    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self._client = client
        self._topology = warehouse.topology
        self._db = warehouse.topology.database

    def _local(self, name: str) -> str:
        return self._topology.qualified(self._topology.local_name(name))

    def _rows(self, sql: str, parameters: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters).result_rows

    # --- the voter file ----------------------------------------------------------------------

    def current_load(self) -> str | None:
        """The latest finished voter-file load (a reload is a new generation of links)."""
        rows = self._rows(f"SELECT load_id FROM {self._db}.voter_file_loads ORDER BY finished_at DESC, load_id LIMIT 1")
        return str(rows[0][0]) if rows else None

    def voter_columns(self) -> VoterColumns:
        result = self._client.query(
            f"SELECT voter_id, given_name, family_name, birth_year, zip5, address_line1, email_hash, phone_hash "
            f"FROM {self._db}.voters FINAL"
        )
        columns = result.result_columns if result.row_count else [[] for _ in range(8)]
        ids, given, family, year, zip5, address, email, phone = (list(c) for c in columns)
        return VoterColumns(ids, given, family, year, zip5, address, email, phone)

    def voter_geography(self, voter_ids: Collection[str]) -> dict[str, Geo]:
        if not voter_ids:
            return {}
        rows = self._rows(
            f"SELECT voter_id, precinct_id, county, region, state FROM {self._db}.voters FINAL "
            f"WHERE voter_id IN {{ids:Array(String)}}",
            {"ids": sorted(voter_ids)},
        )
        return {str(v): Geo(str(p), str(c), str(r), str(s)) for v, p, c, r, s in rows}

    # --- the model ---------------------------------------------------------------------------

    def load_model(self, load_id: str) -> tuple[str, str] | None:
        """(model_id, JSON) of the newest model trained against this voter-file load."""
        rows = self._rows(
            f"SELECT model_id, model FROM {self._db}.link_models FINAL WHERE load_id = {{load:String}} "
            f"ORDER BY trained_at DESC LIMIT 1",
            {"load": load_id},
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def save_model(self, load_id: str, people: int, model_json: str) -> str:
        model_id = hashlib.sha256(model_json.encode()).hexdigest()[:16]
        self._client.insert(
            self._local("link_models"), [[model_id, load_id, people, model_json]],
            column_names=["model_id", "load_id", "people", "model"],
        )  # fmt: skip
        return model_id

    def people_count(self) -> int:
        rows = self._rows(
            f"SELECT (SELECT count() FROM {self._db}.raw_signups) + "
            f"(SELECT uniqExact(email_hash) FROM {self._db}.raw_email WHERE email_hash != '')"
        )
        return int(rows[0][0])

    def training_people(self, limit: int) -> list[PersonRecord]:
        """The most recent people, signups and email addresses in proportion, to train the model on."""
        signups = self._rows(
            f"SELECT toString(s.event_id), i.given_name, i.family_name, s.email_hash, s.phone_hash, "
            f"i.address_line1, s.zip5, s.birth_year FROM {self._db}.raw_signups AS s "
            f"LEFT JOIN {self._db}.signup_identities AS i ON i.event_id = s.event_id "
            f"ORDER BY s.ingested_at DESC LIMIT {int(limit)}"
        )
        emails = self._rows(
            f"SELECT email_hash FROM {self._db}.raw_email WHERE email_hash != '' GROUP BY email_hash "
            f"ORDER BY max(ingested_at) DESC LIMIT {int(limit)}"
        )
        people = [_signup_person(*row) for row in signups]
        people += [PersonRecord(str(h), email_hash=str(h)) for (h,) in emails]
        if len(people) > limit:  # keep the two kinds in proportion
            step = len(people) / limit
            people = [people[int(i * step)] for i in range(limit)]
        return people

    # --- new events --------------------------------------------------------------------------

    def read_signups(self, positions: dict[int, Position], limit: int) -> list[PersonEvent]:
        """Up to `limit` signups after `positions`, in (partition, offset) order, with their identities."""
        return self._signups(f"{_after(positions)} ORDER BY kafka_partition, kafka_offset LIMIT {int(limit)}", None)

    def signup_events(self, event_ids: Collection[str]) -> list[PersonEvent]:
        if not event_ids:
            return []
        return self._signups("event_id IN {ids:Array(UUID)}", {"ids": sorted(event_ids)})

    def _signups(self, where: str, parameters: dict[str, Any] | None) -> list[PersonEvent]:
        """Raw signups joined with their identities in ClickHouse (only the batch's identities are read).
        Signups stored before identities were captured still have their hashes, zip and birth year."""
        batch = (
            f"SELECT kafka_partition, kafka_offset, ingested_at, event_id, occurred_at, action_type, precinct_id, "
            f"email_hash, phone_hash, zip5, birth_year FROM {self._db}.raw_signups WHERE {where}"
        )
        rows = self._rows(
            f"SELECT s.kafka_partition, s.kafka_offset, s.ingested_at, s.event_id, s.occurred_at, s.action_type, "
            f"s.precinct_id, s.email_hash, s.phone_hash, s.zip5, s.birth_year, i.given_name, i.family_name, "
            f"i.address_line1 FROM ({batch}) AS s LEFT JOIN (SELECT event_id, given_name, family_name, address_line1 "
            f"FROM {self._db}.signup_identities WHERE event_id IN (SELECT event_id FROM ({batch}))) AS i "
            f"ON i.event_id = s.event_id ORDER BY s.kafka_partition, s.kafka_offset",
            parameters,
        )
        out = []
        for (
            part,
            offset,
            ingested,
            event_id,
            occurred,
            action,
            precinct,
            email,
            phone,
            zip5,
            year,
            given,
            family,
            address,
        ) in rows:
            record_id = str(event_id)
            person = _signup_person(record_id, given, family, email, phone, address, zip5, year)
            out.append(PersonEvent(SIGNUP, record_id, event_id, str(action), "", None, _utc(occurred), str(precinct),
                                   int(part), int(offset), _utc(ingested), "", person))  # fmt: skip
        return out

    def read_emails(self, positions: dict[int, Position], limit: int) -> list[PersonEvent]:
        """Up to `limit` email events (with an address) after `positions`, in (partition, offset) order."""
        return self._emails(f"email_hash != '' AND ({_after(positions)})", None, limit)

    def email_events(self, email_hashes: Collection[str]) -> list[PersonEvent]:
        """Every event of these email people (when one's link changes, all of its events move)."""
        if not email_hashes:
            return []
        return self._emails("email_hash IN {hashes:Array(String)}", {"hashes": sorted(email_hashes)}, None)

    def _emails(self, where: str, parameters: dict[str, Any] | None, limit: int | None) -> list[PersonEvent]:
        rows = self._rows(
            f"SELECT kafka_partition, kafka_offset, ingested_at, event_id, occurred_at, kind, mailing_id, "
            f"amount_cents, precinct_id, email_hash, voter_id FROM {self._db}.raw_email WHERE {where} "
            f"ORDER BY kafka_partition, kafka_offset" + (f" LIMIT {int(limit)}" if limit is not None else ""),
            parameters,
        )
        return [
            PersonEvent(EMAIL, str(email), event_id, str(kind), str(mailing), amount, _utc(occurred), str(precinct),
                        int(part), int(offset), _utc(ingested), str(voter))
            for part, offset, ingested, event_id, occurred, kind, mailing, amount, precinct, email, voter in rows
        ]  # fmt: skip

    # --- links -------------------------------------------------------------------------------

    def current_links(self, kind: str, record_ids: Collection[str]) -> dict[str, Link]:
        if not record_ids:
            return {}
        rows = self._rows(
            f"SELECT {', '.join(LINK_FIELDS)} FROM {self._db}.links FINAL "
            f"WHERE record_kind = {{kind:String}} AND record_id IN {{ids:Array(String)}}",
            {"kind": kind, "ids": sorted(record_ids)},
        )
        return {str(row[1]): _link(row) for row in rows}

    def link_by_record(self, record_id: str) -> Link | None:
        rows = self._rows(
            f"SELECT {', '.join(LINK_FIELDS)} FROM {self._db}.links FINAL WHERE record_id = {{id:String}} LIMIT 1",
            {"id": record_id},
        )
        return _link(rows[0]) if rows else None

    def write_linked_events(self, rows: Sequence[LinkedEvent]) -> None:
        """Keyed by event and versioned: writing them again (a replay) changes nothing that FINAL reads."""
        if rows:
            self._client.insert(self._local("linked_events"), [r.row() for r in rows],
                                column_names=list(LINKED_EVENT_FIELDS))  # fmt: skip

    def write_links(self, links: Sequence[Link], history: Sequence[tuple[Link, Link | None]]) -> None:
        """History first, then the current rows. The history insert's token names the changes (not their
        times), so replaying a batch whose history landed but whose links did not adds no second entry."""
        if history:
            token = hashlib.sha256(
                "\n".join(
                    sorted(f"{new.record_kind}/{new.record_id}/{old.version if old else 0}/{new.status}/"
                           f"{new.voter_id}/{new.method}/{new.decided_by}" for new, old in history)
                ).encode()
            ).hexdigest()  # fmt: skip
            self._client.insert(
                self._local("link_history"),
                [[*new.row(), old.voter_id if old else "", old.status if old else ""] for new, old in history],
                column_names=[*LINK_FIELDS, "previous_voter_id", "previous_status"],
                settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": f"link-history/{token}"},
            )
        if links:
            self._client.insert(self._local("links"), [link.row() for link in links], column_names=list(LINK_FIELDS))

    # --- checkpoints -------------------------------------------------------------------------

    def load_positions(self, group: str, generation: str) -> dict[str, Position]:
        rows = self._rows(
            f"SELECT argMax(positions, saved_at) FROM {self._local('link_state')} "
            f"WHERE consumer_group = {{group:String}} AND generation = {{generation:String}} HAVING count() > 0",
            {"group": group, "generation": generation},
        )
        if not rows:
            return {}
        saved: dict[str, int] = dict(rows[0][0])
        return {
            key: Position(int(offset), datetime.fromtimestamp(saved.get(f"{key}@t", 0) / 1000, UTC))
            for key, offset in saved.items()
            if not key.endswith("@t")
        }

    def save_positions(self, group: str, generation: str, positions: dict[str, Position]) -> None:
        saved = {key: pos.offset for key, pos in positions.items()}
        saved.update({f"{key}@t": int(pos.ingested_at.timestamp() * 1000) for key, pos in positions.items()})
        self._client.insert(
            self._local("link_state"), [[group, generation, saved, datetime.now(UTC)]],
            column_names=["consumer_group", "generation", "positions", "saved_at"],
        )  # fmt: skip

    # --- reviews -----------------------------------------------------------------------------

    def add_review(self, review: Review) -> None:
        self._client.insert(
            self._local("link_reviews"),
            [[review.review_id, review.record_kind, review.record_id, review.voter_id, review.decision,
              review.reviewer, review.decided_at]],
            column_names=["review_id", "record_kind", "record_id", "voter_id", "decision", "reviewer", "decided_at"],
            settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": f"link-review/{review.review_id}"},
        )  # fmt: skip

    def reviews_since(self, recorded_at: datetime) -> list[Review]:
        rows = self._rows(
            f"SELECT review_id, record_kind, record_id, voter_id, decision, reviewer, decided_at, recorded_at "
            f"FROM {self._db}.link_reviews WHERE recorded_at >= {{since:DateTime64(3, 'UTC')}} "
            f"ORDER BY recorded_at, decided_at, review_id",
            {"since": recorded_at if recorded_at > EPOCH else EPOCH},
        )
        return [Review(str(i), str(k), str(r), str(v), str(d), str(by), _utc(at), _utc(rec))
                for i, k, r, v, d, by, at, rec in rows]  # fmt: skip

    def review_queue(self, limit: int) -> list[tuple[Link, dict[str, Any]]]:
        """Ambiguous links without a decision recorded since, oldest first, with the person's fields
        (signups: name, address, zip, birth year; email people: none but the address's hash)."""
        rows = self._rows(
            f"SELECT {', '.join('l.' + f for f in LINK_FIELDS)}, i.given_name, i.family_name, i.address_line1, "
            f"i.zip5, i.birth_year FROM (SELECT * FROM {self._db}.links FINAL WHERE status = 'ambiguous') AS l "
            f"LEFT JOIN {self._db}.signup_identities AS i ON l.record_kind = 'signup' AND i.event_id = "
            f"toUUIDOrZero(l.record_id) "
            f"LEFT JOIN (SELECT record_kind, record_id, max(recorded_at) AS last_review FROM {self._db}.link_reviews "
            f"GROUP BY record_kind, record_id) AS r ON r.record_kind = l.record_kind AND r.record_id = l.record_id "
            f"WHERE r.last_review < l.linked_at "  # a decision not yet applied by the agent: not shown again
            f"ORDER BY l.linked_at, l.record_id LIMIT {int(limit)}"
        )
        out = []
        n = len(LINK_FIELDS)
        for row in rows:
            given, family, address, zip5, year = row[n:]
            person = {"given_name": given, "family_name": family, "address_line1": address, "zip5": zip5,
                      "birth_year": year} if row[0] == SIGNUP else {}  # fmt: skip
            out.append((_link(row[:n]), person))
        return out

    def voters(self, voter_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """What a reviewer sees of candidate voters (PII: reviewers are statisticians, admins, or regional
        staff for their regions' voters)."""
        if not voter_ids:
            return {}
        fields = ("voter_id", "given_name", "family_name", "birth_year", "address_line1", "zip5", "precinct_id",
                  "county", "region", "state")  # fmt: skip
        rows = self._rows(
            f"SELECT {', '.join(fields)} FROM {self._db}.voters FINAL WHERE voter_id IN {{ids:Array(String)}}",
            {"ids": sorted(voter_ids)},
        )
        return {str(row[0]): dict(zip(fields, row, strict=True)) for row in rows}


def _signup_person(
    record_id: str, given: str | None, family: str | None, email: str | None, phone: str | None,
    address: str | None, zip5: str | None, year: int | None,
) -> PersonRecord:  # fmt: skip
    return PersonRecord(str(record_id), given or None, family or None, email or None, phone or None, address or None,
                        zip5 or None, int(year) if year is not None else None)  # fmt: skip


def _link(row: Sequence[Any]) -> Link:
    kind, record, voter, status, method, probability, weight, candidates, by, reviewer, generation, version, at = row
    return Link(
        str(kind), str(record), str(voter), str(status), str(method), float(probability),
        None if weight is None else float(weight),
        tuple(_candidate(c) for c in candidates),
        str(by), str(reviewer), str(generation), int(version), _utc(at),
    )  # fmt: skip


def _candidate(c: Any) -> tuple[str, float, float]:
    """Named tuples arrive as dicts from some drivers and as tuples from others."""
    if isinstance(c, dict):
        return str(c["voter_id"]), float(c["probability"]), float(c["match_weight"])
    return str(c[0]), float(c[1]), float(c[2])


def record_ids(events: Iterable[PersonEvent]) -> list[str]:
    """The distinct person records of some events, in order of first appearance."""
    return list(dict.fromkeys(e.record_id for e in events))
