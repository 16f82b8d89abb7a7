"""The voter file: validation with reasons, idempotent loads into the real chDB, and the load through a worker."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client

from config.geography import Geography
from sinks.clickhouse.client import Warehouse
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.voters import VoterStore
from streams.broker import EmbeddedBroker
from streams.pii import PiiHasher
from streams.simulation.voter_export import voter_file_table, write_voter_file
from streams.simulation.world import build_world
from streams.voter_file import VoterFileError, VoterFileReader
from streams.voter_load import DirectSink, load_voter_file
from tests.harness import ROOT, TOKEN, WorkerProcess, free_port

SECRET = b"test-secret-0123456789abcdef"
GEO = Geography.from_rows(
    [
        {"precinct_id": "P1", "county": "Cook", "region": "North", "state": "IL", "zip5": "60601"},
        {"precinct_id": "P2", "county": "Will", "region": "South", "state": "IL", "zip5": "60602"},
    ]
)
HEADER = ["voter_id", "precinct_id", "given_name", "family_name", "birth_year", "gender", "party",
          "registration_date", "vote_history", "zip5", "email", "phone", "favourite_colour"]  # fmt: skip
GOOD = ["V1", "P1", "Ana", "Lopez", "1980", "f", "d", "2004-03-01", "G2024;P2024", "60601", "Ana@Example.org",
        "(312) 555-0101", "blue"]  # fmt: skip

# Each bad row differs from a good one in one field, and names the reason it must get.
BAD_ROWS: list[tuple[dict[str, str], str]] = [
    ({"voter_id": ""}, "missing_voter_id"),
    ({"voter_id": "V 9"}, "bad_voter_id"),
    ({"precinct_id": ""}, "missing_precinct_id"),
    ({"precinct_id": "P404"}, "unknown_precinct"),
    ({"birth_year": "19x0"}, "bad_birth_year"),
    ({"birth_year": "1850"}, "bad_birth_year"),
    ({"birth_year": "2020"}, "bad_birth_year"),
    ({"gender": "Q"}, "bad_gender"),
    ({"party": "Green Party!"}, "bad_party"),
    ({"registration_date": "2004-02-30"}, "bad_registration_date"),
    ({"registration_date": "03/01/2004"}, "bad_registration_date"),
    ({"vote_history": "G2024;;P2024"}, "bad_vote_history"),
    ({"zip5": "6060"}, "bad_zip5"),
    ({"given_name": "A" * 129}, "bad_given_name"),
    ({"voter_id": "V1"}, "duplicate_voter_id"),  # V1 is the first (good) row
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def bad_file(tmp_path: Path) -> tuple[Path, list[tuple[int, str]]]:
    rows = [GOOD]
    expected = []
    for n, (change, reason) in enumerate(BAD_ROWS):
        row = dict(zip(HEADER, GOOD, strict=True)) | {"voter_id": f"B{n}"} | change
        rows.append([row[c] for c in HEADER])
        expected.append((len(rows), reason))
    rows.append(["V2", "P2", "", "", "", "", "", "", "", "", "", "", ""])  # every optional field empty: valid
    return write_csv(tmp_path / "voters.csv", rows), expected


def test_each_bad_row_is_rejected_with_its_reason_and_the_rest_is_loaded(tmp_path: Path) -> None:
    path, expected = bad_file(tmp_path)
    reader = VoterFileReader(path, GEO, SECRET, batch_rows=4)  # several batches: duplicates are judged file-wide
    batches = list(reader.batches())
    assert len(batches) == 5
    rejected = sorted((r.row_number, r.reason) for b in batches for r in b.rejected)
    assert rejected == expected
    loaded = pa.concat_tables([b.loaded for b in batches]).to_pylist()
    assert [r["voter_id"] for r in loaded] == ["V1", "V2"]
    ana, empty = loaded
    hasher = PiiHasher(SECRET)
    assert ana["email_hash"] == hasher.email("ana@example.org")
    assert ana["phone_hash"] == hasher.phone("3125550101")
    assert (ana["county"], ana["region"], ana["state"], ana["gender"], ana["party"]) == (
        "Cook",
        "North",
        "IL",
        "F",
        "D",
    )
    assert ana["vote_history"] == ["G2024", "P2024"] and str(ana["registration_date"]) == "2004-03-01"
    assert ana["birth_year"] == 1980
    assert empty["birth_year"] is None and empty["registration_date"] is None and empty["vote_history"] == []
    assert (empty["email_hash"], empty["phone_hash"], empty["county"]) == ("", "", "Will")
    assert reader.ignored_columns == ("favourite_colour",)
    assert "Ana@Example.org" not in repr(loaded) and "555-0101" not in repr(loaded)


def test_a_file_without_required_columns_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "voters.csv"
    path.write_text("voter_id,given_name\nV1,Ana\n")
    with pytest.raises(VoterFileError, match=r"missing required column\(s\) \['precinct_id'\]"):
        VoterFileReader(path, GEO, SECRET)
    with pytest.raises(VoterFileError, match="unknown voter file format"):
        VoterFileReader(tmp_path / "voters.xlsx", GEO, SECRET)


def test_parquet_and_csv_of_the_same_file_load_the_same_rows(tmp_path: Path) -> None:
    world = build_world(5, precincts=12, counties=3, regions=2, voters_per_precinct=40)
    csv_path, parquet_path = tmp_path / "v.csv", tmp_path / "v.parquet"
    write_voter_file(world, csv_path)
    write_voter_file(world, parquet_path)
    assert pq.ParquetFile(parquet_path).schema_arrow.field("birth_year").type == pa.int32()  # typed, not text
    geography = world.geography()
    from_csv = [b.loaded for b in VoterFileReader(csv_path, geography, SECRET, 100).batches()]
    from_parquet = [b.loaded for b in VoterFileReader(parquet_path, geography, SECRET, 100).batches()]
    assert pa.concat_tables(from_csv).equals(pa.concat_tables(from_parquet))
    assert sum(t.num_rows for t in from_csv) == world.n_voters


@pytest.fixture
def store(client: Client, warehouse: Warehouse) -> VoterStore:
    migrate(client, warehouse, "UTC")
    return VoterStore(client, warehouse)


def test_loading_twice_changes_nothing_and_a_later_file_replaces_rows(
    tmp_path: Path, store: VoterStore, client: Client, warehouse: Warehouse
) -> None:
    path, _ = bad_file(tmp_path)
    first = load_voter_file(path, GEO, SECRET, DirectSink(store), batch_rows=3)
    assert (first.rows_read, first.rows_loaded, first.rows_rejected) == (len(BAD_ROWS) + 2, 2, len(BAD_ROWS))
    load_voter_file(path, GEO, SECRET, DirectSink(store), batch_rows=7)  # other batch boundaries, same file
    assert store.count() == 2
    moved = dict(zip(HEADER, GOOD, strict=True)) | {"precinct_id": "P2"}
    later = write_csv(tmp_path / "later.csv", [[moved[c] for c in HEADER]])
    load_voter_file(later, GEO, SECRET, DirectSink(store))
    rows = client.query(
        f"SELECT voter_id, precinct_id, county FROM {warehouse.database}.voters FINAL ORDER BY voter_id"
    )
    assert rows.result_rows == [("V1", "P2", "Will"), ("V2", "P2", "Will")]
    loads = client.query(
        f"SELECT rows_read, rows_loaded, rows_rejected, rejected_by_reason['duplicate_voter_id'] "
        f"FROM {warehouse.database}.voter_file_loads ORDER BY started_at"
    ).result_rows
    assert loads == [(len(BAD_ROWS) + 2, 2, len(BAD_ROWS), 1), (len(BAD_ROWS) + 2, 2, len(BAD_ROWS), 1), (1, 1, 0, 0)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(free_port(), tmp_path / "broker.log") as running:
        yield running


def groundswell(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_load_through_a_running_worker(tmp_path: Path, broker: EmbeddedBroker) -> None:
    """Embedded mode: the worker owns the chDB directory, so the CLI sends its batches over HTTP."""
    world = build_world(3, precincts=20, counties=4, regions=2, voters_per_precinct=60)
    geography = tmp_path / "geography.csv"
    world.write_geography_csv(geography)
    voters = tmp_path / "voters.csv"
    table = voter_file_table(world)
    bad = pa.table({**{c: table.column(c).slice(0, 1) for c in table.column_names},
                    "precinct_id": pa.array(["P9999"])})  # fmt: skip
    pa.csv.write_csv(pa.concat_tables([table, bad.cast(table.schema)]), voters)
    worker = WorkerProcess(broker.bootstrap, tmp_path / "data", geography).start()
    try:
        env: dict[str, Any] = {
            **os.environ,
            "GROUNDSWELL_SECRET": "test-secret-0123456789abcdef",
            "GROUNDSWELL_GEOGRAPHY": str(geography),
            "GROUNDSWELL_DATA_DIR": str(tmp_path / "data"),
        }
        url = f"http://127.0.0.1:{worker.port}"
        refused = groundswell("voters", "load", str(voters), "--url", url, "--token", "wrong", "--quiet", env=env)
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr
        done = groundswell("voters", "load", str(voters), "--url", url, "--token", TOKEN, "--batch-rows", "5000",
                           "--json", "--quiet", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f'"rows_loaded": {world.n_voters}' in done.stdout and '"unknown_precinct": 1' in done.stdout
        assert worker.sql("SELECT count() FROM voters FINAL") == [[world.n_voters]]
        assert worker.sql("SELECT rows_rejected FROM voter_file_loads") == [[1]]
    finally:
        assert worker.stop() == 0
