"""What the linking agent and the review API read and write in ClickHouse (issue #5).

Reads: the voter file for the matcher's index (with each voter's place), new signups (with their
identities) and email events after the agent's position, in (partition, offset) order, as
sinks/clickhouse/scoring.py reads canvass events, each with its record's current link joined in the
same query; reviews, the stored model and checkpoint. Writes: links and their history, linked
events, reviewer decisions, the model (JSON) and the checkpoint.

The agent's batches stay columnar (Arrow) from the read to the insert: a 20,000-event batch as
Python rows cost more than linking it (docs/linking.md, "Wiring").

Blocking; one thread per client. Names and addresses pass through here but are never logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from models.linking import PersonRecord, VoterColumns
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.scoring import EPOCH, Position
from sinks.clickhouse.writer import EXACTLY_ONCE_SETTINGS

SIGNUP = "signup"
EMAIL = "email"
RECORD_KINDS = (SIGNUP, EMAIL)
LINKED_EVENT_FIELDS = ("event_id", "source", "record_id", "voter_id", "kind", "mailing_id", "amount_cents",
                       "occurred_at", "state", "region", "county", "precinct_id", "raw_precinct_id", "linked",
                       "version")  # fmt: skip


class Link(NamedTuple):
    """A `links` row: the current decision about one person record. A NamedTuple in LINK_FIELDS
    order: one is built per decided record, and a batch of them transposes into columns in C."""

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

    def same_decision(self, other: Link | PriorLink) -> bool:
        return (self.status, self.voter_id, self.method, self.decided_by) == (
            other.status, other.voter_id, other.method, other.decided_by,
        )  # fmt: skip


LINK_FIELDS = Link._fields


class PriorLink(NamedTuple):
    """What the agent needs of a record's link before a batch: the decision, who made it, and under
    which generation and version (a NamedTuple: one is built per record of every batch)."""

    voter_id: str
    status: str
    method: str
    decided_by: str
    generation: str
    version: int

    @property
    def matched(self) -> bool:
        return self.status == "matched"


PRIOR_FIELDS = PriorLink._fields


# A batch's columns: the event, where the raw aggregates count it, its Kafka position, the email
# sender's voter_id, and (signups) the identity to match; then its record's current link, if any.
EVENT_FIELDS = ("source", "record_id", "event_id", "kind", "mailing_id", "amount_cents", "occurred_at",
                "raw_precinct_id", "kafka_partition", "kafka_offset", "ingested_at", "supplied_voter_id")  # fmt: skip
PERSON_FIELDS = ("given_name", "family_name", "email_hash", "phone_hash", "address_line1", "zip5", "birth_year")
CURRENT_PREFIX = "link_"  # the joined link's columns; link_version = 0: the record has no link yet
PLACE_FIELDS = ("state", "region", "county", "precinct_id")
CANDIDATE_TYPE = pa.list_(
    pa.struct([("voter_id", pa.string()), ("probability", pa.float64()), ("match_weight", pa.float64())])
)
LINK_SCHEMA = pa.schema([
    ("record_kind", pa.string()), ("record_id", pa.string()), ("voter_id", pa.string()), ("status", pa.string()),
    ("method", pa.string()), ("probability", pa.float64()), ("match_weight", pa.float64()),
    ("candidates", CANDIDATE_TYPE), ("decided_by", pa.string()), ("reviewer", pa.string()),
    ("generation", pa.string()), ("version", pa.uint64()), ("linked_at", pa.timestamp("ms", tz="UTC")),
])  # fmt: skip


@dataclass(frozen=True)
class EventBatch:
    """Signup or email events column by column (EVENT_FIELDS, signups also PERSON_FIELDS), in
    (partition, offset) order, each with its record's current link (PRIOR_FIELDS prefixed `link_`)."""

    source: str  # signup | email
    table: pa.Table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def column(self, name: str) -> list[Any]:
        return list(self.table.column(name).to_pylist())

    def record_ids(self) -> list[str]:
        """The distinct person records, in order of first appearance."""
        return list(dict.fromkeys(self.column("record_id")))

    def prior_links(self) -> dict[str, PriorLink]:
        """Each record's link before this batch (records without one are absent)."""
        versions = self.table.column(CURRENT_PREFIX + "version").to_numpy()
        rows = np.flatnonzero(versions > 0)
        if not len(rows):
            return {}
        # An email person's events repeat its link: one PriorLink per record, from its first event.
        first = dict(zip(self.table.column("record_id").take(rows).to_pylist(), rows.tolist(), strict=True))
        have = self.table.take(sorted(set(first.values())))
        columns = [have.column(CURRENT_PREFIX + f).to_pylist() for f in PRIOR_FIELDS]
        return dict(zip(have.column("record_id").to_pylist(), map(PriorLink._make, zip(*columns, strict=True)),
                        strict=True))  # fmt: skip

    def supplied(self) -> dict[str, str]:
        """Record → the latest voter_id a sender supplied for it (records with none are absent)."""
        out: dict[str, str] = {}
        supplied = self.table.column("supplied_voter_id")
        rows = np.flatnonzero(pc.not_equal(supplied, "").to_numpy(zero_copy_only=False))
        if len(rows):
            for record, voter in zip(self.table.column("record_id").take(rows).to_pylist(),
                                     supplied.take(rows).to_pylist(), strict=True):  # fmt: skip
                out[record] = voter
        return out

    def people(self, wanted: Collection[str]) -> dict[str, PersonRecord]:
        """The identities to match for these records: a signup's fields; an email person's address hash."""
        if self.source == EMAIL:
            return {r: PersonRecord(r, email_hash=r) for r in wanted}
        rows = np.flatnonzero(pc.is_in(self.table.column("record_id"), pa.array(list(wanted), pa.string())))
        part = self.table.take(rows)
        columns = [part.column("record_id").to_pylist()]
        for name in PERSON_FIELDS:  # blanks become None in Arrow, so each record is built in one call
            column = part.column(name)
            if pa.types.is_string(column.type):
                column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
            columns.append(column.to_pylist())
        return {values[0]: PersonRecord(*values) for values in zip(*columns, strict=True)}

    def last_positions(self) -> dict[int, Position]:
        """Each partition's last event (the batch is in (partition, offset) order): its new position."""
        if not len(self):
            return {}
        partitions = self.table.column("kafka_partition").to_numpy()
        reverse_first = np.unique(partitions[::-1], return_index=True)[1]
        rows = len(partitions) - 1 - reverse_first
        last = self.table.select(["kafka_partition", "kafka_offset", "ingested_at"]).take(rows).to_pylist()
        return {int(r["kafka_partition"]): Position(int(r["kafka_offset"]), _utc(r["ingested_at"])) for r in last}


