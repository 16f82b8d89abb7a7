"""The simulator: world, event stream, malformed labels, ground truth. Fast, no Kafka."""

from __future__ import annotations

import argparse
import collections
import itertools
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pytest

from config.geography import UNASSIGNED, Geography
from config.settings import CANVASS_TOPIC, DEFAULT_GEOGRAPHY, EMAIL_TOPIC, EVENT_TOPICS, SIGNUP_TOPIC
from streams.events import CanvassKnock, DigitalSignup, EmailEvent
from streams.rejections import Reason
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.cli import add_simulate_arguments, run_simulate
from streams.simulation.clock import LiveClock, ReplayClock
from streams.simulation.malformed import KINDS_BY_TOPIC, MALFORMED_KINDS, OVERSIZE_BYTES, Malformer
from streams.simulation.names import FAMILY, FAMILY_NAMES, FEMALE_GIVEN, GIVEN_NAMES, MALE_GIVEN
from streams.simulation.payloads import OK, SimEvent, Timestamps, uuid4_text
from streams.simulation.truth import compute_truth, read_truth, write_truth
from streams.simulation.world import GENDERS, World, build_world

NOW = datetime(2026, 11, 3, 22, 0, tzinfo=UTC).timestamp()  # a fixed "wall clock" for reproducible runs
SCHEMAS: dict[str, type[Any]] = {CANVASS_TOPIC: CanvassKnock, SIGNUP_TOPIC: DigitalSignup, EMAIL_TOPIC: EmailEvent}
TZ = ZoneInfo("America/New_York")


def fixed_now() -> float:
    return NOW


@cache
def world() -> World:
    return build_world(42)


@cache
def replay(seed: int = 3, n: int = 60_000, share: float = 0.0) -> tuple[SimEvent, ...]:
    clock = ReplayClock(datetime(2026, 10, 20, tzinfo=TZ), 14, "America/New_York", now=fixed_now)
    return tuple(itertools.islice(CampaignGenerator(world(), seed, share, clock), n))


def decoded(events: tuple[SimEvent, ...], topic: str) -> list[dict[str, Any]]:
    return [msgspec.json.decode(e.value) for e in events if e.topic == topic and e.expected == OK]


# --- the world ---------------------------------------------------------------------------------


def test_world_is_reproducible_and_shaped_like_a_campaign() -> None:
    a = build_world(7, precincts=60, counties=5, regions=2, voters_per_precinct=80)
    b = build_world(7, precincts=60, counties=5, regions=2, voters_per_precinct=80)
    assert a.precincts == b.precincts
    assert np.array_equal(a.support, b.support) and np.array_equal(a.voter_household, b.voter_household)
    assert a.precincts[0].precinct_id == "P0001" and a.voter_id(0) == "V00000001" and a.household_id(0) == "H0000001"
    assert len(a.counties) == 5 and len(a.regions) == 2
    voter = a.voter(0)
    assert (voter.voter_id, voter.household_id, voter.precinct_id) == ("V00000001", "H0000001", "P0001")
    assert voter.party in {"D", "R", "U", "L", "G"} and 0 < voter.support < 1 and 1931 <= voter.birth_year <= 2008
    assert 40 <= a.n_voters / 60 <= 120
    # Voters of a household are contiguous and share its precinct.
    h = a.voter_household
    assert np.array_equal(a.household_precinct[h], a.voter_precinct)
    assert np.all(np.diff(h) >= 0) and np.all(a.household_size >= 1)


def test_default_world_zips_and_true_model() -> None:
    w = world()
    geo = w.geography()
    sizes = collections.Counter(len(p) for p in geo.zip_precincts.values())
    assert sizes[1] > 0 and sum(n for k, n in sizes.items() if k > 1) > 0  # unique and shared zips
    counties_per_zip = [len({geo.precincts[p].county for p in ps}) for ps in geo.zip_precincts.values()]
    assert max(counties_per_zip) == 2  # some zips straddle a county line
    model = w.true_model
    assert set(model.features) == {"party_D", "party_R", "party_L", "party_G", "age_decades", "urbanicity"}
    assert np.allclose(model.probability(w.features(), w.voter_precinct), w.support)
    democrats = w.party == 0
    assert w.support[democrats].mean() > 0.7 > 0.3 > w.support[w.party == 1].mean()


