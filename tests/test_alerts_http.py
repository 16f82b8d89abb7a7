"""Regional isolation of trends and alerts over HTTP, on a real worker: a campaign whose support moves
in two regions raises flags and alerts in both; a regional token sees and acks only its own.

Slow by nature (a broker, a worker process, 18 days of hourly windows for the trend agent): about
a minute and a half.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from config.settings import CANVASS_TOPIC
from streams.broker import EmbeddedBroker
from streams.simulation.world import build_world
from tests.browser import chromium, open_dashboard
from tests.harness import TOKEN, WorkerProcess, call, free_port, produce, wait_for

WORLD = build_world(3, precincts=20, counties=4, regions=2, voters_per_precinct=20)
REGION_A, REGION_B = WORLD.regions  # the shipped config/alerts.yaml has a lead for each
DAYS, SHIFT_FROM = 18, 15  # the detectors watch after two weeks; support moves in the last three days


def canvass_events(end: datetime, seed: int) -> list[tuple[str, bytes, bytes]]:
    """Walk IDs 09:00-21:00 UTC in every precinct, support 50%; from SHIFT_FROM on, region A +25 points
    and region B -25 points."""
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=DAYS)
    messages = []
    for day in range(DAYS):
        for precinct in WORLD.precincts:
            shift = 0.0
            if day >= SHIFT_FROM:
                shift = 0.25 if precinct.region == REGION_A else -0.25
            for hour in range(9, 21):
                for _ in range(rng.poisson(3.0)):
                    at = start + timedelta(days=day, hours=hour, seconds=float(rng.uniform(0, 3599)))
                    if at >= end:
                        continue
                    support = rng.random() < 0.5 + shift
                    event = {
                        "event_id": str(uuid.uuid4()), "event_type": CANVASS_TOPIC, "schema_version": 1,
                        "occurred_at": at.isoformat(), "source_system": "minivan",
                        "voter_id": f"X{rng.integers(10**9)}", "household_id": None,
                        "precinct_id": precinct.precinct_id, "canvasser_id": "c1", "team_id": "t1", "turf_id": None,
                        "contact_type": "walk", "result": "canvassed",
                        "support_level": 1 if support else 4, "responses": None, "gps": None, "notes": None,
                    }  # fmt: skip
                    messages.append((CANVASS_TOPIC, precinct.precinct_id.encode(), json.dumps(event).encode()))
    return messages


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    geography = tmp_path / "geography.csv"
    WORLD.write_geography_csv(geography)
    env = {"GROUNDSWELL_TRENDS__INTERVAL_S": "1", "GROUNDSWELL_TRENDS__GRACE_S": "0"}
    with EmbeddedBroker(free_port(), tmp_path / "broker.log") as broker:
        running = WorkerProcess(broker.bootstrap, tmp_path / "data", geography, extra_env=env).start()
        try:
            yield running
        finally:
            running.stop()


def test_regional_staff_see_and_ack_only_their_regions_alerts(worker: WorkerProcess) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    produce(worker.bootstrap, canvass_events(end, seed=1))

    def alerts_in_both() -> bool:
        status, body = call(worker, "GET", "/api/v1/alerts?limit=1000", TOKEN)
        return status == 200 and {a["region"] for a in body["alerts"]} >= {REGION_A, REGION_B}

    wait_for(alerts_in_both, 300, "alerts in both regions", interval_s=2.0)
    status, everything = call(worker, "GET", "/api/v1/alerts?limit=1000", TOKEN)
    status, created = call(worker, "POST", "/api/v1/tokens", TOKEN, {"name": "rita", "role": "regional",
                                                                       "regions": [REGION_A]})  # fmt: skip
    assert status == 201, created
    regional = created["token"]

    # Reads: region A only, filtered by the server.
    status, mine = call(worker, "GET", "/api/v1/alerts?limit=1000", regional)
    assert status == 200 and mine["alerts"] and {a["region"] for a in mine["alerts"]} == {REGION_A}
    assert {a["alert_id"] for a in mine["alerts"]} == {a["alert_id"] for a in everything["alerts"]
                                                       if a["region"] == REGION_A}  # fmt: skip
    status, trends = call(worker, "GET", "/api/v1/trends?limit=1000", regional)
    assert status == 200 and trends["flags"] and {f["region"] for f in trends["flags"]} == {REGION_A}
    status, all_trends = call(worker, "GET", "/api/v1/trends?limit=1000", TOKEN)
    assert {f["region"] for f in all_trends["flags"]} >= {REGION_A, REGION_B}

    # Acks: another region's alert answers like a missing one and stays unacked.
    theirs = next(a for a in everything["alerts"] if a["region"] == REGION_B)
    status, body = call(worker, "POST", f"/api/v1/alerts/{theirs['alert_id']}/ack", regional)
    assert status == 404, body
    status, missing = call(worker, "POST", "/api/v1/alerts/0123456789abcdef/ack", regional)
    assert status == 404 and set(body) == set(missing)  # indistinguishable from an unknown id
    status, after = call(worker, "GET", f"/api/v1/alerts?flag_id={quote(theirs['flag_id'])}&limit=1000", TOKEN)
    assert after["alerts"] and all(a["acked_by"] is None for a in after["alerts"])

    ours = mine["alerts"][0]
    status, body = call(worker, "POST", f"/api/v1/alerts/{ours['alert_id']}/ack", regional)
    assert status == 200 and body["outcome"] == "acked" and body["acked_by"] == "rita", body
    status, again = call(worker, "POST", f"/api/v1/alerts/{ours['alert_id']}/ack", TOKEN)
    assert status == 200 and again["outcome"] == "already_acked" and again["acked_by"] == "rita"
    status, stored = call(worker, "GET", f"/api/v1/alerts?flag_id={quote(ours['flag_id'])}&limit=1000", regional)
    acked = next(a for a in stored["alerts"] if a["alert_id"] == ours["alert_id"])
    assert acked["acked_by"] == "rita" and acked["acked_at"]

    # The same, as regional staff see it in the dashboard: their region's alerts only, and the
    # Acknowledge button stores an ack under their token's name.
    status, created = call(worker, "POST", "/api/v1/tokens", TOKEN, {"name": "sam", "role": "regional",
                                                                       "regions": [REGION_A]})  # fmt: skip
    errors: list[str] = []
    with chromium() as browser:
        page = open_dashboard(browser, worker.port, created["token"], errors)
        page.wait_for_selector("#alerts li.alert", timeout=15_000)
        regions = page.eval_on_selector_all("#alerts li.alert", "els => els.map(e => e.dataset.region)")
        assert regions and set(regions) == {REGION_A}
        button = page.wait_for_selector("#alerts li.alert[data-acked=false] button.ack")
        assert button is not None
        pressed = str(button.get_attribute("data-ack")).split()
        button.click()
        page.wait_for_function(
            "ids => ids.every(id => !document.querySelector(`#alerts button.ack[data-ack~='${id}']`))", arg=pressed
        )
    status, listed = call(worker, "GET", "/api/v1/alerts?limit=1000", TOKEN)
    by_id = {a["alert_id"]: a for a in listed["alerts"]}
    assert pressed and all(by_id[i]["acked_by"] == "sam" for i in pressed)
    assert all(a["acked_by"] is None for a in listed["alerts"] if a["region"] == REGION_B)
    assert not errors
