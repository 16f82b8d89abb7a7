"""The linking agent against a real chDB warehouse: signups and email events stored by the ingest
path (validation, identity capture, token-carrying writes), a real voter file, and the agent's
ticks. Expected links come from the simulator's truth and expected counts from a plain Python
tally over the links and the world's precincts, never from the agent's own tables."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Message

from config.settings import EMAIL_TOPIC, SIGNUP_TOPIC, LinkingSettings, load_settings
from sinks.clickhouse.client import Warehouse, connect
from sinks.clickhouse.links import EventBatch, LinkStore, Review, VoterPlaces
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.scoring import Position
from sinks.clickhouse.voters import VoterStore
from sinks.clickhouse.writer import RawBatchWriter
from sinks.metrics import PipelineMetrics
from streams.dedup import EventIdWindow
from streams.identity_capture import IdentityCapture
from streams.linking import LinkingAgent, decisions_in_force
from streams.pii import PiiHasher
from streams.processing import EventProcessor
from streams.simulation.identities import IdentitySimulator, SimPerson
from streams.simulation.voter_export import voter_file_table
from streams.simulation.world import World, build_world
from streams.voter_load import DirectSink, load_voter_file

SECRET = "test-secret-0123456789abcdef"
SETTINGS = load_settings(secret=SECRET)
WORLD = build_world(5, precincts=12, counties=2, regions=2, voters_per_precinct=60)
SIM = IdentitySimulator(WORLD)
AGENT_SETTINGS = LinkingSettings(min_training_people=50, training_u_pairs=20_000, training_address_u_pairs=200_000)
NOW = datetime.now(UTC)
_encode = msgspec.json.Encoder()


def signup_json(person: SimPerson, at: datetime) -> bytes:
    fields = ("given_name", "family_name", "email", "phone", "address_line1", "birth_year")
    body: dict[str, Any] = {f: getattr(person, f) for f in fields}
    body["zip5"] = person.zip5[:5] if person.zip5 else None  # the contract's zip5: a ZIP+4 form keeps five
    if not body["email"] and not body["phone"]:
        body["phone"] = "+16145550100"
    event = {"event_id": str(uuid.uuid4()), "event_type": SIGNUP_TOPIC, "schema_version": 1,
             "occurred_at": at.isoformat(), "source_system": "action_network", "action_type": "form_submission",
             "person": body}  # fmt: skip
    return json.dumps(event).encode()


def email_json(email: str, kind: str, mailing: str, at: datetime, voter_id: str | None = None) -> bytes:
    event = {"event_id": str(uuid.uuid4()), "event_type": EMAIL_TOPIC, "schema_version": 1,
             "occurred_at": at.isoformat(), "source_system": "actionkit", "kind": kind, "mailing_id": mailing,
             "email": email, "voter_id": voter_id}  # fmt: skip
    return json.dumps(event).encode()


class Ingest:
    """The ingest path of one partition per topic, without Kafka: validate, capture, write with tokens."""

    def __init__(self, client: Client, warehouse: Warehouse) -> None:
        self.writer = RawBatchWriter(client, warehouse)
        self.geography = WORLD.geography()
        self.offsets: Counter[str] = Counter()
        self.windows = {t: EventIdWindow(100_000) for t in (SIGNUP_TOPIC, EMAIL_TOPIC)}

    def send(self, topic: str, values: list[bytes]) -> int:
        first = self.offsets[topic]
        records = [Message(topic=topic, partition=0, offset=first + i, key=b"k", value=v,
                           timestamp=(1, int(NOW.timestamp() * 1000))) for i, v in enumerate(values)]  # fmt: skip
        processed = EventProcessor(topic, SETTINGS, self.geography).process(0, records, self.windows[topic])
        assert not processed.rejected, [r.reason_text for r in processed.rejected]
        side: tuple[tuple[str, bytes], ...] = ()
        if topic == SIGNUP_TOPIC:
            side = (("signup_identities", _encode.encode_lines(IdentityCapture().rows(processed.rows, records))),)
        token = f"test/{topic}/0/{first}-{first + len(values) - 1}"
        table = "raw_signups" if topic == SIGNUP_TOPIC else "raw_email"
        self.writer.write(table, token, _encode.encode_lines(processed.rows), [], side)
        self.offsets[topic] += len(values)
        return len(processed.rows)


def load_voters(world: World, client: Client, warehouse: Warehouse, path: Path) -> None:
    pa_csv.write_csv(voter_file_table(world), path)
    report = load_voter_file(path, world.geography(), SECRET.encode(), DirectSink(VoterStore(client, warehouse)))
    assert report.rows_loaded == world.n_voters


@pytest.fixture
def setup(warehouse: Warehouse, tmp_path: Path) -> Iterator[tuple[Client, Warehouse, Ingest]]:
    client = connect(warehouse)
    migrate(client, warehouse, "UTC")
    load_voters(WORLD, client, warehouse, tmp_path / "voters.csv")
    yield client, warehouse, Ingest(client, warehouse)
    client.close()


def agent_for(client: Client, warehouse: Warehouse) -> LinkingAgent:
    store = LinkStore(client, warehouse)

    async def run(fn: Any) -> Any:
        return fn(store)

    return LinkingAgent(run, AGENT_SETTINGS)


def drain(agent: LinkingAgent) -> None:
    async def go() -> None:
        for _ in range(50):
            outcome = await agent.tick()
            if outcome.status == "linking" and outcome.signups == 0 and outcome.email_events == 0:
                return

    asyncio.run(go())


def links(client: Client, kind: str = "signup") -> dict[str, tuple[str, str, str]]:
    rows = client.query(f"SELECT record_id, status, voter_id, decided_by FROM links FINAL "
                        f"WHERE record_kind = '{kind}'").result_rows  # fmt: skip
    return {r: (s, v, d) for r, s, v, d in rows}


def linked_by_precinct(client: Client, measure: str = "linked_signups") -> Counter[str]:
    rows = client.query(f"SELECT precinct_id, sum({measure}) FROM metrics_linked_precinct_1d "
                        f"GROUP BY precinct_id").result_rows  # fmt: skip
    return Counter({p: int(n) for p, n in rows if n})


def expected_by_precinct(matched_voters: list[str]) -> Counter[str]:
    """An independent tally: each matched record counts once, in its voter's precinct in the world."""
    index = {World.voter_id(i): i for i in range(WORLD.n_voters)}
    return Counter(WORLD.precincts[int(WORLD.voter_precinct[index[v]])].precinct_id for v in matched_voters)


