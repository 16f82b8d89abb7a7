"""Scoring in the stream and the model lifecycle, through a running worker (real broker, real chDB)."""

from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from models.scoring import DEFAULT_SPEC, FeatureSpec, FieldSpec, RowHasher
from models.scoring.artifact import ModelArtifact
from streams.broker import EmbeddedBroker
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import ReplayClock
from streams.simulation.voter_export import voter_file_table, write_voter_file
from streams.simulation.world import build_world
from streams.voter_load import WorkerSink, load_voter_file
from tests.harness import ROOT, TOKEN, WorkerProcess, free_port, produce, wait_for

WORLD = build_world(21, precincts=30, counties=3, regions=2, voters_per_precinct=120)
SECRET = "test-secret-0123456789abcdef"


def request(
    worker: WorkerProcess, method: str, path: str, body: bytes | None = None, token: str = TOKEN
) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def offline_model(spec: FeatureSpec = DEFAULT_SPEC, intercept_shift: float = 0.0) -> bytes:
    """What a modeller does in a notebook (docs/modelling.md): fit a logistic regression on hashed
    voter-file features with labels, save an artifact. `intercept_shift` spoils its calibration."""
    table = voter_file_table(WORLD).to_pydict()
    precincts = [WORLD.precincts[i] for i in WORLD.voter_precinct]
    columns = {**table, "county": [p.county for p in precincts], "region": [p.region for p in precincts]}
    features = RowHasher(spec).transform({k: v for k, v in columns.items() if k in spec.columns})
    labels = (np.random.default_rng(3).random(WORLD.n_voters) < WORLD.support).astype(float)
    fitted = LogisticRegression(C=1.0, max_iter=2000).fit(features.to_csr(), labels)
    artifact = ModelArtifact.build(fitted.coef_[0], float(fitted.intercept_[0]) + intercept_shift, spec,
                                   {"description": "scikit-learn LogisticRegression on the voter file"})  # fmt: skip
    return artifact.to_bytes()


def judged(worker: WorkerProcess) -> int:
    health = worker.get("/healthz")[1]
    return int(health["events_accepted"]) + int(health["events_rejected"])


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    geography = tmp_path / "geography.csv"
    WORLD.write_geography_csv(geography)
    with EmbeddedBroker(free_port(), tmp_path / "broker.log") as broker:
        running = WorkerProcess(broker.bootstrap, tmp_path / "data", geography,
                                extra_env={"GROUNDSWELL_SCORING__CHECKPOINT_S": "2"}).start()  # fmt: skip
        try:
            voters = write_voter_file(WORLD, tmp_path / "voters.csv")
            report = load_voter_file(tmp_path / "voters.csv", WORLD.geography(), SECRET.encode(),
                                     WorkerSink(f"http://127.0.0.1:{running.port}", TOKEN))  # fmt: skip
            assert report.rows_loaded == voters
            yield running
        finally:
            running.stop()


def send(worker: WorkerProcess, seed: int, days: float, n: int) -> int:
    events = list(itertools.islice(CampaignGenerator(WORLD, seed, clock=ReplayClock.ending_now(days=days)), n))
    before = judged(worker)
    produce(worker.bootstrap, [(e.topic, e.key, e.value) for e in events])
    wait_for(lambda: judged(worker) >= before + len(events), 90, "the events to be judged")
    return len(events)


def check_calibration_bins(worker: WorkerProcess) -> None:
    """The model panel's reliability bins equal the stream scores of IDs binned here, in Python."""
    rows = worker.sql(
        "SELECT s.alias, s.version, s.score, c.support_level FROM voter_scores AS s FINAL "
        "INNER JOIN raw_canvass AS c ON s.event_id = c.event_id "
        "WHERE s.source = 'stream' AND c.support_level IS NOT NULL"
    )
    expected: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for alias, version, score, level in rows:
        expected.setdefault((alias, version, min(int(float(score) * 10), 9)), []).append((float(score), level <= 2))
    status, body = request(worker, "GET", "/api/v1/models/metrics?calibration_days=60")
    assert status == 200
    got = {(c["alias"], c["version"], b["bin"]): b for c in body["calibration"] for b in c["bins"]}
    assert got.keys() == expected.keys() and sum(b["n"] for b in got.values()) == len(rows) > 0
    for key, pairs in expected.items():
        assert got[key]["n"] == len(pairs)
        assert got[key]["predicted"] == pytest.approx(sum(p for p, _ in pairs) / len(pairs), abs=1e-6)
        assert got[key]["observed"] == pytest.approx(sum(y for _, y in pairs) / len(pairs))
    assert request(worker, "GET", "/api/v1/models/metrics?calibration_days=0")[0] == 400


