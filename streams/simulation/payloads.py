"""What the simulator emits: `SimEvent`, and the JSON shapes of the three v1 event types.

These structs are write-only mirrors of streams/events.py with plain strings for ids and times:
building a str is cheaper than a UUID or datetime, and msgspec encodes a positional Struct
several times faster than a dict. Field names must match streams/events.py (tests decode
every kind of valid event with those schemas).
"""

from __future__ import annotations

import time

import msgspec

OK = "ok"


class SimEvent(msgspec.Struct, frozen=True):
    """One Kafka message: `expected` is "ok" or the rejection reason code (streams.rejections.Reason)."""

    topic: str
    key: bytes
    value: bytes
    expected: str


class Response(msgspec.Struct, frozen=True):
    question: str
    answer: str


class Gps(msgspec.Struct, frozen=True):
    lat: float
    lon: float
    accuracy_m: float


class Canvass(msgspec.Struct):
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: str
    source_system: str
    voter_id: str
    household_id: str
    precinct_id: str
    canvasser_id: str
    team_id: str
    turf_id: str | None
    contact_type: str
    result: str
    support_level: int | None
    responses: tuple[Response, ...] | None
    gps: Gps | None
    notes: str | None


class Person(msgspec.Struct):
    given_name: str | None
    family_name: str | None
    email: str | None
    phone: str | None
    address_line1: str | None
    zip5: str | None
    birth_year: int | None


class Source(msgspec.Struct, frozen=True):
    utm_source: str
    utm_medium: str
    utm_campaign: str
    referrer_code: str | None
    refcode: str | None


class Signup(msgspec.Struct):
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: str
    source_system: str
    action_type: str
    person: Person
    source: Source
    precinct_id: str | None
    sms_opt_in: bool | None
    rsvp_status: str | None
    source_record_id: str | None = None  # the simulated person's record id (streams/simulation/identities.py)


class Email(msgspec.Struct):
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: str
    source_system: str
    kind: str
    mailing_id: str
    variant_id: str
    email: str
    voter_id: str | None
    precinct_id: str | None
    link_id: str | None
    amount_cents: int | None
    refcode: str | None


# UUID version 4 layout: the 13th hex digit is 4, the 17th one of 8, 9, a, b.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid4_text(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (from the seeded generator, for reproducibility)."""
    h = bits.to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class Timestamps:
    """RFC 3339 UTC with milliseconds; caches the formatted minute, which consecutive events share."""

    __slots__ = ("_minute", "_prefix")

    def __init__(self) -> None:
        self._minute = -1
        self._prefix = ""

    def format(self, epoch: float) -> str:
        minute, millis = divmod(int(epoch * 1000), 60_000)
        if minute != self._minute:
            self._minute = minute
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
        return "%s%06.3fZ" % (self._prefix, millis / 1000)  # noqa: UP031 - faster than an f-string here