def test_shipped_geography_is_build_world_42(tmp_path: Path) -> None:
    path = tmp_path / "geography.csv"
    world().write_geography_csv(path)
    assert DEFAULT_GEOGRAPHY.read_bytes() == path.read_bytes()
    geo = Geography.from_csv(DEFAULT_GEOGRAPHY)
    assert len(geo.precincts) == 400
    assert path.read_text().splitlines()[0] == "precinct_id,county,region,state,zip5"


def test_name_pools_follow_their_zipf_law() -> None:
    for pool, size, offset in ((FAMILY, 6_000, 25.0), (FEMALE_GIVEN, 1_500, 5.0), (MALE_GIVEN, 1_500, 5.0)):
        assert len(pool.names) == size == len(set(pool.names))
        norm = sum(1.0 / (rank + offset) for rank in range(size))
        expected = [1.0 / (rank + offset) / norm for rank in range(size)]
        assert np.allclose(pool.shares, expected, rtol=1e-9, atol=0)
        # Names go into emails (given.family.N@...) and forms: plain capitalised ASCII words.
        assert all(name.isascii() and name.isalpha() and name[0].isupper() for name in pool.names)
    assert not set(FEMALE_GIVEN.names) & set(MALE_GIVEN.names)
    assert FEMALE_GIVEN.names + MALE_GIVEN.names == GIVEN_NAMES and FAMILY.names == FAMILY_NAMES
    uniforms = np.array([0.0, FAMILY.shares[0] - 1e-12, FAMILY.shares[0], 1.0 - 1e-12])
    assert FAMILY.ranks(uniforms).tolist() == [0, 0, 1, len(FAMILY.names) - 1]


def test_world_names_have_the_pools_frequencies_and_follow_gender() -> None:
    w = build_world(9, precincts=200, counties=6, regions=2, voters_per_precinct=400)
    n = w.n_voters
    again = build_world(9, precincts=200, counties=6, regions=2, voters_per_precinct=400)
    assert np.array_equal(w.given_name, again.given_name) and np.array_equal(w.family_name, again.family_name)
    other = build_world(10, precincts=200, counties=6, regions=2, voters_per_precinct=400)
    assert (w.given_name[:1000] != other.given_name[:1000]).mean() > 0.9
    shares = np.bincount(w.gender, minlength=len(GENDERS)) / n
    assert np.allclose(shares, [0.52, 0.46, 0.005, 0.015], atol=0.01)
    female_pool = w.given_name < len(FEMALE_GIVEN.names)
    assert female_pool[w.gender == GENDERS.index("F")].all() and not female_pool[w.gender == GENDERS.index("M")].any()
    # Each voter's name follows the pool's law (household members are drawn together, so allow for
    # the clustering): the commonest names' shares and the whole distribution's largest CDF gap.
    for names, pool in ((w.family_name, FAMILY), (w.given_name[w.gender == 1] - len(FEMALE_GIVEN.names), MALE_GIVEN)):
        observed = np.bincount(names, minlength=len(pool.names)) / names.shape[0]
        top = pool.shares[:10].sum()
        assert abs(observed[:10].sum() - top) < 6 * math.sqrt(top * (1 - top) / names.shape[0])
        assert np.abs(np.cumsum(observed) - np.cumsum(pool.shares)).max() < 0.02
    emails = [w.voter_email(i) for i in range(0, n, 5)]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\.\d+@example\.(org|com|net)", e) for e in emails)


# --- the event stream ---------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first = replay(seed=3, n=20_000, share=0.02)
    clock = ReplayClock(datetime(2026, 10, 20, tzinfo=TZ), 14, "America/New_York", now=fixed_now)
    generator = CampaignGenerator(world(), 3, 0.02, clock)
    assert tuple(itertools.islice(generator, 20_000)) == first
    assert tuple(itertools.islice(generator, 20_000)) == first  # each iteration restarts the run
    other = tuple(itertools.islice(CampaignGenerator(world(), 4, 0.02, clock), 1_000))
    assert other != first[:1_000]


