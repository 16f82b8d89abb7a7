"""Turning a valid simulated event into a malformed one, labelled with the reason Groundswell must give.

Each kind mimics a real producer bug (a truncated write, a Latin-1 export, double-encoded JSON,
a re-sent message) and is labelled with the exact `streams.rejections.Reason` code.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

import msgspec

from config.settings import CANVASS_TOPIC, EMAIL_TOPIC, EVENT_TOPICS, SIGNUP_TOPIC
from streams.rejections import Reason
from streams.simulation.payloads import SimEvent, Timestamps

# kind → the reason code the worker must reject it with
MALFORMED_KINDS: dict[str, Reason] = {
    "invalid_json": Reason.INVALID_JSON,
    "invalid_utf8": Reason.INVALID_JSON,
    "not_object": Reason.NOT_OBJECT,
    "missing_field": Reason.MISSING_FIELD,
    "wrong_type": Reason.WRONG_TYPE,
    "unknown_enum": Reason.INVALID_VALUE,
    "support_without_contact": Reason.SUPPORT_WITHOUT_CONTACT,
    "future_timestamp": Reason.FUTURE_TIMESTAMP,
    "unknown_schema_version": Reason.UNKNOWN_SCHEMA_VERSION,
    "unknown_precinct": Reason.UNKNOWN_PRECINCT,
    "oversize": Reason.OVERSIZE,
    "duplicate": Reason.DUPLICATE_EVENT_ID,
    "amount_without_donation": Reason.AMOUNT_WITHOUT_DONATION,
    "no_contact_point": Reason.NO_CONTACT_POINT,
    "event_type_mismatch": Reason.EVENT_TYPE_MISMATCH,
}
_TOPIC_ONLY = {
    "support_without_contact": CANVASS_TOPIC,
    "amount_without_donation": EMAIL_TOPIC,
    "no_contact_point": SIGNUP_TOPIC,
}
KINDS_BY_TOPIC: dict[str, tuple[str, ...]] = {
    topic: tuple(k for k in MALFORMED_KINDS if _TOPIC_ONLY.get(k, topic) == topic) for topic in EVENT_TOPICS
}

_REQUIRED = {
    CANVASS_TOPIC: ("event_id", "occurred_at", "source_system", "precinct_id", "contact_type", "result"),
    SIGNUP_TOPIC: ("event_id", "occurred_at", "event_type", "action_type", "person"),
    EMAIL_TOPIC: ("event_id", "occurred_at", "schema_version", "kind", "mailing_id"),
}
# A string field each schema decodes (msgspec only checks UTF-8 in strings it decodes).
_LATIN1_FIELD = {CANVASS_TOPIC: ("notes",), SIGNUP_TOPIC: ("person", "given_name"), EMAIL_TOPIC: ("link_id",)}
_LATIN1_TEXT = {CANVASS_TOPIC: "Señora Muñoz: call back", SIGNUP_TOPIC: "José", EMAIL_TOPIC: "café-night"}
_MARKER = "@@latin1@@"
_BAD_ENUM = {
    CANVASS_TOPIC: ("result", "voicemail"),
    SIGNUP_TOPIC: ("action_type", "tweet"),
    EMAIL_TOPIC: ("kind", "forward"),
}
_NOT_CANVASSED = ("not_home", "refused", "moved", "come_back_later", "inaccessible")
_NOT_DONATION = ("send", "open", "click", "machine_open", "unsubscribe")
OVERSIZE_BYTES = 70_000  # over the contract's 64 KiB limit


class Malformer:
    """Remembers recent valid events (to re-send one) and corrupts events on request."""

    def __init__(
        self,
        rng: random.Random,
        known_precincts: Collection[str],
        wall: Callable[[], float],
        memory: int = 256,
    ) -> None:
        self._rng = rng
        self._known = known_precincts
        self._wall = wall
        self._stamps = Timestamps()
        self.recent: deque[SimEvent] = deque(maxlen=memory)

    def remember(self, event: SimEvent) -> None:
        self.recent.append(event)

    def corrupt(self, event: SimEvent, kind: str | None = None) -> SimEvent:
        """A malformed variant of a valid event; a random kind that suits its topic unless given."""
        rng = self._rng
        if kind is None:
            kind = rng.choice(KINDS_BY_TOPIC[event.topic])
        if kind == "duplicate":
            if not self.recent:
                kind = "invalid_json"
            else:
                original = self.recent[rng.randrange(len(self.recent))]
                return SimEvent(original.topic, original.key, original.value, MALFORMED_KINDS[kind].value)
        if kind not in KINDS_BY_TOPIC[event.topic]:
            raise ValueError(f"malformed kind {kind!r} does not apply to topic {event.topic!r}")
        topic, key = event.topic, event.key
        obj: dict[str, Any] = msgspec.json.decode(event.value)
        value: bytes | None = None
        if kind == "invalid_json":
            variant = rng.randrange(3)
            if variant == 0:
                value = event.value[: rng.randrange(1, len(event.value) - 1)]  # a truncated write
            elif variant == 1:
                value = event.value + b"}"  # trailing garbage
            else:
                value = repr(obj).encode()  # a Python dict printed instead of JSON
        elif kind == "invalid_utf8":
            *parents, leaf = _LATIN1_FIELD[topic]
            target = obj
            for name in parents:
                target = target[name]
            target[leaf] = _MARKER
            value = msgspec.json.encode(obj).replace(_MARKER.encode(), _LATIN1_TEXT[topic].encode("latin-1"))
        elif kind == "not_object":
            # A list of events, or JSON encoded twice (a string holding the object).
            value = msgspec.json.encode([obj] if rng.random() < 0.5 else msgspec.json.encode(obj).decode())
        elif kind == "missing_field":
            del obj[rng.choice(_REQUIRED[topic])]
        elif kind == "wrong_type":
            if topic == CANVASS_TOPIC:
                obj["result"] = "canvassed"
                obj["support_level"] = str(obj.get("support_level") or 2)
            elif topic == SIGNUP_TOPIC:
                obj["person"]["birth_year"] = str(obj["person"].get("birth_year") or 1984)
            else:
                obj["variant_id"] = 2
        elif kind == "unknown_enum":
            field, bad = _BAD_ENUM[topic]
            obj[field] = bad
        elif kind == "support_without_contact":
            obj["result"] = rng.choice(_NOT_CANVASSED)
            obj["support_level"] = rng.randint(1, 5)
        elif kind == "future_timestamp":
            obj["occurred_at"] = self._stamps.format(self._wall() + rng.uniform(1, 30) * 86_400)
        elif kind == "unknown_schema_version":
            obj["schema_version"] = 2
        elif kind == "unknown_precinct":
            precinct = self._unknown_precinct()
            obj["precinct_id"] = precinct
            if topic != EMAIL_TOPIC:
                key = precinct.encode()
        elif kind == "oversize":
            filler = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", k=64))
            blob = "data:image/jpeg;base64," + filler * (OVERSIZE_BYTES // 64)
            obj["notes" if topic == CANVASS_TOPIC else "attachment"] = blob
        elif kind == "amount_without_donation":
            obj["kind"] = rng.choice(_NOT_DONATION)
            obj["amount_cents"] = rng.choice((500, 2500, 10_000))
        elif kind == "no_contact_point":
            obj["person"]["email"] = None
            obj["person"]["phone"] = None
        elif kind == "event_type_mismatch":
            obj["event_type"] = rng.choice([t for t in EVENT_TOPICS if t != topic])
        if value is None:
            value = msgspec.json.encode(obj)
        return SimEvent(topic, key, value, MALFORMED_KINDS[kind].value)

    def _unknown_precinct(self) -> str:
        while True:
            candidate = f"P{self._rng.randrange(10_000, 100_000)}"
            if candidate not in self._known:
                return candidate
