"""Validation and enrichment: Kafka records of one topic-partition → raw-table rows and rejections.

Pure and synchronous (no Kafka, no ClickHouse): the ingest loop hands it records, and what it
returns depends only on the records, the settings, the event_id window and the clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from config.geography import UNASSIGNED, Geography, PrecinctInfo
from config.settings import CANVASS_TOPIC, EMAIL_TOPIC, SIGNUP_TOPIC, Settings
from streams.dedup import EventIdWindow
from streams.events import SUPPORTED_SCHEMA_VERSIONS, CanvassKnock, DigitalSignup, EmailEvent
from streams.pii import PiiHasher
from streams.rejections import Reason, Rejected, classify_decode_failure, event_id_of
from streams.rows import CanvassRow, EmailRow, RejectedRow, SignupRow

log = logging.getLogger(__name__)


class KafkaRecord(Protocol):
    """What processing reads of a consumed message (the methods of confluent-kafka's Message)."""

    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...  # (timestamp type, epoch milliseconds)
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...


VoterPrecinctLookup = Callable[[str], str | None]


def no_voter_lookup(voter_id: str) -> str | None:
    """Until a voter file is loaded (issue #3), a voter_id alone does not place an event."""
    return None


@dataclass(slots=True)
class ProcessedBatch:
    rows: list[msgspec.Struct] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    oldest_timestamp_ms: int | None = None


class EventProcessor:
    """Validates one topic's events; one instance per topic, shared by its partitions."""

    def __init__(
        self,
        topic: str,
        settings: Settings,
        geography: Geography,
        voter_precinct: VoterPrecinctLookup = no_voter_lookup,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic = topic
        self._geography = geography
        self._precincts = geography.precincts
        self._voter_precinct = voter_precinct
        self._hasher = PiiHasher(settings.hashing_secret)
        self._clock = clock
        self._max_bytes = settings.ingest.max_event_bytes
        self._future_tolerance = float(settings.ingest.future_tolerance_s)
        start = settings.campaign_start
        self._not_before = (
            datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() if start else float("-inf")
        )
        self._unassigned = geography.unassigned()
        transforms: dict[str, tuple[type[Any], Callable[[Any, int, int, float, float], msgspec.Struct]]] = {
            CANVASS_TOPIC: (CanvassKnock, self._canvass_row),
            SIGNUP_TOPIC: (DigitalSignup, self._signup_row),
            EMAIL_TOPIC: (EmailEvent, self._email_row),
        }
        if topic not in transforms:
            raise ValueError(f"no event schema for topic {topic!r}")
        schema, self._to_row = transforms[topic]
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(schema)

    def process(self, partition: int, records: Sequence[KafkaRecord], seen: EventIdWindow) -> ProcessedBatch:
        """Validate one partition's records, in offset order."""
        batch = ProcessedBatch()
        if not records:
            return batch
        latest_allowed = self._clock() + self._future_tolerance
        decode = self._decoder.decode
        to_row = self._to_row
        rows_append = batch.rows.append
        oldest_ms: int | None = None
        for record in records:
            raw = record.value() or b""
            timestamp_ms = record.timestamp()[1]
            offset = record.offset() or 0
            if oldest_ms is None or timestamp_ms < oldest_ms:
                oldest_ms = timestamp_ms
            try:
                if len(raw) > self._max_bytes:
                    raise Rejected(Reason.OVERSIZE, f"{len(raw)} bytes exceeds the limit of {self._max_bytes}")
                try:
                    event = decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
                    raise classify_decode_failure(raw, exc) from None
                occurred = event.occurred_at.timestamp()
                self._check_envelope(event, occurred, latest_allowed)
                key = event.event_id.int
                if key in seen:
                    raise Rejected(Reason.DUPLICATE_EVENT_ID, f"event_id {event.event_id} was already counted")
                row = to_row(event, partition, offset, timestamp_ms / 1000.0, occurred)
                seen.add(key)
                rows_append(row)
            except Rejected as rejection:
                batch.rejected.append(self._rejected_row(partition, offset, timestamp_ms, record, raw, rejection))
            except Exception as exc:  # never let one event stop the partition
                log.exception("unexpected error processing %s[%d]@%d", self.topic, partition, offset)
                failure = Rejected(Reason.PROCESSING_ERROR, f"{type(exc).__name__} while processing")
                batch.rejected.append(self._rejected_row(partition, offset, timestamp_ms, record, raw, failure))
        batch.oldest_timestamp_ms = oldest_ms
        return batch

    def _check_envelope(self, event: Any, occurred: float, latest_allowed: float) -> None:
        if event.event_type != self.topic:
            raise Rejected(Reason.EVENT_TYPE_MISMATCH, f"event_type {event.event_type!r} sent to topic {self.topic!r}")
        if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
            raise Rejected(
                Reason.UNKNOWN_SCHEMA_VERSION,
                f"schema_version {event.schema_version} is not supported "
                f"(supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)})",
            )
        if occurred > latest_allowed:
            raise Rejected(
                Reason.FUTURE_TIMESTAMP,
                f"occurred_at {event.occurred_at.isoformat()} is more than "
                f"{int(self._future_tolerance)} s in the future",
            )
        if occurred < self._not_before:
            raise Rejected(
                Reason.BEFORE_CAMPAIGN, f"occurred_at {event.occurred_at.isoformat()} is before the campaign start"
            )

    def _known_precinct(self, precinct_id: str) -> PrecinctInfo:
        info = self._precincts.get(precinct_id)
        if info is None:
            raise Rejected(Reason.UNKNOWN_PRECINCT, f"precinct_id {precinct_id!r} is not in the geography")
        return info

    def _canvass_row(
        self, ev: CanvassKnock, partition: int, offset: int, received: float, occurred: float
    ) -> CanvassRow:
        if ev.support_level is not None and ev.result != "canvassed":
            raise Rejected(
                Reason.SUPPORT_WITHOUT_CONTACT,
                f"support_level {ev.support_level} given with result {ev.result!r}; only 'canvassed' carries one",
            )
        geo = self._known_precinct(ev.precinct_id)
        gps = ev.gps
        return CanvassRow(
            ev.event_id, occurred, received, ev.source_system, ev.source_record_id or "",
            ev.voter_id or "", ev.household_id or "", geo.precinct_id, geo.county, geo.region, geo.state,
            ev.canvasser_id or "", ev.team_id or "", ev.turf_id or "", ev.list_id or "",
            ev.contact_type, ev.result, ev.support_level,
            ev.responses or [],
            gps.lat if gps else None, gps.lon if gps else None, gps.accuracy_m if gps else None,
            partition, offset,
        )  # fmt: skip

    def _signup_row(
        self, ev: DigitalSignup, partition: int, offset: int, received: float, occurred: float
    ) -> SignupRow:
        person = ev.person
        if not person.email and not person.phone:
            raise Rejected(Reason.NO_CONTACT_POINT, "person.email or person.phone is required")
        if ev.precinct_id is not None:
            geo, how = self._known_precinct(ev.precinct_id), "given"
        elif person.zip5:
            geo = self._geography.resolve_zip(person.zip5)
            how = "zip" if geo.precinct_id != UNASSIGNED else "unassigned"
        else:
            geo, how = self._unassigned, "unassigned"
        src = ev.source
        return SignupRow(
            ev.event_id, occurred, received, ev.source_system, ev.source_record_id or "",
            ev.action_type, self._hasher.email(person.email), self._hasher.phone(person.phone),
            person.zip5 or "", person.birth_year,
            (src.utm_source or "") if src else "", (src.utm_medium or "") if src else "",
            (src.utm_campaign or "") if src else "", (src.referrer_code or "") if src else "",
            (src.refcode or "") if src else "",
            ev.sms_opt_in, ev.rsvp_status or "", ev.attended,
            geo.precinct_id, geo.county, geo.region, geo.state, how,
            partition, offset,
        )  # fmt: skip

    def _email_row(self, ev: EmailEvent, partition: int, offset: int, received: float, occurred: float) -> EmailRow:
        if ev.amount_cents is not None and ev.kind != "donation":
            raise Rejected(Reason.AMOUNT_WITHOUT_DONATION, f"amount_cents given with kind {ev.kind!r}")
        if ev.precinct_id is not None:
            geo, how = self._known_precinct(ev.precinct_id), "given"
        else:
            voter_precinct = self._voter_precinct(ev.voter_id) if ev.voter_id else None
            if voter_precinct is not None and voter_precinct in self._precincts:
                geo, how = self._precincts[voter_precinct], "voter"
            else:
                geo, how = self._unassigned, "unassigned"
        return EmailRow(
            ev.event_id, occurred, received, ev.source_system, ev.source_record_id or "",
            ev.kind, ev.mailing_id, ev.variant_id or "", self._hasher.email(ev.email), ev.voter_id or "",
            ev.link_id or "", ev.amount_cents, ev.refcode or "",
            geo.precinct_id, geo.county, geo.region, geo.state, how,
            partition, offset,
        )  # fmt: skip

    def _rejected_row(
        self, partition: int, offset: int, timestamp_ms: int, record: KafkaRecord, raw: bytes, rejection: Rejected
    ) -> RejectedRow:
        return RejectedRow(
            self.topic, partition, offset, record.key() or b"", timestamp_ms / 1000.0,
            rejection.reason.value, rejection.text[:1000],
            event_id_of(raw) if rejection.reason is not Reason.OVERSIZE else "", raw,
        )  # fmt: skip
