"""Rows written to the raw ClickHouse tables, one struct per table, encoded as JSONEachRow.

Field order and names match sinks/clickhouse/schema.py; times are float epoch seconds.
"""

from __future__ import annotations

import uuid

import msgspec

from streams.events import Response


class Located(msgspec.Struct):
    precinct_id: str
    county: str
    region: str
    state: str


class CanvassRow(msgspec.Struct, frozen=True, gc=False):
    event_id: uuid.UUID  # msgspec encodes it in C; str() per event cost ~5% of ingest CPU
    occurred_at: float
    received_at: float
    source_system: str
    source_record_id: str
    voter_id: str
    household_id: str
    precinct_id: str
    county: str
    region: str
    state: str
    canvasser_id: str
    team_id: str
    turf_id: str
    list_id: str
    contact_type: str
    result: str
    support_level: int | None
    responses: list[Response]  # objects: ClickHouse reads named tuples from JSON objects
    gps_lat: float | None
    gps_lon: float | None
    gps_accuracy_m: float | None
    kafka_partition: int
    kafka_offset: int


class SignupRow(msgspec.Struct, frozen=True, gc=False):
    event_id: uuid.UUID
    occurred_at: float
    received_at: float
    source_system: str
    source_record_id: str
    action_type: str
    email_hash: str
    phone_hash: str
    zip5: str
    birth_year: int | None
    utm_source: str
    utm_medium: str
    utm_campaign: str
    referrer_code: str
    refcode: str
    sms_opt_in: bool | None
    rsvp_status: str
    attended: bool | None
    precinct_id: str
    county: str
    region: str
    state: str
    geo_resolution: str
    kafka_partition: int
    kafka_offset: int


class EmailRow(msgspec.Struct, frozen=True, gc=False):
    event_id: uuid.UUID
    occurred_at: float
    received_at: float
    source_system: str
    source_record_id: str
    kind: str
    mailing_id: str
    variant_id: str
    email_hash: str
    voter_id: str
    link_id: str
    amount_cents: int | None
    refcode: str
    precinct_id: str
    county: str
    region: str
    state: str
    geo_resolution: str
    kafka_partition: int
    kafka_offset: int


class RejectedRow(msgspec.Struct, frozen=True, gc=False):
    source_topic: str
    kafka_partition: int
    kafka_offset: int
    kafka_key: bytes
    received_at: float
    reason_code: str
    reason_text: str
    event_id: str
    raw: bytes


class SignupIdentityRow(msgspec.Struct, frozen=True, gc=False):
    """A signup's identifying fields for linking (issue #5): the restricted `signup_identities` table.

    Names and addresses are PII: they are kept here, apart from the analytics tables, as typed
    (trimmed); emails and phones only as the same HMAC digests as raw_signups.
    """

    event_id: uuid.UUID
    given_name: str
    family_name: str
    address_line1: str
    zip5: str
    birth_year: int | None
    email_hash: str
    phone_hash: str
    kafka_partition: int
    kafka_offset: int
