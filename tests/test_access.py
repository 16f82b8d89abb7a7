"""Tokens and roles: the authority's rules, and token management through a running worker."""

from __future__ import annotations

import itertools
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.auth import Principal, TokenAuthority, TokenGrant, new_token, token_digest
from streams.broker import EmbeddedBroker
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import ReplayClock
from streams.simulation.world import build_world
from tests.harness import TOKEN, WorkerProcess, call, free_port, produce, wait_for

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
WORLD = build_world(3, precincts=20, counties=4, regions=2, voters_per_precinct=20)


def grant(token: str, role: str = "statistician", **changes: Any) -> TokenGrant:
    fields: dict[str, Any] = {"expires_at": None, "revoked_at": None, **changes}
    return TokenGrant("t1", token_digest(token), Principal("ana", role), **fields)


def test_stored_tokens_expire_and_can_be_revoked() -> None:
    auth = TokenAuthority()
    token = new_token()
    auth.load([grant(token, expires_at=NOW + timedelta(days=1))])
    assert auth.authenticate(f"Bearer {token}", now=NOW) == Principal("ana", "statistician")
    assert auth.authenticate(f"Bearer {token}", now=NOW + timedelta(days=1)) is None  # expiry is exclusive
    auth.load([grant(token, revoked_at=NOW)])
    assert auth.authenticate(f"Bearer {token}", now=NOW) is None
    assert auth.authenticate(f"Bearer {token}x", now=NOW) is None
    assert auth.authenticate(token, now=NOW) is None  # not a bearer header
    assert auth.authenticate(None) is None


def test_bootstrap_tokens_survive_a_reload_and_roles_are_checked() -> None:
    auth = TokenAuthority()
    auth.register("boot", Principal("admin", "admin"))
    auth.load([])
    assert auth.authenticate("Bearer boot") == Principal("admin", "admin")
    with pytest.raises(ValueError, match="unknown role"):
        auth.register("x", Principal("eve", "superuser"))
    regional = Principal("rita", "regional", frozenset({"North"}))
    assert regional.may_see_region("North") and not regional.may_see_region("South")
    assert Principal("sam", "statistician").may_see_region("South")


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    geography = tmp_path / "geography.csv"
    WORLD.write_geography_csv(geography)
    with EmbeddedBroker(free_port(), tmp_path / "broker.log") as broker:
        running = WorkerProcess(broker.bootstrap, tmp_path / "data", geography).start()
        try:
            yield running
        finally:
            running.stop()


def judged(worker: WorkerProcess) -> int:
    health = worker.get("/healthz")[1]
    return int(health["events_accepted"]) + int(health["events_rejected"])


def test_tokens_are_created_listed_used_and_revoked_through_the_api(worker: WorkerProcess) -> None:
    status, created = call(worker, "POST", "/api/v1/tokens", TOKEN, {"name": "rita", "role": "regional",
                                                                       "regions": ["Northeast"]})  # fmt: skip
    assert status == 201, created
    secret = created["token"]
    assert created["regions"] == ["Northeast"] and secret.startswith("gs_")

    # The regional token works, but only for what its role allows, and sees its region only.
    events = list(itertools.islice(CampaignGenerator(WORLD, seed=2, clock=ReplayClock.ending_now(days=2)), 3000))
    produce(worker.bootstrap, [(e.topic, e.key, e.value) for e in events])
    wait_for(lambda: judged(worker) >= len(events), 60, "the events to be judged")
    status, everyone = call(worker, "GET", "/api/v1/metrics?level=county&window=1d", TOKEN)
    assert status == 200 and {r["region"] for r in everyone["rows"]} >= {"Northeast", "Northwest"}
    status, mine = call(worker, "GET", "/api/v1/metrics?level=county&window=1d", secret)
    assert status == 200 and mine["rows"] and {r["region"] for r in mine["rows"]} == {"Northeast"}
    status, body = call(worker, "GET", "/api/v1/metrics?level=state&window=1d", secret)
    assert status == 403 and "other regions" in body["error"]
    status, body = call(worker, "POST", "/api/v1/sql", secret, {"query": "SELECT 1"})
    assert status == 403 and "regional" in body["error"]
    assert call(worker, "GET", "/api/v1/tokens", secret)[0] == 403  # not an admin

    status, listed = call(worker, "GET", "/api/v1/tokens", TOKEN)
    assert status == 200 and [t["name"] for t in listed["tokens"]] == ["rita"]
    assert secret not in json.dumps(listed) and token_digest(secret) not in json.dumps(listed)

    for bad, reason in (
        ({"name": "x", "role": "regional"}, "at least one region"),
        ({"name": "x", "role": "regional", "regions": ["Atlantis"]}, "unknown regions"),
        ({"name": "x", "role": "statistician", "regions": ["Northeast"]}, "regional tokens only"),
        ({"name": "x", "role": "root"}, "unknown role"),
        ({"name": "x", "role": "admin", "expires_in_days": -1}, "bad token request"),
    ):
        status, body = call(worker, "POST", "/api/v1/tokens", TOKEN, bad)
        assert status == 400 and reason in body["error"], (bad, body)

    status, revoked = call(worker, "DELETE", f"/api/v1/tokens/{created['token_id']}", TOKEN)
    assert status == 200 and revoked["revoked_at"]
    wait_for(lambda: call(worker, "GET", "/api/v1/metrics?level=region", secret)[0] == 401, 15, "the revocation")
    assert call(worker, "DELETE", "/api/v1/tokens/nosuchtoken", TOKEN)[0] == 404