def test_valid_events_follow_the_contract() -> None:
    events = replay()
    assert {e.topic for e in events} == set(EVENT_TOPICS)
    ids = set()
    geo = world().geography()
    for event in events:
        body = msgspec.json.decode(event.value, type=SCHEMAS[event.topic])
        assert body.event_type == event.topic and body.schema_version == 1
        assert body.event_id.version == 4
        ids.add(body.event_id)
        if event.topic == CANVASS_TOPIC:
            assert event.key == body.precinct_id.encode() and body.precinct_id in geo.precincts
            assert body.support_level is None or body.result == "canvassed"
        elif event.topic == SIGNUP_TOPIC:
            assert body.person.email or body.person.phone
            expected_key = body.precinct_id if body.precinct_id is not None else body.person.zip5
            assert expected_key is not None and event.key == expected_key.encode()
        else:
            assert event.key == body.mailing_id.encode()
            assert (body.amount_cents is not None) == (body.kind == "donation")
            assert (body.precinct_id is None) == (body.voter_id is None)
    assert len(ids) == len(events)


def test_field_program_is_realistic() -> None:
    # 150k events span several days of the replay: enough for revisits to be certain, not luck.
    canvass = decoded(replay(n=150_000), CANVASS_TOPIC)
    walk = [c for c in canvass if c["contact_type"] == "walk"]
    for attempts in (canvass, walk):
        contact_rate = sum(c["result"] == "canvassed" for c in attempts) / len(attempts)
        assert 0.10 <= contact_rate <= 0.30
    canvassed = [c for c in canvass if c["result"] == "canvassed"]
    assert 0.8 <= sum(c["support_level"] is not None for c in canvassed) / len(canvassed) <= 0.95
    # Each household is knocked once, and a not-home household at most once more (per voter: two attempts).
    knocks = collections.Counter((c["voter_id"], c["turf_id"]) for c in walk)
    assert max(knocks.values()) <= 2 and any(n == 2 for n in knocks.values())
    # Replayed canvassing happens between 10:00 and 20:00 local time.
    hours = {datetime.fromisoformat(c["occurred_at"]).astimezone(TZ).hour for c in canvass}
    assert min(hours) >= 10 and max(hours) <= 19


def test_support_levels_follow_true_support() -> None:
    w = world()
    canvass = [c for c in decoded(replay(n=150_000), CANVASS_TOPIC) if c["support_level"] is not None]
    voters = np.array([int(c["voter_id"][1:]) - 1 for c in canvass])
    observed = np.array([c["support_level"] <= 2 for c in canvass], dtype=float)
    assert abs(observed.mean() - w.support[voters].mean()) < 0.02


def test_email_and_signups_mix() -> None:
    events = replay()
    email = decoded(events, EMAIL_TOPIC)
    linked = sum(e["precinct_id"] is not None for e in email) / len(email)
    assert 0.35 <= linked <= 0.65
    kinds = collections.Counter(e["kind"] for e in email)
    sends = kinds["send"]
    unique_clicks = {(e["mailing_id"], e["email"].lower()) for e in email if e["kind"] == "click"}
    assert kinds["machine_open"] > 0 and kinds["donation"] > 0 and kinds["unsubscribe"] > 0
    assert 0.01 <= len(unique_clicks) / sends <= 0.04
    signups = decoded(events, SIGNUP_TOPIC)
    with_precinct = sum(s["precinct_id"] is not None for s in signups)
    assert 0 < with_precinct < len(signups)
    assert {s["source"]["utm_source"] for s in signups} == {"facebook", "instagram", "email", "sms", "organic"}


def test_replay_and_live_never_stamp_the_future() -> None:
    replayed = replay()
    latest = max(datetime.fromisoformat(msgspec.json.decode(e.value)["occurred_at"]) for e in replayed)
    assert latest.timestamp() <= NOW
    clock = ReplayClock(datetime(2026, 11, 1, tzinfo=TZ), 14, "America/New_York", now=fixed_now)
    tail = list(CampaignGenerator(world(), 1, 0.0, clock))  # ends at the wall clock, not after 14 days
    stamps = [datetime.fromisoformat(msgspec.json.decode(e.value)["occurred_at"]).timestamp() for e in tail]
    assert tail and max(stamps) <= NOW
    live = list(itertools.islice(CampaignGenerator(world(), 1, 0.0, LiveClock(now=fixed_now)), 5_000))
    stamps = [datetime.fromisoformat(msgspec.json.decode(e.value)["occurred_at"]).timestamp() for e in live]
    assert max(stamps) <= NOW and min(stamps) >= NOW - 1800  # device lag: seconds, offline sync: minutes