def signup_truth(client: Client, people: list[SimPerson]) -> dict[str, str | None]:
    """record id (event id) → true voter, through the signup's identity (given name + hash are unique here)."""
    rows = client.query("SELECT toString(event_id), kafka_offset FROM signup_identities").result_rows
    by_offset = {int(o): e for e, o in rows}
    return {by_offset[i]: p.true_voter_id for i, p in enumerate(people)}


def test_signups_link_count_once_and_replay_changes_nothing(setup: tuple[Client, Warehouse, Ingest]) -> None:
    client, warehouse, ingest = setup
    people = SIM.signups(400, seed=3)
    assert ingest.send(SIGNUP_TOPIC, [signup_json(p, NOW - timedelta(hours=2)) for p in people]) == len(people)
    agent = agent_for(client, warehouse)
    drain(agent)

    found = links(client)
    truth = signup_truth(client, people)
    assert set(found) == set(truth)  # every signup has exactly one current link
    matched = {r: v for r, (s, v, _) in found.items() if s == "matched"}
    right = sum(truth[r] == v for r, v in matched.items())
    on_file = sum(v is not None for v in truth.values())
    assert right / len(matched) >= 0.97  # precision on the simulator's truth
    assert len(matched) >= 0.6 * on_file
    assert any(s == "ambiguous" for s, _, _ in found.values())  # some go to review

    # Linked signups count in the linked voter's precinct, each once.
    assert linked_by_precinct(client) == expected_by_precinct(list(matched.values()))
    history = client.query("SELECT count() FROM link_history").result_rows[0][0]
    assert history == len(found)

    # The one-profile view: each linked voter once, with their file identity, records and history.
    profiles = client.query("SELECT voter_id, family_name, precinct_id, signup_records, signups, length(records), "
                            "length(match_history) FROM people").result_rows  # fmt: skip
    per_voter = Counter(matched.values())
    assert {row[0]: row[3] for row in profiles} == per_voter
    file = {World.voter_id(i): i for i in range(WORLD.n_voters)}
    for voter_id, family, precinct, records, signups, n_records, n_history in profiles:
        i = file[voter_id]
        assert family == SIM.voter_file.family_name[i]
        assert precinct == WORLD.precincts[int(WORLD.voter_precinct[i])].precinct_id
        assert signups == records == n_records == n_history == per_voter[voter_id]

    # A crash before the checkpoint: a fresh agent with no saved position replays every batch.
    client.command("TRUNCATE TABLE link_state")
    replayed = agent_for(client, warehouse)
    drain(replayed)
    assert links(client) == found
    assert client.query("SELECT count() FROM link_history").result_rows[0][0] == history
    assert linked_by_precinct(client) == expected_by_precinct(list(matched.values()))