def test_scores_learning_push_promote_rollback(worker: WorkerProcess) -> None:
    send(worker, seed=1, days=14, n=110_000)  # ~1.3% are IDs: the gate wants 1,000 holdout labels
    on_file_ids = "SELECT count() FROM raw_canvass WHERE voter_id IN (SELECT voter_id FROM voters)"
    wait_for(lambda: worker.sql("SELECT count() FROM voter_scores FINAL WHERE alias = 'champion'")
             == worker.sql(on_file_ids), 90, "every canvass event to be scored once")  # fmt: skip
    status, listing = request(worker, "GET", "/api/v1/models")
    assert status == 200 and listing["aliases"]["champion"] == listing["versions"][0]["version"]
    bootstrap = listing["aliases"]["champion"]
    labels = worker.sql("SELECT count() FROM raw_canvass WHERE support_level IS NOT NULL")[0][0]
    assert labels >= 1000

    def metrics_stored() -> bool:
        rows = request(worker, "GET", "/api/v1/models/metrics")[1]["metrics"]
        return any(m["scope"] == "all" and m["labels"] > 0 for m in rows)

    wait_for(metrics_stored, 30, "prequential metrics to be stored")
    check_calibration_bins(worker)

    def exported() -> bool:
        text = worker.get("/metrics")[1]
        return 'groundswell_model_metric{alias="champion",metric="log_loss",scope="all"}' in str(text)

    wait_for(exported, 30, "the model metrics on /metrics")

    # Hostile and broken pushes are refused, each with its reason.
    assert request(worker, "POST", "/api/v1/models", pickle.dumps({"w": [1.0]}))[0] == 422
    status, body = request(worker, "POST", "/api/v1/models", pickle.dumps({"w": [1.0]}))
    assert "pickle" in body["error"]
    other_spec = FeatureSpec("other-v1", 16, (FieldSpec("party"), FieldSpec("region")))
    status, body = request(worker, "POST", "/api/v1/models", offline_model(other_spec))
    assert status == 422 and "feature_schema" in json.dumps(body["gate"])

    status, body = request(worker, "POST", "/api/v1/models", offline_model(intercept_shift=2.0))
    assert status == 422 and "log_loss" in body["error"]  # far too optimistic: worse than the champion

    # A good model passes the gate against the learning champion, and is promoted with a bulk rescore.
    status, pushed = request(worker, "POST", "/api/v1/models", offline_model())
    assert status == 201, pushed
    version = pushed["version"]
    status, moved = request(worker, "POST", "/api/v1/models/aliases/champion",
                            json.dumps({"version": version[:12], "reason": "test"}).encode())  # fmt: skip
    assert status == 200 and moved["version"] == version and moved["rescored"]["voters"] == WORLD.n_voters
    bulk = worker.sql(f"SELECT count() FROM voter_scores_latest FINAL WHERE version = '{version}' AND source = 'bulk'")
    assert bulk == [[WORLD.n_voters]]

    # Events after the swap are scored by the new champion, each exactly once.
    send(worker, seed=2, days=1, n=6_000)
    wait_for(lambda: worker.sql("SELECT count() FROM voter_scores FINAL WHERE alias = 'champion' AND source = 'stream'")
             == worker.sql(on_file_ids), 90, "the new events to be scored")  # fmt: skip
    per_event = worker.sql("SELECT max(c) FROM (SELECT event_id, count() AS c FROM voter_scores FINAL "
                           "WHERE alias = 'champion' AND source = 'stream' GROUP BY event_id)")  # fmt: skip
    assert per_event == [[1]]
    assert worker.sql(
        f"SELECT count() > 0 FROM voter_scores FINAL WHERE version = '{version}' AND source = 'stream'"
    ) == [[1]]

    status, rolled = request(worker, "POST", "/api/v1/models/aliases/champion/rollback", b"")
    assert status == 200 and rolled["version"] == bootstrap
    assert request(worker, "GET", "/api/v1/models")[1]["aliases"]["champion"] == bootstrap

    # The same through the command line a modeller uses.
    cli = [sys.executable, "-m", "streams.cli", "model"]
    common = ["--url", f"http://127.0.0.1:{worker.port}", "--token", TOKEN]
    listed = subprocess.run([*cli, "list", *common], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert listed.returncode == 0 and bootstrap in listed.stdout
    hostile = worker.data_dir / "model.pkl"
    hostile.write_bytes(pickle.dumps({"w": [1.0]}))
    refused = subprocess.run([*cli, "push", str(hostile), *common], capture_output=True, text=True, cwd=ROOT,
                             timeout=60, check=False)  # fmt: skip
    assert refused.returncode == 1 and "pickle" in refused.stderr

    # Roles: a statistician reads models but cannot push or promote.
    status, created = request(worker, "POST", "/api/v1/tokens",
                              json.dumps({"name": "sam", "role": "statistician"}).encode())  # fmt: skip
    assert status == 201
    assert request(worker, "GET", "/api/v1/models", token=created["token"])[0] == 200
    assert request(worker, "POST", "/api/v1/models", offline_model(), token=created["token"])[0] == 403
