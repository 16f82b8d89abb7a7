"""Identity capture at ingest: accepted signups' person fields land in `signup_identities` with the
batch's token, exactly once under replay, and never in the analytics table."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from clickhouse_connect.driver.client import Client
from confluent_kafka import Message

from config.geography import Geography
from config.settings import SIGNUP_TOPIC, load_settings
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.writer import RawBatchWriter
from streams.dedup import EventIdWindow
from streams.identity_capture import IdentityCapture
from streams.pii import PiiHasher
from streams.processing import EventProcessor

SECRET = "capture-secret-0123456789"
SETTINGS = load_settings(secret=SECRET)
GEO = Geography.from_rows([{"precinct_id": "P1", "county": "C", "region": "R", "state": "OH", "zip5": "43001"}])
AT = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
PEOPLE: list[dict[str, object]] = [
    {"given_name": "  Ana  María ", "family_name": "López", "email": "Ana@Example.org", "address_line1": "12 Elm St",
     "zip5": "43001", "birth_year": 1984},
    {"given_name": "Bo", "phone": "+1 614 555 0101"},
    {"given_name": "Cy", "family_name": "Dee"},  # no email or phone: rejected, so no identity either
]  # fmt: skip


def signup(person: dict[str, object]) -> bytes:
    return json.dumps({"event_id": str(uuid.uuid4()), "event_type": SIGNUP_TOPIC, "schema_version": 1,
                       "occurred_at": AT, "source_system": "action_network", "action_type": "list_signup",
                       "person": person}).encode()  # fmt: skip


def write_batch(client: Client, warehouse: Warehouse, values: list[bytes]) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    records = [Message(topic=SIGNUP_TOPIC, partition=2, offset=100 + i, key=b"k", value=v, timestamp=(1, now_ms))
               for i, v in enumerate(values)]  # fmt: skip
    processed = EventProcessor(SIGNUP_TOPIC, SETTINGS, GEO).process(2, records, EventIdWindow(100))
    identities = IdentityCapture().rows(processed.rows, list(reversed(records)))  # any order of records
    encode = msgspec.json.Encoder().encode_lines
    RawBatchWriter(client, warehouse).write(
        "raw_signups", "g@c/digital.signup/2/100-102", encode(processed.rows), processed.rejected,
        (("signup_identities", encode(identities)),),
    )  # fmt: skip


def test_identities_written_with_the_batch_exactly_once(client: Client, warehouse: Warehouse) -> None:
    migrate(client, warehouse, "UTC")
    values = [signup(p) for p in PEOPLE]
    write_batch(client, warehouse, values)
    write_batch(client, warehouse, values)  # a replay of the same batch, same token

    rows = client.query(
        "SELECT given_name, family_name, address_line1, zip5, birth_year, email_hash, phone_hash, kafka_partition, "
        "kafka_offset FROM signup_identities ORDER BY kafka_offset"
    ).result_rows
    hasher = PiiHasher(SECRET.encode())
    assert rows == [
        ("Ana María", "López", "12 Elm St", "43001", 1984, hasher.email("ana@example.org"), "", 2, 100),
        ("Bo", "", "", "", None, "", hasher.phone("16145550101"), 2, 101),
    ]
    # Each identity belongs to its signup's raw row (same event id), and the raw table holds no names.
    joined = client.query(
        "SELECT count() FROM raw_signups AS s INNER JOIN signup_identities AS i ON s.event_id = i.event_id"
    ).result_rows
    assert joined == [(2,)]
    raw = json.dumps([list(map(str, r)) for r in client.query("SELECT * FROM raw_signups").result_rows])
    assert "Ana" not in raw and "Elm" not in raw and "López" not in raw
    assert client.query("SELECT count() FROM rejected_events").result_rows == [(1,)]