def test_reviews_move_counts_exactly_once_and_survive_a_voter_file_reload(
    setup: tuple[Client, Warehouse, Ingest], tmp_path: Path
) -> None:
    client, warehouse, ingest = setup
    people = SIM.signups(300, seed=4)
    ingest.send(SIGNUP_TOPIC, [signup_json(p, NOW - timedelta(hours=1)) for p in people])
    agent = agent_for(client, warehouse)
    drain(agent)
    store = LinkStore(client, warehouse)
    queue = store.review_queue(100)
    assert queue and all(link.status == "ambiguous" and link.candidates for link, _ in queue)

    # Accept an ambiguous record's second candidate; reject a matched record's voter.
    accepted_link = next(link for link, _ in queue if len(link.candidates) >= 2)
    accepted_voter = accepted_link.candidates[1][0]
    found = links(client)
    rejected_id, (_, rejected_voter, _) = next((r, x) for r, x in sorted(found.items()) if x[0] == "matched")
    before = linked_by_precinct(client)
    at = datetime.now(UTC)
    store.add_review(Review(uuid.uuid4().hex, "signup", accepted_link.record_id, accepted_voter, "accept", "ana", at))
    store.add_review(Review(uuid.uuid4().hex, "signup", rejected_id, rejected_voter, "reject", "ana", at))
    drain(agent)

    after = links(client)
    assert after[accepted_link.record_id] == ("matched", accepted_voter, "reviewer")
    assert after[rejected_id][1] != rejected_voter
    matched = [v for s, v, _ in after.values() if s == "matched"]
    assert linked_by_precinct(client) == expected_by_precinct(matched)
    # Exactly once: the accepted signup adds one; the rejected one leaves its voter's precinct (and
    # counts again only if the matcher found it another voter).
    delta = sum(linked_by_precinct(client).values()) - sum(before.values())
    assert delta == 1 - (after[rejected_id][0] != "matched")

    # A voter-file reload (one voter moved to another precinct): decisions stand, counts follow the file.
    table = voter_file_table(WORLD)
    moved_voter = accepted_voter
    row = table.column("voter_id").to_pylist().index(moved_voter)
    precincts = table.column("precinct_id").to_pylist()
    old_precinct = precincts[row]
    new_precinct = next(p.precinct_id for p in WORLD.precincts if p.precinct_id != old_precinct)
    precincts[row] = new_precinct
    table = table.set_column(table.schema.get_field_index("precinct_id"), "precinct_id", pa.array(precincts))
    pa_csv.write_csv(table, tmp_path / "voters2.csv")
    load_voter_file(tmp_path / "voters2.csv", WORLD.geography(), SECRET.encode(),
                    DirectSink(VoterStore(client, warehouse)))  # fmt: skip
    restarted = agent_for(client, warehouse)  # a restart too: everything comes from the warehouse
    drain(restarted)
    reloaded = links(client)
    assert reloaded[accepted_link.record_id] == ("matched", accepted_voter, "reviewer")
    assert reloaded[rejected_id][1] != rejected_voter
    by_precinct = linked_by_precinct(client)
    expected = expected_by_precinct([v for s, v, _ in reloaded.values() if s == "matched"])
    n_moved = sum(v == moved_voter for s, v, _ in reloaded.values() if s == "matched")
    expected[old_precinct] -= n_moved
    expected[new_precinct] += n_moved
    assert by_precinct == +expected