@dataclass(frozen=True)
class VoterPlaces:
    """Each voter's place (state, region, county, precinct), for the voter file as read once per load:
    voter ids sorted beside their rows, so a batch's lookup is a `searchsorted`, not a dict of 1M."""

    sorted_ids: npt.NDArray[np.bytes_]
    rows_by_id: npt.NDArray[np.int64]
    place_of_row: npt.NDArray[np.int32]
    places: pa.Table  # PLACE_FIELDS; its last row is blank (for events not, or no longer, linked)

    @classmethod
    def build(cls, voter_ids: pa.Array, places: pa.Table) -> VoterPlaces:
        ids = np.array([v.encode() for v in voter_ids.to_pylist()], dtype=np.bytes_)
        order = np.argsort(ids, kind="stable")
        key = pc.binary_join_element_wise(*(places.column(f) for f in PLACE_FIELDS), "\x1f")
        encoded = pc.dictionary_encode(key).combine_chunks()
        distinct = pc.split_pattern(encoded.dictionary, "\x1f")
        columns = {f: [*pc.list_element(distinct, i).to_pylist(), ""] for i, f in enumerate(PLACE_FIELDS)}
        return cls(ids[order], order.astype(np.int64), encoded.indices.to_numpy().astype(np.int32), pa.table(columns))

    @property
    def blank(self) -> int:
        return int(self.places.num_rows) - 1

    def rows(self, voter_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """The voter-file row of each id, -1 where it is not on the file (or blank)."""
        out = np.full(len(voter_ids), -1, dtype=np.int64)
        if not len(voter_ids) or not len(self.sorted_ids):
            return out
        wanted = np.array([v.encode() for v in voter_ids], dtype=np.bytes_)
        at = np.minimum(np.searchsorted(self.sorted_ids, wanted), len(self.sorted_ids) - 1)
        found = (self.sorted_ids[at] == wanted) & (wanted != b"")
        out[found] = self.rows_by_id[at[found]]
        return out


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

    def voter_file(self) -> tuple[VoterColumns, VoterPlaces]:
        """The voter file for the index and each voter's place, row for row (one read, so they align)."""
        table = self._client.query_arrow(
            f"SELECT voter_id, given_name, family_name, birth_year, zip5, address_line1, email_hash, phone_hash, "
            f"state, region, county, precinct_id FROM {self._db}.voters FINAL"
        )
        names = ("voter_id", "given_name", "family_name", "birth_year", "zip5", "address_line1", "email_hash",
                 "phone_hash")  # fmt: skip
        voters = VoterColumns(*(table.column(n).to_pylist() for n in names))
        return voters, VoterPlaces.build(table.column("voter_id"), table.select(list(PLACE_FIELDS)))

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

    def read_signups(self, positions: dict[int, Position], limit: int) -> EventBatch:
        """Up to `limit` signups after `positions`, in (partition, offset) order, with their identities."""
        return self._signups(f"{_after(positions)} ORDER BY kafka_partition, kafka_offset LIMIT {int(limit)}", None)

    def signup_events(self, event_ids: Collection[str]) -> EventBatch:
        return self._signups("event_id IN {ids:Array(UUID)}", {"ids": sorted(event_ids)})

    def _signups(self, where: str, parameters: dict[str, Any] | None) -> EventBatch:
        """Raw signups joined with their identities and current links, in one query (only the batch's
        identities and links are read). Signups stored before identities were captured still have
        their hashes, zip and birth year."""
        batch = (
            f"SELECT kafka_partition, kafka_offset, ingested_at, event_id, toString(event_id) AS record_id, "
            f"occurred_at, action_type, precinct_id, email_hash, phone_hash, zip5, birth_year "
            f"FROM {self._db}.raw_signups WHERE {where}"
        )
        identities = (
            f"SELECT event_id, given_name, family_name, address_line1 FROM {self._db}.signup_identities "
            f"WHERE event_id IN (SELECT event_id FROM ({batch}))"
        )
        return self._batch(
            SIGNUP,
            f"SELECT 'signup' AS source, s.record_id AS record_id, s.event_id AS event_id, s.action_type AS kind, "
            f"'' AS mailing_id, CAST(NULL, 'Nullable(UInt64)') AS amount_cents, s.occurred_at AS occurred_at, "
            f"s.precinct_id AS raw_precinct_id, s.kafka_partition AS kafka_partition, s.kafka_offset AS kafka_offset, "
            f"s.ingested_at AS ingested_at, '' AS supplied_voter_id, i.given_name AS given_name, "
            f"i.family_name AS family_name, s.email_hash AS email_hash, s.phone_hash AS phone_hash, "
            f"i.address_line1 AS address_line1, s.zip5 AS zip5, s.birth_year AS birth_year, {_CURRENT} "
            f"FROM ({batch}) AS s LEFT JOIN ({identities}) AS i ON i.event_id = s.event_id "
            f"LEFT JOIN ({self._links_of(SIGNUP, batch)}) AS l ON l.record_id = s.record_id "
            f"ORDER BY kafka_partition, kafka_offset",
            parameters,
        )

    def read_emails(self, positions: dict[int, Position], limit: int) -> EventBatch:
        """Up to `limit` email events (with an address) after `positions`, in (partition, offset) order."""
        return self._emails(
            f"email_hash != '' AND ({_after(positions)}) ORDER BY kafka_partition, kafka_offset LIMIT {int(limit)}",
            None,
        )

    def email_events(self, email_hashes: Collection[str]) -> EventBatch:
        """Every event of these email people (when one's link changes, all of its events move)."""
        return self._emails("email_hash IN {hashes:Array(String)}", {"hashes": sorted(email_hashes)})

    def _emails(self, where: str, parameters: dict[str, Any] | None) -> EventBatch:
        batch = (
            f"SELECT kafka_partition, kafka_offset, ingested_at, event_id, email_hash AS record_id, occurred_at, "
            f"kind, mailing_id, amount_cents, precinct_id, voter_id FROM {self._db}.raw_email WHERE {where}"
        )
        return self._batch(
            EMAIL,
            f"SELECT 'email' AS source, s.record_id AS record_id, s.event_id AS event_id, s.kind AS kind, "
            f"s.mailing_id AS mailing_id, s.amount_cents AS amount_cents, s.occurred_at AS occurred_at, "
            f"s.precinct_id AS raw_precinct_id, s.kafka_partition AS kafka_partition, s.kafka_offset AS kafka_offset, "
            f"s.ingested_at AS ingested_at, s.voter_id AS supplied_voter_id, {_CURRENT} "
            f"FROM ({batch}) AS s LEFT JOIN ({self._links_of(EMAIL, batch)}) AS l ON l.record_id = s.record_id "
            f"ORDER BY kafka_partition, kafka_offset",
            parameters,
        )

    def _links_of(self, kind: str, batch: str) -> str:
        return (
            f"SELECT {', '.join(LINK_FIELDS[1:])} FROM {self._db}.links FINAL WHERE record_kind = '{kind}' "
            f"AND record_id IN (SELECT record_id FROM ({batch}))"
        )

    def _batch(self, source: str, sql: str, parameters: dict[str, Any] | None) -> EventBatch:
        # The left join fills a record without a link with defaults: link_version = 0 says so.
        return EventBatch(source, self._client.query_arrow(sql, parameters=parameters, settings={"join_use_nulls": 0}))

    # --- links -------------------------------------------------------------------------------

    def candidates_shown(
        self, kind: str, record_ids: Collection[str]
    ) -> dict[str, tuple[tuple[str, float, float], ...]]:
        """The candidates stored with these records' current links (a reviewer's accept keeps showing them)."""
        rows = self._rows(
            f"SELECT record_id, candidates FROM {self._db}.links FINAL "
            f"WHERE record_kind = {{kind:String}} AND record_id IN {{ids:Array(String)}}",
            {"kind": kind, "ids": sorted(record_ids)},
        )
        return {str(r): tuple(_candidate(c) for c in candidates) for r, candidates in rows}

    def ambiguous_count(self) -> int:
        """Links awaiting review (the agent reads it once, then follows the changes it makes)."""
        rows = self._rows(f"SELECT count() FROM {self._db}.links FINAL WHERE status = 'ambiguous'")
        return int(rows[0][0])

    def link_by_record(self, record_id: str) -> Link | None:
        rows = self._rows(
            f"SELECT {', '.join(LINK_FIELDS)} FROM {self._db}.links FINAL WHERE record_id = {{id:String}} LIMIT 1",
            {"id": record_id},
        )
        return _link(rows[0]) if rows else None

    def write_linked_events(self, rows: pa.Table) -> None:
        """Keyed by event and versioned: writing them again (a replay) changes nothing that FINAL reads."""
        if rows.num_rows:
            self._client.insert_arrow(self._local("linked_events"), rows.select(list(LINKED_EVENT_FIELDS)))

    def write_links(self, links: Sequence[Link], history: Sequence[tuple[Link, PriorLink | None]]) -> None:
        """History first, then the current rows. The history insert's token names the changes (not their
        times), so replaying a batch whose history landed but whose links did not adds no second entry.
        A history entry's new link is usually one of `links`: its row is taken from theirs, not rebuilt."""
        current = links_table(links)
        if history:
            token = hashlib.sha256(
                "\n".join(
                    sorted(f"{new.record_kind}/{new.record_id}/{old.version if old else 0}/{new.status}/"
                           f"{new.voter_id}/{new.method}/{new.decided_by}" for new, old in history)
                ).encode()
            ).hexdigest()  # fmt: skip
            row_of = {id(link): i for i, link in enumerate(links)}
            rows = [row_of.get(id(new)) for new, _ in history]
            if all(row is not None for row in rows):
                table = current.take(pa.array(rows, pa.int64()))
            else:
                table = links_table([new for new, _ in history])
            previous = [(old.voter_id, old.status) if old else ("", "") for _, old in history]
            table = table.append_column("previous_voter_id", pa.array([v for v, _ in previous], pa.string()))
            table = table.append_column("previous_status", pa.array([s for _, s in previous], pa.string()))
            self._client.insert_arrow(
                self._local("link_history"), table,
                settings={**EXACTLY_ONCE_SETTINGS, "insert_deduplication_token": f"link-history/{token}"},
            )  # fmt: skip
        if links:
            self._client.insert_arrow(self._local("links"), current)

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


def links_table(links: Sequence[Link]) -> pa.Table:
    """Links as an Arrow table (LINK_SCHEMA): rows transposed in C, then one conversion per column."""
    columns = list(zip(*links, strict=True)) or [() for _ in LINK_FIELDS]
    return pa.table([pa.array(c, f.type) for c, f in zip(columns, LINK_SCHEMA, strict=True)], schema=LINK_SCHEMA)


_CURRENT = ", ".join(f"l.{f} AS {CURRENT_PREFIX}{f}" for f in PRIOR_FIELDS)


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