# --- malformed events ---------------------------------------------------------------------------


def _fails(value: bytes, schema: type[Any], error: type[Exception] | tuple[type[Exception], ...], text: str) -> None:
    with pytest.raises(error) as caught:
        msgspec.json.decode(value, type=schema)
    assert text in str(caught.value)


def _check_malformed(kind: str, bad: SimEvent, original: SimEvent, known: set[str]) -> None:
    """Assert that `bad` really is what its kind says, using the v1 schemas of streams/events.py."""
    schema = SCHEMAS[bad.topic]
    if kind == "invalid_json":
        _fails(bad.value, dict, msgspec.DecodeError, "")
        return
    if kind == "invalid_utf8":
        with pytest.raises(UnicodeDecodeError):
            bad.value.decode("utf-8")
        # msgspec checks UTF-8 in the strings it decodes: the bad bytes sit in one the schema reads.
        _fails(bad.value, schema, (UnicodeDecodeError, msgspec.DecodeError), "")
        return
    if kind == "oversize":
        assert len(bad.value) > 64 * 1024
        return
    if kind == "duplicate":
        assert (bad.topic, bad.key, bad.value) == (original.topic, original.key, original.value)
        return
    decode_errors = {
        "not_object": "Expected `object`",
        "missing_field": "missing required field",
        "wrong_type": "Expected `",
        "unknown_enum": "Invalid enum value",
    }
    if kind in decode_errors:
        _fails(bad.value, schema, msgspec.ValidationError, decode_errors[kind])
        return
    body = msgspec.json.decode(bad.value, type=schema)  # the rest decode and break a rule
    if kind == "support_without_contact":
        assert body.support_level is not None and body.result != "canvassed"
    elif kind == "future_timestamp":
        assert body.occurred_at.timestamp() >= NOW + 86_400
    elif kind == "unknown_schema_version":
        assert body.schema_version == 2
    elif kind == "unknown_precinct":
        assert body.precinct_id not in known
        assert bad.topic == EMAIL_TOPIC or bad.key == body.precinct_id.encode()
    elif kind == "amount_without_donation":
        assert body.amount_cents is not None and body.kind != "donation"
    elif kind == "no_contact_point":
        assert body.person.email is None and body.person.phone is None
    elif kind == "event_type_mismatch":
        assert body.event_type != bad.topic
    else:
        raise AssertionError(f"no check for malformed kind {kind!r}")


def test_every_malformed_kind_applies_somewhere() -> None:
    assert {kind for kinds in KINDS_BY_TOPIC.values() for kind in kinds} == set(MALFORMED_KINDS)
    assert OVERSIZE_BYTES > 64 * 1024


@pytest.mark.parametrize(("topic", "kind"), [(t, k) for t, kinds in KINDS_BY_TOPIC.items() for k in kinds])
def test_malformed_kind_fails_as_labelled(topic: str, kind: str) -> None:
    import random

    known = set(world().precinct_ids)
    valid = [e for e in replay() if e.topic == topic]
    malformer = Malformer(random.Random(1), known, fixed_now)
    for good in valid[:25]:
        malformer.remember(good)
        bad = malformer.corrupt(good, kind)
        assert bad.expected == MALFORMED_KINDS[kind].value and bad.expected in set(Reason)
        assert bad.topic == topic or kind == "duplicate"
        original = next(e for e in malformer.recent if e.value == bad.value) if kind == "duplicate" else good
        _check_malformed(kind, bad, original, known)


def test_malformed_share_and_every_reason_occur() -> None:
    events = replay(seed=9, n=60_000, share=0.05)
    reasons = collections.Counter(e.expected for e in events if e.expected != OK)
    assert 0.04 <= sum(reasons.values()) / len(events) <= 0.06
    assert set(reasons) == {r.value for r in MALFORMED_KINDS.values()}
    # A duplicate re-sends a valid event seen before it, with the same key (so the same partition).
    seen: set[tuple[str, bytes, bytes]] = set()
    for event in events:
        if event.expected == Reason.DUPLICATE_EVENT_ID:
            assert (event.topic, event.key, event.value) in seen
        elif event.expected == OK:
            seen.add((event.topic, event.key, event.value))


