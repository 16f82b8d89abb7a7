"""Validation: every malformed case gets its reason; valid events around it become rows."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import pytest
from confluent_kafka import Message

from config.geography import Geography
from config.settings import load_settings
from streams.dedup import EventIdWindow
from streams.pii import PiiHasher
from streams.processing import EventProcessor
from streams.rows import CanvassRow, EmailRow, SignupRow

NOW = 1_793_100_000.0  # 2026-10-27T13:20Z
GEO = Geography.from_rows(
    [
        {"precinct_id": "P1", "county": "Cook", "region": "North", "state": "IL", "zip5": "60601"},
        {"precinct_id": "P2", "county": "Cook", "region": "North", "state": "IL", "zip5": "60602"},
        {"precinct_id": "P3", "county": "Will", "region": "South", "state": "IL", "zip5": "60602"},
    ]
)
SETTINGS = load_settings(demo=True, campaign_start=date(2026, 6, 1))


def message(value: bytes | None, topic: str, offset: int) -> Message:
    """A real confluent-kafka message, as the consumer hands them over."""
    return Message(topic=topic, partition=0, offset=offset, key=b"P1", value=value, timestamp=(1, int(NOW * 1000)))


def knock(**changes: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()), "event_type": "canvass.knock", "schema_version": 1,
        "occurred_at": "2026-10-26T14:03:22Z", "source_system": "minivan", "voter_id": "V1",
        "household_id": "H1", "precinct_id": "P1", "contact_type": "walk", "result": "canvassed",
        "support_level": 2, "responses": [{"question": "top_issue", "answer": "health"}],
        "gps": {"lat": 41.88, "lon": -87.63, "accuracy_m": 12.0}, "notes": "said hi",
    }  # fmt: skip
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


def run(topic: str, values: list[bytes]) -> tuple[list[Any], list[Any]]:
    processor = EventProcessor(topic, SETTINGS, GEO, clock=lambda: NOW)
    records = [message(v, topic, i) for i, v in enumerate(values)]
    batch = processor.process(0, records, EventIdWindow(1000))
    return batch.rows, batch.rejected


def enc(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


CANVASS_CASES = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b'{"event_id": "\xf1\x80"}', "invalid_json"),  # invalid UTF-8 inside a string
    (b"[1, 2]", "not_object"),
    (enc(knock(event_id=...)), "missing_field"),
    (enc(knock(support_level="2")), "wrong_type"),
    (enc(knock(result="maybe")), "invalid_value"),
    (enc(knock(support_level=7)), "invalid_value"),
    (enc(knock(result="not_home", support_level=2)), "support_without_contact"),
    (enc(knock(occurred_at="2027-03-01T00:00:00Z")), "future_timestamp"),
    (enc(knock(occurred_at="2026-05-01T00:00:00Z")), "before_campaign"),
    (enc(knock(occurred_at="2026-10-26T14:03:22")), "invalid_value"),  # no zone
    (enc(knock(schema_version=2)), "unknown_schema_version"),
    (enc(knock(precinct_id="P999")), "unknown_precinct"),
    (enc(knock(event_type="email.event")), "event_type_mismatch"),
    (enc(knock(notes="x" * 70_000)), "oversize"),
]


@pytest.mark.parametrize(("value", "reason"), CANVASS_CASES)
def test_each_malformed_canvass_event_is_rejected_with_its_reason(value: bytes, reason: str) -> None:
    good_before, good_after = enc(knock()), enc(knock())
    rows, rejected = run("canvass.knock", [good_before, value, good_after])
    assert [r.reason_code for r in rejected] == [reason]
    assert rejected[0].raw == value and rejected[0].kafka_offset == 1
    assert len(rows) == 2


def test_repeated_event_id_is_rejected_once_counted() -> None:
    event = enc(knock())
    rows, rejected = run("canvass.knock", [event, event])
    assert len(rows) == 1 and [r.reason_code for r in rejected] == ["duplicate_event_id"]


def test_rejected_then_corrected_event_is_accepted() -> None:
    bad = knock(result="maybe")
    fixed = dict(bad, result="canvassed")
    rows, rejected = run("canvass.knock", [enc(bad), enc(fixed)])
    assert len(rows) == 1 and len(rejected) == 1


def test_canvass_row_fields() -> None:
    event = knock()
    rows, _ = run("canvass.knock", [enc(event)])
    row = rows[0]
    assert isinstance(row, CanvassRow)
    assert (row.precinct_id, row.county, row.region, row.state) == ("P1", "Cook", "North", "IL")
    assert row.support_level == 2 and [(r.question, r.answer) for r in row.responses] == [("top_issue", "health")]
    assert str(row.event_id) == event["event_id"] and row.kafka_offset == 0


def signup(**changes: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()), "event_type": "digital.signup", "schema_version": 1,
        "occurred_at": "2026-10-26T14:05:00Z", "source_system": "action_network", "action_type": "form_submission",
        "person": {"given_name": "Ana", "email": " Ana@Example.org ", "phone": "(312) 555-0100", "zip5": "60601"},
        "source": {"utm_source": "facebook"}, "precinct_id": None,
    }  # fmt: skip
    event.update(changes)
    return event


def test_signup_pii_is_hashed_and_zip_resolves() -> None:
    rows, rejected = run("digital.signup", [enc(signup()), enc(signup(person={"email": "b@x.org", "zip5": "60602"}))])
    assert not rejected
    first, second = rows
    assert isinstance(first, SignupRow) and isinstance(second, SignupRow)
    hasher = PiiHasher(SETTINGS.hashing_secret)
    assert first.email_hash == hasher.email("ana@example.org") and "ana" not in first.email_hash
    assert first.phone_hash == hasher.phone("+1 312 555 0100")
    assert (first.precinct_id, first.geo_resolution) == ("P1", "zip")
    # 60602 spans two counties: the state's unassigned bucket, never dropped
    assert (second.precinct_id, second.county, second.geo_resolution) == ("unassigned", "unassigned", "unassigned")
    assert b"Ana" not in enc({"row": str(first)})


def test_signup_without_contact_point_is_rejected() -> None:
    _, rejected = run("digital.signup", [enc(signup(person={"given_name": "Ana", "zip5": "60601"}))])
    assert [r.reason_code for r in rejected] == ["no_contact_point"]


def email_event(**changes: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()), "event_type": "email.event", "schema_version": 1,
        "occurred_at": "2026-10-26T14:06:10Z", "source_system": "actionkit", "kind": "click",
        "mailing_id": "M1", "variant_id": "B", "email": "ana@example.org", "voter_id": None,
        "precinct_id": None, "link_id": "donate-main", "amount_cents": None,
    }  # fmt: skip
    event.update(changes)
    return event


def test_email_events() -> None:
    rows, rejected = run(
        "email.event",
        [enc(email_event()), enc(email_event(kind="donation", amount_cents=2500, precinct_id="P3")),
         enc(email_event(amount_cents=100)), enc(email_event(kind="bounced"))],
    )  # fmt: skip
    assert [r.reason_code for r in rejected] == ["amount_without_donation", "invalid_value"]
    click, donation = rows
    assert isinstance(click, EmailRow) and click.precinct_id == "unassigned" and click.email_hash
    assert isinstance(donation, EmailRow) and donation.region == "South" and donation.amount_cents == 2500
