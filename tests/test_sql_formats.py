"""`POST /api/v1/sql` and `groundswell sql` in JSON, CSV and Arrow: the same numbers, the same refusals."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from streams.broker import EmbeddedBroker
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import ReplayClock
from streams.simulation.world import build_world
from tests.harness import TOKEN, WorkerProcess, free_port, produce, wait_for

WORLD = build_world(5, precincts=16, counties=4, regions=2, voters_per_precinct=20)
QUERY = "SELECT county, sum(attempts) AS attempts, sum(ids) AS ids, min(support_rate) AS worst FROM metrics_county_1d "
QUERY += "GROUP BY county ORDER BY county"


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("sql")
    geography = tmp / "geography.csv"
    WORLD.write_geography_csv(geography)
    with EmbeddedBroker(free_port(), tmp / "broker.log") as broker:
        running = WorkerProcess(broker.bootstrap, tmp / "data", geography).start()
        try:
            events = list(
                itertools.islice(CampaignGenerator(WORLD, seed=4, clock=ReplayClock.ending_now(days=2)), 2000)
            )
            produce(running.bootstrap, [(e.topic, e.key, e.value) for e in events])
            health = lambda: running.get("/healthz")[1]  # noqa: E731
            wait_for(lambda: health()["events_accepted"] + health()["events_rejected"] >= len(events), 60, "ingest")
            yield running
        finally:
            running.stop()


def post_sql(worker: WorkerProcess, body: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/api/v1/sql", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"}, method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_json_csv_and_arrow_carry_the_same_rows(worker: WorkerProcess) -> None:
    status, _, raw = post_sql(worker, {"query": QUERY})
    assert status == 200
    body = json.loads(raw)
    assert body["columns"] == ["county", "attempts", "ids", "worst"] and len(body["rows"]) == 5
    expected = [(r[0], int(r[1]), int(r[2]), None if r[3] is None else float(r[3])) for r in body["rows"]]
    assert sum(r[1] for r in expected) > 0

    status, content_type, raw = post_sql(worker, {"query": QUERY, "format": "csv"})
    assert status == 200 and content_type.startswith("text/csv")
    reader = csv.DictReader(io.StringIO(raw.decode()))
    from_csv = [(r["county"], int(r["attempts"]), int(r["ids"]), float(r["worst"]) if r["worst"] else None)
                for r in reader]  # fmt: skip
    assert reader.fieldnames == ["county", "attempts", "ids", "worst"]
    assert from_csv == expected

    status, content_type, raw = post_sql(worker, {"query": QUERY, "format": "arrow"})
    assert status == 200 and content_type == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(raw).read_all()
    assert table.column_names == ["county", "attempts", "ids", "worst"]
    assert [tuple(row.values()) for row in table.to_pylist()] == expected


def test_every_format_refuses_writes_and_bad_requests(worker: WorkerProcess) -> None:
    before = worker.sql("SELECT count() FROM raw_canvass")
    for fmt in ("json", "csv", "arrow"):
        status, _, raw = post_sql(worker, {"query": "INSERT INTO raw_canvass (event_id) VALUES (generateUUIDv4())",
                                           "format": fmt})  # fmt: skip
        assert status == 400 and "readonly" in json.loads(raw)["error"].lower(), (fmt, raw)
    status, _, raw = post_sql(worker, {"query": "SELECT 1", "format": "xlsx"})
    assert status == 400 and "json|csv|arrow" in json.loads(raw)["error"]
    assert worker.sql("SELECT count() FROM raw_canvass") == before  # nothing was written


def test_the_cli_writes_csv_and_arrow_files(worker: WorkerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "GROUNDSWELL_WEB_PORT": str(worker.port), "GROUNDSWELL_ADMIN_TOKEN": TOKEN}
    cli = [str(Path(sys.executable).parent / "groundswell"), "sql", QUERY]
    subprocess.run([*cli, "--format", "csv", "--output", str(tmp_path / "out.csv")], env=env, check=True)
    subprocess.run([*cli, "--format", "arrow", "--output", str(tmp_path / "out.arrow")], env=env, check=True)
    tsv = subprocess.run(cli, env=env, check=True, capture_output=True, text=True).stdout.splitlines()
    rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert tsv[0].split("\t") == rows[0] == ["county", "attempts", "ids", "worst"]
    assert [line.split("\t")[:3] for line in tsv[1:]] == [row[:3] for row in rows[1:]]
    table = pa.ipc.open_stream((tmp_path / "out.arrow").read_bytes()).read_all()
    assert [str(v) for v in table.column("attempts").to_pylist()] == [row[1] for row in rows[1:]]
