"""Linking through a running worker (real broker, real chDB): signups produced to Kafka are linked to
the voter file, ambiguous ones are reviewed over HTTP, and decisions survive a restart and a
voter-file reload. Expected links come from the simulator's truth; expected counts from links."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from config.settings import SIGNUP_TOPIC
from streams.broker import EmbeddedBroker
from streams.simulation.identities import IdentitySimulator, SimPerson
from streams.simulation.voter_export import write_voter_file
from streams.simulation.world import build_world
from streams.voter_load import WorkerSink, load_voter_file
from tests.harness import TOKEN, WorkerProcess, free_port, produce, wait_for

WORLD = build_world(9, precincts=12, counties=2, regions=2, voters_per_precinct=60)
SECRET = "test-secret-0123456789abcdef"
FAST_LINKING = {
    "GROUNDSWELL_LINKING__INTERVAL_S": "0.5",
    "GROUNDSWELL_LINKING__MIN_TRAINING_PEOPLE": "50",
    "GROUNDSWELL_LINKING__TRAINING_U_PAIRS": "20000",
    "GROUNDSWELL_LINKING__TRAINING_ADDRESS_U_PAIRS": "200000",
}


def request(
    worker: WorkerProcess, method: str, path: str, body: Any = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def signup_message(person: SimPerson) -> tuple[str, bytes, bytes]:
    fields = ("given_name", "family_name", "email", "phone", "address_line1", "birth_year")
    body: dict[str, Any] = {f: getattr(person, f) for f in fields}
    body["zip5"] = person.zip5[:5] if person.zip5 else None
    if not body["email"] and not body["phone"]:
        body["phone"] = "+16145550100"
    at = datetime.now(UTC) - timedelta(hours=1)
    event = {"event_id": str(uuid.uuid4()), "event_type": SIGNUP_TOPIC, "schema_version": 1,
             "occurred_at": at.isoformat(), "source_system": "action_network", "action_type": "list_signup",
             "source_record_id": person.record_id, "person": body}  # fmt: skip
    return SIGNUP_TOPIC, (body["zip5"] or "00000").encode(), json.dumps(event).encode()


def add_namesakes(path: Path, households: int = 4) -> list[SimPerson]:
    """Gives the second member of a few households the first's given and family name (a father and
    his namesake son) in the voter file at `path`, and returns one signup per pair that gives only
    that name, the zip and an unknown email: evidence that fits both equally, so each goes to
    review. (With realistic names, such cases are otherwise too rare in a world this small.)"""
    header = path.read_text().splitlines()[0].replace('"', "").split(",")
    options = pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True)
    table = pa_csv.read_csv(path, convert_options=options)
    given, email = table.column("given_name").to_pylist(), table.column("email").to_pylist()
    people = []
    for household in range(WORLD.n_households):
        first = int(WORLD.household_first_voter[household])
        if WORLD.household_size[household] < 2 or WORLD.family_name[first] != WORLD.family_name[first + 1]:
            continue
        if (email[first] is None) != (email[first + 1] is None):
            continue  # an email on file for one only would tip the balance (its disagreement counts)
        given[first + 1] = given[first]
        family, zip5 = table.column("family_name")[first].as_py(), table.column("zip5")[first].as_py()
        people.append(SimPerson(f"N{household}", given[first], family, f"namesake{household}@mail.example", None,
                                None, zip5, None, WORLD.voter_id(first), ("namesake",)))  # fmt: skip
        if len(people) == households:
            break
    table = table.set_column(table.schema.get_field_index("given_name"), "given_name", pa.array(given, pa.string()))
    pa_csv.write_csv(table, path)
    return people


def load_voters(worker: WorkerProcess, path: Path) -> None:
    report = load_voter_file(path, WORLD.geography(), SECRET.encode(),
                             WorkerSink(f"http://127.0.0.1:{worker.port}", TOKEN))  # fmt: skip
    assert report.rows_loaded == WORLD.n_voters


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, Path, list[SimPerson]]]:
    geography = tmp_path / "geography.csv"
    WORLD.write_geography_csv(geography)
    write_voter_file(WORLD, tmp_path / "voters.csv")
    namesakes = add_namesakes(tmp_path / "voters.csv")
    with EmbeddedBroker(free_port(), tmp_path / "broker.log") as broker:
        yield broker, tmp_path, namesakes


def start(broker: EmbeddedBroker, tmp_path: Path) -> WorkerProcess:
    return WorkerProcess(
        broker.bootstrap, tmp_path / "data", tmp_path / "geography.csv", extra_env=FAST_LINKING
    ).start()


def current_links(worker: WorkerProcess) -> dict[str, tuple[str, str, str]]:
    rows = worker.sql("SELECT record_id, status, voter_id, decided_by FROM links FINAL WHERE record_kind = 'signup'")
    return {r: (s, v, d) for r, s, v, d in rows}


def test_signups_are_linked_reviewed_and_decisions_survive(
    setup: tuple[EmbeddedBroker, Path, list[SimPerson]],
) -> None:
    broker, tmp_path, namesakes = setup
    worker = start(broker, tmp_path)
    try:
        load_voters(worker, tmp_path / "voters.csv")
        people = IdentitySimulator(WORLD).signups(250, seed=11) + namesakes
        produce(worker.bootstrap, [signup_message(p) for p in people])
        wait_for(lambda: len(current_links(worker)) == len(people), 90, "every signup to be linked")

        # Right voters, judged on the simulator's truth (each event names its person in source_record_id).
        truth = {p.record_id: p.true_voter_id for p in people}
        person_of = dict(worker.sql("SELECT toString(event_id), source_record_id FROM raw_signups"))
        assert len(worker.sql("SELECT event_id FROM signup_identities")) == len(people)
        found = current_links(worker)
        matched = {r: v for r, (s, v, _) in found.items() if s == "matched"}
        assert sum(truth[person_of[r]] == v for r, v in matched.items()) >= 0.97 * len(matched)
        assert len(matched) >= 0.6 * sum(v is not None for v in truth.values())
        linked = worker.sql("SELECT sum(linked_signups) FROM metrics_linked_state_1d")[0][0]
        assert linked == len(matched)  # each matched signup counted once

        # The review queue: who may read it, and what it holds.
        assert request(worker, "GET", "/api/v1/links/review", token=None)[0] == 401
        status, modeller = request(worker, "POST", "/api/v1/tokens", {"name": "mo", "role": "modeller"})
        assert status == 201
        status, refused = request(worker, "GET", "/api/v1/links/review", token=modeller["token"])
        assert status == 403 and refused["error"] == "role 'modeller' may not review links"
        assert request(worker, "GET", "/api/v1/links/review?limit=0")[0] == 400
        status, body = request(worker, "GET", "/api/v1/links/review?limit=1000")
        assert status == 200 and body["queue"]
        ambiguous = {r for r, (s, _, _) in found.items() if s == "ambiguous"}
        assert {item["record_id"] for item in body["queue"]} == ambiguous
        region = WORLD.regions[0]
        status, regional = request(worker, "POST", "/api/v1/tokens",
                                   {"name": "rae", "role": "regional", "regions": [region]})  # fmt: skip
        status, mine = request(worker, "GET", "/api/v1/links/review?limit=1000", token=regional["token"])
        assert status == 200
        assert all(c["region"] == region for item in mine["queue"] for c in item["candidates"])

        # Decisions: bad ones are refused; good ones are applied by the agent.
        item = body["queue"][0]
        accept = item["candidates"][-1]["voter_id"]
        rejected_id = sorted(matched)[0]
        rejected_voter = matched[rejected_id]
        path = f"/api/v1/links/review/{item['record_id']}"
        assert request(worker, "POST", path, {"decision": "maybe", "voter_id": accept})[0] == 400
        assert request(worker, "POST", path, b"not json")[0] == 400
        assert (
            request(worker, "POST", "/api/v1/links/review/nope", {"decision": "accept", "voter_id": accept})[0] == 404
        )
        assert request(worker, "POST", path, {"decision": "accept", "voter_id": "V99999999"})[0] == 404
        assert request(worker, "POST", path, {"decision": "accept", "voter_id": accept})[0] == 202
        status, _ = request(worker, "POST", f"/api/v1/links/review/{rejected_id}",
                            {"decision": "reject", "voter_id": rejected_voter})  # fmt: skip
        assert status == 202

        def applied() -> bool:
            now = current_links(worker)
            return now[item["record_id"]] == ("matched", accept, "reviewer") and now[rejected_id][1] != rejected_voter

        wait_for(applied, 30, "the decisions to be applied")
        assert item["record_id"] not in {
            i["record_id"] for i in request(worker, "GET", "/api/v1/links/review")[1]["queue"]
        }
    finally:
        worker.stop()

    # A restart and a voter-file reload: a new generation links everything again; decisions stand.
    worker = start(broker, tmp_path)
    try:
        load_voters(worker, tmp_path / "voters.csv")
        load_id = worker.sql("SELECT load_id FROM voter_file_loads ORDER BY finished_at DESC LIMIT 1")[0][0]
        relinked = (
            f"SELECT count() FROM links FINAL WHERE record_kind = 'signup' AND startsWith(generation, '{load_id}')"
        )
        wait_for(lambda: worker.sql(relinked)[0][0] == len(people), 90, "every signup to be linked again")
        after = current_links(worker)
        assert after[item["record_id"]] == ("matched", accept, "reviewer")
        assert after[rejected_id][1] != rejected_voter
        matched_now = sum(s == "matched" for s, _, _ in after.values())
        assert worker.sql("SELECT sum(linked_signups) FROM metrics_linked_state_1d")[0][0] == matched_now
    finally:
        worker.stop()