def test_every_protected_endpoint_refuses_clearly_and_requests_are_timed(worker: WorkerProcess) -> None:
    secrets = {}
    for role in ("statistician", "modeller"):
        status, created = call(worker, "POST", "/api/v1/tokens", TOKEN, {"name": role, "role": role})
        assert status == 201, created
        secrets[role] = created["token"]
    status, created = call(worker, "POST", "/api/v1/tokens", TOKEN, {"name": "r", "role": "regional",
                                                                     "regions": ["Northeast"]})  # fmt: skip
    secrets["regional"] = created["token"]

    refusals = (  # (method, path, body, who, expected status, expected words)
        ("GET", "/api/v1/tokens", None, "modeller", 403, "role 'modeller' may not manage tokens"),
        ("POST", "/api/v1/sql", {"query": "SELECT 1"}, "modeller", 403, "role 'modeller' may not run SQL"),
        ("POST", "/api/v1/models", {}, "statistician", 403, "role 'statistician' may not change models"),
        ("GET", "/api/v1/models", None, "regional", 403, "role 'regional' may not read models"),
        ("POST", "/api/v1/voters/loads", {}, "statistician", 403, "role 'statistician' may not load voter files"),
        ("GET", "/api/v1/alerts", None, "nobody", 401, "missing or invalid bearer token"),
        ("POST", "/api/v1/alerts/no-such-alert/ack", None, "nobody", 401, "missing or invalid bearer token"),
        ("GET", "/api/v1/trends", None, "expired-or-made-up", 401, "missing or invalid bearer token"),
        ("GET", "/api/v1/config", None, "statistician", 403, "role 'statistician' may not read the configuration"),
        ("GET", "/metrics", None, "regional", 403, "role 'regional' may not read pipeline metrics"),
    )
    for method, path, body, who, expected, words in refusals:
        status, answer = call(worker, method, path, secrets.get(who, "gs_made_up"), body)
        assert (status, answer.get("error")) == (expected, words), (method, path, who, answer)

    # An admin reads the configuration, with the tokens and secrets hidden.
    status, config = call(worker, "GET", "/api/v1/config", TOKEN)
    assert status == 200 and config["settings"]["admin_token"] == "**********"
    assert config["settings"]["web_port"] == worker.port
    assert config["geography"]["regions"] == ["Northeast", "Northwest"]
    assert TOKEN not in json.dumps(config) and "test-secret" not in json.dumps(config)

    # Each request above is in /metrics under its route pattern, never its concrete path.
    with urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{worker.port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}),
        timeout=30,
    ) as response:
        exposition = response.read().decode()
    counts: dict[tuple[str, str, str], float] = {}
    for line in exposition.splitlines():
        if line.startswith("groundswell_http_request_seconds_count{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels["route"], labels["method"], labels["status"])
            counts[key] = float(line.rsplit(" ", 1)[1])
    assert counts[("/api/v1/alerts/{alert_id}/ack", "POST", "4xx")] == 1
    assert counts[("/api/v1/tokens", "GET", "4xx")] == 1
    assert counts[("/api/v1/tokens", "POST", "2xx")] == 3
    assert not any("no-such-alert" in route for route, _, _ in counts), counts
