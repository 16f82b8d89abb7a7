"""`groundswell voters load FILE`: read and validate a voter file, send its batches to the warehouse.

Two ways in, one format: straight into ClickHouse (no worker running, or a ClickHouse server), or
through a running worker's HTTP API (embedded mode, where the worker process owns the chDB
directory). Batches travel as Arrow IPC streams in both cases; each carries a token, so a retried
batch changes nothing.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec
import pyarrow as pa

from config.geography import Geography
from sinks.clickhouse.voters import VoterStore, new_version
from streams.voter_file import VoterBatch, VoterFileReader, VoterFileReport, file_sha256

HTTP_RETRIES = 5


class VoterSink(Protocol):
    def insert(self, load_id: str, version: int, batch_index: int, table: pa.Table) -> None: ...

    def finish(self, load_id: str, report: VoterFileReport, started_at: float) -> None: ...


def batch_token(load_id: str, batch_index: int) -> str:
    return f"voters/{load_id}/{batch_index}"


class DirectSink:
    """Into ClickHouse from this process."""

    def __init__(self, store: VoterStore) -> None:
        self._store = store

    def insert(self, load_id: str, version: int, batch_index: int, table: pa.Table) -> None:
        self._store.insert_batch(load_id, version, batch_token(load_id, batch_index), table)

    def finish(self, load_id: str, report: VoterFileReport, started_at: float) -> None:
        self._store.record_load(
            load_id, Path(report.path).name, report.sha256,
            (report.rows_read, report.rows_loaded, report.rows_rejected),
            dict(report.rejected_by_reason), list(report.ignored_columns), started_at,
        )  # fmt: skip


class WorkerSink:
    """Through a running worker: POST /api/v1/voters/batches and /api/v1/voters/loads."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 120.0) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_s

    def insert(self, load_id: str, version: int, batch_index: int, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        headers = {
            "Content-Type": "application/vnd.apache.arrow.stream",
            "X-Load-Id": load_id,
            "X-Load-Version": str(version),
            "X-Batch-Index": str(batch_index),
        }
        self._post("/api/v1/voters/batches", sink.getvalue().to_pybytes(), headers)

    def finish(self, load_id: str, report: VoterFileReport, started_at: float) -> None:
        body = msgspec.json.encode(
            {
                "load_id": load_id, "file_name": Path(report.path).name, "file_sha256": report.sha256,
                "rows_read": report.rows_read, "rows_loaded": report.rows_loaded,
                "rows_rejected": report.rows_rejected, "rejected_by_reason": dict(report.rejected_by_reason),
                "ignored_columns": list(report.ignored_columns), "started_at": started_at,
            }
        )  # fmt: skip
        self._post("/api/v1/voters/loads", body, {"Content-Type": "application/json"})

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(
            self._base + path, data=body, method="POST", headers={**headers, "Authorization": f"Bearer {self._token}"}
        )
        for attempt in range(HTTP_RETRIES + 1):
            try:
                with urllib.request.urlopen(request, timeout=self._timeout):
                    return
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:500]
                if exc.code < 500 or attempt == HTTP_RETRIES:
                    raise RuntimeError(f"worker refused {path}: HTTP {exc.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == HTTP_RETRIES:
                    raise RuntimeError(f"worker at {self._base} did not answer: {exc}") from None
            time.sleep(min(10.0, 0.5 * 2**attempt))  # the same token: a retried batch changes nothing


def load_voter_file(
    path: Path,
    geography: Geography,
    secret: bytes,
    sink: VoterSink,
    batch_rows: int = 100_000,
    progress: Callable[[VoterFileReport, float], None] | None = None,
) -> VoterFileReport:
    """Validate and load the file; the report says what was loaded and why each other row was not."""
    started = time.time()
    reader = VoterFileReader(path, geography, secret, batch_rows)
    report = VoterFileReport(str(path), file_sha256(path), ignored_columns=reader.ignored_columns)
    load_id = uuid.uuid4().hex
    version = new_version()
    batch: VoterBatch
    for batch in reader.batches():
        sink.insert(load_id, version, batch.index, batch.loaded)
        report.add(batch)
        if progress is not None:
            progress(report, time.time() - started)
    sink.finish(load_id, report, started)
    return report


class ProgressLine:
    """A one-line progress display on stderr: rows, rate, and the share of the file when it is known."""

    def __init__(self, expected_rows: int | None) -> None:
        self._expected = expected_rows

    def __call__(self, report: VoterFileReport, elapsed_s: float) -> None:
        rate = report.rows_read / elapsed_s if elapsed_s > 0 else 0.0
        share = ""
        if self._expected:
            done = min(1.0, report.rows_read / self._expected)
            bar = "#" * int(done * 30)
            share = f"[{bar:<30}] {done:4.0%} "
        sys.stderr.write(
            f"\r{share}{report.rows_read:,} rows read, {report.rows_loaded:,} loaded, "
            f"{report.rows_rejected:,} rejected ({rate:,.0f} rows/s)"
        )
        sys.stderr.flush()


def expected_rows(path: Path) -> int | None:
    """Parquet knows its row count; for CSV, estimate from the size of the first lines."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    size = path.stat().st_size
    with path.open("rb") as handle:
        sample = handle.read(1 << 20)
    lines = sample.count(b"\n")
    if lines < 2:
        return None
    return max(1, int(size / (len(sample) / lines)) - 1)


def format_report(report: VoterFileReport) -> str:
    """What a data manager needs: counts, reasons, the first rejected rows (row number and voter_id only)."""
    lines = [
        f"{Path(report.path).name} (sha256 {report.sha256[:12]}…): {report.rows_read:,} rows read, "
        f"{report.rows_loaded:,} loaded, {report.rows_rejected:,} rejected"
    ]
    if report.ignored_columns:
        lines.append(f"ignored columns (not in the voter file format): {', '.join(report.ignored_columns)}")
    for reason, count in report.rejected_by_reason.most_common():
        lines.append(f"  {reason}: {count:,}")
    if report.first_rejections:
        lines.append("first rejected rows (data row number, voter_id, reason):")
        lines += [f"  row {r.row_number}: {r.voter_id or '(empty)'}: {r.reason}" for r in report.first_rejections]
    return "\n".join(lines)


def report_json(report: VoterFileReport) -> dict[str, Any]:
    return {
        "file": Path(report.path).name, "sha256": report.sha256, "rows_read": report.rows_read,
        "rows_loaded": report.rows_loaded, "rows_rejected": report.rows_rejected,
        "rejected_by_reason": dict(report.rejected_by_reason), "ignored_columns": list(report.ignored_columns),
        "first_rejections": [dataclasses.asdict(r) for r in report.first_rejections],
    }  # fmt: skip