def test_email_people_link_by_email_or_supplied_voter(setup: tuple[Client, Warehouse, Ingest]) -> None:
    client, warehouse, ingest = setup
    people = SIM.email_people(150, seed=5)
    ingest.send(SIGNUP_TOPIC, [signup_json(p, NOW - timedelta(hours=3)) for p in SIM.signups(60, seed=6)])
    values = []
    for p in people:
        assert p.email
        values.append(email_json(p.email, "send", "M1", NOW - timedelta(hours=2)))
        values.append(email_json(p.email, "open", "M1", NOW - timedelta(hours=1)))
    supplied = World.voter_id(7)
    values.append(email_json("someone@example.org", "click", "M1", NOW - timedelta(minutes=30), supplied))
    ingest.send(EMAIL_TOPIC, values)
    drain(agent_for(client, warehouse))

    found = links(client, "email")
    hasher = PiiHasher(SECRET.encode())
    owners: dict[str, set[str | None]] = {}
    for p in people:  # housemates may share an address: such an email is one person record
        owners.setdefault(hasher.email(p.email), set()).add(p.true_voter_id)
    assert set(found) == {*owners, hasher.email("someone@example.org")}
    assert found[hasher.email("someone@example.org")] == ("matched", supplied, "sender")
    # Email events carry an address and nothing else, so the best any matcher can do is the one voter
    # the file lists under that address (none or several: not matched). Reference from the clear file:
    listed: dict[str, list[str]] = {}
    for voter_id, email in zip(SIM.voter_file.voter_id, SIM.voter_file.email, strict=True):
        if email:
            listed.setdefault(hasher.email(email), []).append(voter_id)
    matched = {r: v for r, (s, v, _) in found.items() if s == "matched" and r in owners}
    assert matched == {h: listed[h][0] for h in owners if len(listed.get(h, [])) == 1}
    # Against the truth that is mostly right; the misses are people using a housemate's address.
    truth = {h: next(iter(v)) for h, v in owners.items() if len(v) == 1}
    assert sum(truth.get(r) == v for r, v in matched.items()) / len(matched) >= 0.8
    # Every event of a matched person counts in their voter's precinct: each sender's send, and one
    # unique open per address and mailing (housemates sharing an address open as one recipient).
    sends = [matched[h] for p in people if (h := hasher.email(p.email)) in matched]
    assert linked_by_precinct(client, "linked_email_sends") == expected_by_precinct(sends)
    assert linked_by_precinct(client, "linked_email_human_opens") == expected_by_precinct(list(matched.values()))
    assert linked_by_precinct(client, "linked_email_clicks") == expected_by_precinct([supplied])