def test_labels_agree_with_the_event_processor() -> None:
    """Cross-check against the real validator: each event gets exactly the outcome it is labelled with."""
    from confluent_kafka import Message

    from config.settings import load_settings
    from streams.dedup import EventIdWindow
    from streams.processing import EventProcessor

    settings = load_settings(demo=True)
    geography = world().geography()
    processors = {t: EventProcessor(t, settings, geography, clock=fixed_now) for t in EVENT_TOPICS}
    windows = {t: EventIdWindow(1_000_000) for t in EVENT_TOPICS}
    mismatches: collections.Counter[tuple[str, str]] = collections.Counter()
    for offset, event in enumerate(replay(seed=9, n=30_000, share=0.05)):
        record = Message(
            topic=event.topic,
            partition=0,
            offset=offset,
            key=event.key,
            value=event.value,
            timestamp=(1, int(NOW * 1000)),
        )
        batch = processors[event.topic].process(0, [record], windows[event.topic])
        outcome = OK if batch.rows else batch.rejected[0].reason_code
        if outcome != event.expected:
            mismatches[(event.expected, outcome)] += 1
    assert not mismatches


# --- ground truth -------------------------------------------------------------------------------


def _event(topic: str, key: str, expected: str = OK, **fields: Any) -> SimEvent:
    body = {"event_id": str(uuid.uuid4()), "event_type": topic, "schema_version": 1, "source_system": "test"}
    body.update(fields)
    return SimEvent(topic, key.encode(), msgspec.json.encode(body), expected)


def test_truth_on_a_hand_built_stream() -> None:
    geo = Geography.from_rows(
        [
            {"precinct_id": "P1", "county": "A", "region": "R", "state": "OH", "zip5": "11111"},
            {"precinct_id": "P2", "county": "A", "region": "R", "state": "OH", "zip5": "22222"},
            {"precinct_id": "P3", "county": "B", "region": "R", "state": "OH", "zip5": "22222"},
        ]
    )
    t0, t1 = "2026-10-31T14:03:00Z", "2026-10-31T14:20:00+00:00"  # windows 14:00 and 14:15

    def knock(at: str, result: str, level: int | None = None, contact: str = "walk", **ids: str) -> SimEvent:
        return _event(
            CANVASS_TOPIC, "P1", occurred_at=at, precinct_id="P1", contact_type=contact, result=result,
            support_level=level, **ids,
        )  # fmt: skip

    def email(at: str, kind: str, mailing: str, address: str | None, **more: Any) -> SimEvent:
        return _event(EMAIL_TOPIC, mailing, occurred_at=at, kind=kind, mailing_id=mailing, email=address, **more)

    def signup(at: str, zip5: str | None, precinct: str | None = None) -> SimEvent:
        person = {"email": "a@example.org", "zip5": zip5}
        return _event(SIGNUP_TOPIC, precinct or zip5 or "", occurred_at=at, action_type="list_signup",
                      person=person, precinct_id=precinct)  # fmt: skip

    events = [
        knock(t0, "not_home", household_id="H1", voter_id="V1"),
        knock(t0, "not_home", household_id="H1", voter_id="V2"),
        knock(t0, "canvassed", 2, voter_id="V3"),  # no household: the voter is the door
        knock(t0, "canvassed", None, household_id="H2"),
        knock(t1, "canvassed", 1, household_id="H1", voter_id="V1"),  # H1 again, next window
        knock(t1, "canvassed", 4, contact="phone", household_id="H9"),  # a call is no door
        knock(t1, "refused"),  # no ids at all: the event is the door
        signup(t0, "11111"),  # zip in one precinct → P1
        signup(t0, "22222"),  # zip in two precincts → unassigned
        signup(t1, "99999"),  # zip outside the geography → unassigned
        signup(t1, "22222", precinct="P3"),
        email(t0, "send", "M1", "ana@example.org", precinct_id="P1", voter_id="V1"),
        email(t0, "send", "M1", "bo@example.org"),
        email(t0, "click", "M1", "ana@example.org", precinct_id="P1"),
        email(t1, "click", "M1", " Ana@Example.org ", precinct_id="P1"),  # same recipient, next window
        email(t1, "click", "M2", "ana@example.org", precinct_id="P1"),  # another mailing
        email(t1, "click", "M1", None, voter_id="V7"),  # no email: the voter is the recipient
        email(t1, "donation", "M1", "bo@example.org", amount_cents=2500),
        email(t1, "donation", "M1", "ana@example.org", amount_cents=1000, precinct_id="P1"),
        _event(CANVASS_TOPIC, "P1", Reason.UNKNOWN_PRECINCT.value),
        _event(EMAIL_TOPIC, "M1", Reason.DUPLICATE_EVENT_ID.value),
        _event(EMAIL_TOPIC, "M1", Reason.DUPLICATE_EVENT_ID.value),
    ]
    truth = compute_truth(events, geo)
    w0 = datetime(2026, 10, 31, 14, 0, tzinfo=UTC)
    w1 = w0 + timedelta(minutes=15)
    assert truth.accepted == 19
    assert dict(truth.rejections) == {"unknown_precinct": 1, "duplicate_event_id": 2}

    p1 = truth.precincts["P1"]
    assert (p1.attempts, p1.doors, p1.contacts, p1.ids, p1.supporters) == (7, 4, 4, 3, 2)
    assert (p1.signups, p1.email_sends, p1.email_unique_clicks, p1.donations_cents) == (1, 1, 2, 1000)
    first, second = truth.windows[("P1", w0)], truth.windows[("P1", w1)]
    assert (first.attempts, first.doors, first.contacts, first.ids, first.supporters) == (4, 3, 2, 1, 1)
    assert (second.attempts, second.doors, second.contacts, second.ids, second.supporters) == (3, 2, 2, 2, 1)
    assert (first.email_unique_clicks, second.email_unique_clicks) == (1, 2)
    assert first.signups == 1 and second.signups == 0

    unassigned = truth.precincts[UNASSIGNED]
    assert (unassigned.signups, unassigned.email_sends, unassigned.email_unique_clicks) == (2, 1, 1)
    assert unassigned.donations_cents == 2500 and unassigned.attempts == 0
    assert truth.precincts["P3"].signups == 1 and "P2" not in truth.precincts
    total = truth.total()
    assert (total.attempts, total.signups, total.email_sends, total.donations_cents) == (7, 4, 2, 3500)


