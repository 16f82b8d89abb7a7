"""The v1 event schemas of CONTRACT.md, as msgspec structs.

msgspec decodes and type-checks in one C pass (measured in bench/validation.py against
pydantic and orjson + hand checks). Unknown fields are ignored so producers may add
fields without breaking v1; everything CONTRACT.md names is typed strictly (no coercion).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ShortText = Annotated[str, msgspec.Meta(max_length=512)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

ContactType = Literal["walk", "phone", "sms"]
CanvassResult = Literal[
    "canvassed",
    "not_home",
    "refused",
    "moved",
    "deceased",
    "inaccessible",
    "language_barrier",
    "wrong_number",
    "disconnected",
    "come_back_later",
    "do_not_contact",
]
ActionType = Literal[
    "form_submission",
    "petition_signature",
    "event_rsvp",
    "donation_form",
    "relational_contact",
    "list_signup",
]
EmailKind = Literal[
    "send",
    "bounce_hard",
    "bounce_soft",
    "open",
    "machine_open",
    "click",
    "action",
    "donation",
    "unsubscribe",
    "spam_complaint",
]
SupportLevel = Annotated[int, msgspec.Meta(ge=1, le=5)]

SUPPORTED_SCHEMA_VERSIONS = frozenset({1})


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """Read first on the slow path, to name the problem with a rejected event."""

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    source_system: Id
    source_record_id: ShortText | None = None


class Response(msgspec.Struct, frozen=True, gc=False):
    question: Id
    answer: ShortText


class Gps(msgspec.Struct, frozen=True, gc=False):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, msgspec.Meta(ge=0)] | None = None


class CanvassKnock(msgspec.Struct, frozen=True, gc=False):
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    source_system: Id
    precinct_id: Id
    contact_type: ContactType
    result: CanvassResult
    source_record_id: ShortText | None = None
    voter_id: Id | None = None
    household_id: Id | None = None
    canvasser_id: Id | None = None
    team_id: Id | None = None
    turf_id: Id | None = None
    list_id: Id | None = None
    support_level: SupportLevel | None = None
    responses: Annotated[list[Response], msgspec.Meta(max_length=64)] | None = None
    gps: Gps | None = None
    notes: str | None = None  # free text may hold PII: validated, never stored


class Person(msgspec.Struct, frozen=True, gc=False):
    given_name: ShortText | None = None
    family_name: ShortText | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    address_line1: ShortText | None = None
    zip5: Annotated[str, msgspec.Meta(pattern=r"^\d{5}$")] | None = None
    birth_year: Annotated[int, msgspec.Meta(ge=1900, le=2030)] | None = None


class SignupSource(msgspec.Struct, frozen=True, gc=False):
    utm_source: ShortText | None = None
    utm_medium: ShortText | None = None
    utm_campaign: ShortText | None = None
    referrer_code: ShortText | None = None
    refcode: ShortText | None = None


class DigitalSignup(msgspec.Struct, frozen=True, gc=False):
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    source_system: Id
    action_type: ActionType
    person: Person
    source_record_id: ShortText | None = None
    source: SignupSource | None = None
    precinct_id: Id | None = None
    sms_opt_in: bool | None = None
    rsvp_status: Literal["registered", "confirmed", "cancelled"] | None = None
    attended: bool | None = None


class EmailEvent(msgspec.Struct, frozen=True, gc=False):
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    source_system: Id
    kind: EmailKind
    mailing_id: Id
    source_record_id: ShortText | None = None
    variant_id: Id | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    voter_id: Id | None = None
    precinct_id: Id | None = None
    link_id: ShortText | None = None
    amount_cents: Annotated[int, msgspec.Meta(ge=0)] | None = None
    refcode: ShortText | None = None