def test_decisions_in_force_latest_per_pair() -> None:
    t = datetime(2026, 10, 1, tzinfo=UTC)

    def review(voter: str, decision: str, minutes: int) -> Review:
        return Review(f"{voter}{minutes}", "signup", "r1", voter, decision, "ana", t + timedelta(minutes=minutes))

    d = decisions_in_force([review("V1", "accept", 1), review("V1", "reject", 2), review("V2", "reject", 3)])
    assert d[("signup", "r1")].accepted is None and d[("signup", "r1")].rejected == {"V1", "V2"}
    d = decisions_in_force([review("V1", "reject", 1), review("V1", "accept", 2)])
    assert d[("signup", "r1")].accepted == "V1" and d[("signup", "r1")].rejected == set()
    d = decisions_in_force([review("V2", "accept", 2), review("V1", "accept", 1)])
    assert d[("signup", "r1")].accepted == "V2"


def agent_with_metrics(client: Client, warehouse: Warehouse, metrics: PipelineMetrics) -> LinkingAgent:
    store = LinkStore(client, warehouse)

    async def run(fn: Any) -> Any:
        return fn(store)

    return LinkingAgent(run, AGENT_SETTINGS, metrics=metrics)


def test_sender_voter_id_links_alone_unless_off_file_or_rejected(setup: tuple[Client, Warehouse, Ingest]) -> None:
    """An email event's voter_id links its address to that voter when the voter is on the file, with no
    other identity field and over the model's own choice; an unknown id or a rejected pair does not."""
    client, warehouse, ingest = setup
    ingest.send(SIGNUP_TOPIC, [signup_json(p, NOW - timedelta(hours=3)) for p in SIM.signups(60, seed=8)])
    file = SIM.voter_file
    listed = Counter(e for e in file.email if e)
    unique = [i for i, e in enumerate(file.email) if e and listed[e] == 1]  # the model links these by email
    on_file, other = World.voter_id(3), file.voter_id[unique[1]]
    listed_email = file.email[unique[0]]
    assert listed_email and other != file.voter_id[unique[0]]
    sends = {
        "nobody-listed@example.org": on_file,  # an address the file does not have
        "unknown-voter@example.org": "V99999999",  # a voter not on the file
        listed_email: other,  # the file lists this address under another voter
    }
    # The listed address is first seen without a voter_id: the model links it to the file's voter.
    ingest.send(EMAIL_TOPIC, [email_json(listed_email, "send", "M8", NOW - timedelta(hours=2))])
    agent = agent_for(client, warehouse)
    drain(agent)
    hasher = PiiHasher(SECRET.encode())
    assert links(client, "email")[hasher.email(listed_email)] == ("matched", file.voter_id[unique[0]], "model")
    ingest.send(EMAIL_TOPIC, [email_json(e, "send", "M9", NOW - timedelta(hours=1), v) for e, v in sends.items()])
    drain(agent)

    found = links(client, "email")
    assert found[hasher.email("nobody-listed@example.org")] == ("matched", on_file, "sender")
    _, voter, by = found[hasher.email("unknown-voter@example.org")]
    assert voter != "V99999999" and by == "model"
    assert found[hasher.email(listed_email)] == ("matched", other, "sender")

    # A reviewer turns the sender's voter down: the pair is never linked again, even though the
    # sender keeps sending it; the address falls back to the model (which knows nothing of it).
    record = hasher.email("nobody-listed@example.org")
    LinkStore(client, warehouse).add_review(Review(uuid.uuid4().hex, "email", record, on_file, "reject", "ana",
                                                   datetime.now(UTC)))  # fmt: skip
    drain(agent)
    ingest.send(EMAIL_TOPIC, [email_json("nobody-listed@example.org", "open", "M9", NOW, on_file)])
    drain(agent)
    assert links(client, "email")[record] == ("unmatched", "", "model")
    # The sender's link moved the listed address's earlier send too; the rejected one counts nowhere.
    assert linked_by_precinct(client, "linked_email_sends") == expected_by_precinct([other, other])