def test_truth_matches_the_stream_totals() -> None:
    events = replay(seed=9, n=30_000, share=0.05)
    truth = compute_truth(events, world().geography())
    ok = [e for e in events if e.expected == OK]
    assert truth.accepted == len(ok) and sum(truth.rejections.values()) == len(events) - len(ok)
    total = truth.total()
    assert total.attempts == sum(e.topic == CANVASS_TOPIC for e in ok)
    assert sum(c.attempts for c in truth.windows.values()) == total.attempts
    assert sum(c.doors for c in truth.windows.values()) >= total.doors


@pytest.mark.parametrize("name", ["truth.jsonl", "truth.jsonl.gz"])
def test_truth_file_round_trip(tmp_path: Path, name: str) -> None:
    events = list(replay(seed=9, n=3_000, share=0.2))
    assert any(e.expected == "invalid_json" for e in events)  # includes bytes that are not UTF-8
    assert write_truth(tmp_path / name, events) == len(events)
    assert read_truth(tmp_path / name) == events


# --- small parts --------------------------------------------------------------------------------


def test_timestamps_and_event_ids() -> None:
    stamps = Timestamps()
    base = datetime(2026, 10, 31, 23, 59, 58, tzinfo=UTC).timestamp()
    for millis in range(0, 3000, 7):
        text = stamps.format(base + millis / 1000)
        expected = datetime.fromtimestamp(base, UTC) + timedelta(milliseconds=millis)
        assert datetime.fromisoformat(text) == expected and text.endswith("Z") and len(text) == 24
    parsed = uuid.UUID(uuid4_text(2**128 - 1))
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_cli_writes_geography_without_kafka(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    path = tmp_path / "geo.csv"
    args = parser.parse_args(["--precincts", "30", "--counties", "3", "--regions", "2", "--write-geography", str(path)])
    assert run_simulate(args, "127.0.0.1:1") == 0
    assert len(Geography.from_csv(path).precincts) == 30
    bad = parser.parse_args(["--counties", "3", "--regions", "5"])
    assert run_simulate(bad, "127.0.0.1:1") == 2