def test_metrics_follow_the_links_table(setup: tuple[Client, Warehouse, Ingest]) -> None:
    client, warehouse, ingest = setup
    ingest.send(SIGNUP_TOPIC, [signup_json(p, NOW - timedelta(hours=2)) for p in SIM.signups(300, seed=12)])
    people = SIM.email_people(80, seed=13)
    ingest.send(EMAIL_TOPIC, [email_json(p.email or "", "send", "M1", NOW - timedelta(hours=1)) for p in people])
    metrics = PipelineMetrics()
    agent = agent_with_metrics(client, warehouse, metrics)
    drain(agent)

    def stored() -> Counter[tuple[str, str, str]]:
        rows = client.query("SELECT record_kind, status, method, count() FROM links FINAL "
                            "GROUP BY record_kind, status, method").result_rows  # fmt: skip
        return Counter({(k, s, m): int(n) for k, s, m, n in rows})

    def counted() -> Counter[tuple[str, str, str]]:
        out: Counter[tuple[str, str, str]] = Counter()
        for family in metrics.registry.collect():
            if family.name == "groundswell_linked_records":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        labels = sample.labels
                        out[(labels["kind"], labels["status"], labels["method"])] += int(sample.value)
        return out

    def ambiguous() -> int:
        return int(client.query("SELECT count() FROM links FINAL WHERE status = 'ambiguous'").result_rows[0][0])

    # Each record was decided once: the counter is the table's tally (labels: kinds, statuses, methods).
    assert counted() == stored()
    assert metrics.registry.get_sample_value("groundswell_link_review_queue") == ambiguous() > 0
    assert (metrics.registry.get_sample_value("groundswell_linking_batch_seconds_count") or 0) >= 1

    # A reviewer accepts an ambiguous link: one decision more, one fewer awaiting review.
    store = LinkStore(client, warehouse)
    link, _ = store.review_queue(1)[0]
    store.add_review(Review(uuid.uuid4().hex, link.record_kind, link.record_id, link.candidates[0][0], "accept",
                            "ana", datetime.now(UTC)))  # fmt: skip
    before = counted()
    drain(agent)
    assert counted() - before == Counter({(link.record_kind, "matched", "review"): 1})
    assert metrics.registry.get_sample_value("groundswell_link_review_queue") == ambiguous()


def test_voter_places_and_positions_match_a_plain_lookup() -> None:
    rng = random.Random(5)
    ids = [f"V{rng.randrange(10**8):08d}" for _ in range(2_000)]
    ids = list(dict.fromkeys(ids))
    places = pa.table({"state": ["OH"] * len(ids), "region": [f"R{i % 3}" for i in range(len(ids))],
                       "county": [f"C{i % 7}" for i in range(len(ids))],
                       "precinct_id": [f"P{i % 50}" for i in range(len(ids))]})  # fmt: skip
    found = VoterPlaces.build(pa.array(ids), places)
    row_of = {v: i for i, v in enumerate(ids)}
    wanted = [*rng.sample(ids, 300), "V1", "", "X" + ids[0], ids[0][:-1]]
    rows = found.rows(wanted).tolist()
    assert rows == [row_of.get(v, -1) if v else -1 for v in wanted]
    for v, row in zip(wanted, rows, strict=True):
        if row >= 0:
            place = found.places.slice(int(found.place_of_row[row]), 1).to_pylist()[0]
            assert place == places.slice(row_of[v], 1).to_pylist()[0]

    # A batch's last event per partition is its new position (reference: a plain scan).
    events = sorted((rng.randrange(4), rng.randrange(10**6)) for _ in range(500))
    at = [datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(len(events))]
    table = pa.table({"kafka_partition": pa.array([p for p, _ in events], pa.uint32()),
                      "kafka_offset": pa.array([o for _, o in events], pa.uint64()),
                      "ingested_at": pa.array(at, pa.timestamp("ms", tz="UTC"))})  # fmt: skip
    expected: dict[int, Position] = {}
    for (partition, offset), when in zip(events, at, strict=True):
        expected[partition] = Position(offset, when)
    assert EventBatch("email", table).last_positions() == expected
