"""bench/ingest: throughput, freshness, start-up and memory of the ingest path, beside a plain Faust agent.

    .venv/bin/python -m bench.ingest [--events 300000] [--rate 10000] [--freshness-seconds 30]

One embedded broker; the same pre-produced simulated campaign (1% malformed) is consumed by
(a) `groundswell worker` (the batch path with exactly-once marks) and (b) bench/faust_baseline.py
(a plain one-event-at-a-time Faust agent), each in its own process and data directory. Then (a)
runs again while events are produced live at `--rate` per second, and freshness is read from the
warehouse per event: `ingested_at` (set by ClickHouse when the batch insert runs; the aggregates
are updated by the same insert) minus `received_at` (the Kafka record timestamp, set by the producer).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import clickhouse_connect

from config.settings import load_settings
from streams.broker import EmbeddedBroker, ensure_topics
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import LiveClock, ReplayClock
from streams.simulation.producer import produce
from streams.simulation.world import build_world

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "gs_bench_token_0123456789abcdef"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(bootstrap: str, data_dir: Path, port: int, group: str) -> dict[str, str]:
    return {
        **os.environ,
        "GROUNDSWELL_KAFKA_URL": f"kafka://{bootstrap}",
        "GROUNDSWELL_DATA_DIR": str(data_dir),
        "GROUNDSWELL_DEMO": "true",
        "GROUNDSWELL_ADMIN_TOKEN": TOKEN,
        "GROUNDSWELL_WEB_PORT": str(port),
        "GROUNDSWELL_INGEST__CONSUMER_GROUP": group,
        "GROUNDSWELL_WORKER_ID": group,
        # What `groundswell up` uses with the embedded broker (IngestSettings.session_timeout).
        "GROUNDSWELL_INGEST__SESSION_TIMEOUT_MS": "3000",
    }


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return dict(json.loads(response.read()))
    except OSError:
        return None


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """Samples a process's resident memory every `interval_s` in a thread (for the soak figures)."""

    def __init__(self, pid: int, interval_s: float = 5.0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._pid, self._interval = pid, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - started, rss_mib(self._pid)))
            self._stop.wait(self._interval)

    def summary(self) -> dict[str, float]:
        """RSS over the run. Growth compares the second and the last quarter of the samples (the first
        quarter is warm-up: caches and the event-id windows fill), per hour between their midpoints."""
        values = [v for _, v in self.samples]
        quarter = len(values) // 4
        growth = float("nan")
        if quarter >= 1:
            second, last = self.samples[quarter : 2 * quarter], self.samples[-quarter:]

            def mean(xs: list[float]) -> float:
                return sum(xs) / len(xs)

            hours = (mean([t for t, _ in last]) - mean([t for t, _ in second])) / 3600
            growth = (mean([v for _, v in last]) - mean([v for _, v in second])) / hours if hours > 0 else growth
        return {
            "samples": len(values), "first_mib": values[0], "last_mib": values[-1], "max_mib": max(values),
            "growth_mib_per_hour_after_warmup": growth,
        }  # fmt: skip


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(
    bootstrap: str, data_dir: Path, expect: int, group: str
) -> tuple[dict[str, float], subprocess.Popen[bytes], int]:
    """Start `groundswell worker`, wait until it has judged `expect` events; leave it running."""
    port = free_port()
    log = (data_dir / "worker.log").open("ab")
    spawned = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env=worker_env(bootstrap, data_dir, port, group),
    )  # fmt: skip
    first = done = None
    judged_at_first = 0
    while done is None:
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}; see {data_dir / 'worker.log'}")
        state = health(port)
        now = time.monotonic()
        if state:
            judged = state["events_accepted"] + state["events_rejected"]
            if first is None and judged > 0:
                first, judged_at_first = now, judged
            if judged >= expect:
                done = now
        time.sleep(0.05)
    assert first is not None and done is not None
    figures = {
        "start_to_first_event_s": first - spawned,
        # Only what was judged after the first observation counts: the first batch is not free.
        "events_per_s": (expect - judged_at_first) / (done - first),
        "peak_rss_mib": peak_rss_mib(process.pid),
    }
    return figures, process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_baseline(bootstrap: str, data_dir: Path, expect: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.faust_baseline", "--bootstrap", bootstrap, "--data-dir", str(data_dir),
         "--expect", str(expect)],
        cwd=ROOT, capture_output=True, timeout=3600, check=False,
    )  # fmt: skip
    # Faust's terminal spinner may leave escape codes in front of the JSON line.
    lines = [line[line.index('{"events"') :] for line in output.stdout.decode().splitlines() if '{"events"' in line]
    if not lines:
        raise SystemExit(f"baseline failed: {(output.stdout + output.stderr).decode()[-2000:]}")
    result = json.loads(lines[-1])
    return {
        "start_to_first_event_s": result["first_event_s"],
        "events_per_s": result["events"] / result["seconds"],
        "peak_rss_mib": result["peak_rss_mib"],
    }


def freshness(data_dir: Path, since_ms: int) -> dict[str, float]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir / 'clickhouse'}")
    parts = " UNION ALL ".join(
        f"SELECT dateDiff('millisecond', received_at, ingested_at) AS ms FROM groundswell.{table} "
        f"WHERE toUnixTimestamp64Milli(received_at) >= {since_ms}"
        for table in ("raw_canvass", "raw_signups", "raw_email")
    )
    row = client.query(f"SELECT count(), quantiles(0.5, 0.95, 0.99)(ms), max(ms) FROM ({parts})").result_rows[0]
    client.close()
    p50, p95, p99 = row[1]
    return {"events": row[0], "p50_s": p50 / 1000, "p95_s": p95 / 1000, "p99_s": p99 / 1000, "max_s": row[2] / 1000}


async def produce_events(bootstrap: str, events: Any, rate: float | None, duration_s: float | None = None) -> Any:
    return await produce(bootstrap, events, rate, duration_s=duration_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--freshness-seconds", type=float, default=30)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--ingest-only", action="store_true",
        help="run the worker with the trend and scoring agents off (ingest alone, as before #3/#4)",
    )  # fmt: skip
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="groundswell-bench-"))
    world = build_world(42)  # the default geography the worker loads
    results: dict[str, Any] = {"events": args.events}
    with EmbeddedBroker(free_port(), work / "broker.log") as broker:
        ensure_topics(load_settings(demo=True), broker.bootstrap)  # as the worker would, from the settings
        clock = ReplayClock.ending_now(days=30)
        events = itertools.islice(CampaignGenerator(world, seed=7, malformed_share=0.01, clock=clock), args.events)
        stats = asyncio.run(produce_events(broker.bootstrap, events, None))
        print(f"pre-produced {stats.sent:,} events in {stats.elapsed_s:.1f}s", flush=True)

        batch_dir = work / "batch"
        batch_dir.mkdir()
        if args.ingest_only:
            os.environ["GROUNDSWELL_TRENDS__ENABLED"] = "false"
            os.environ["GROUNDSWELL_SCORING__ENABLED"] = "false"
        results["ingest_only"] = args.ingest_only
        figures, worker, port = run_worker(broker.bootstrap, batch_dir, stats.sent, "bench-batch")
        results["batch_worker"] = figures
        print(
            f"batch worker:  {figures['events_per_s']:>9,.0f} events/s, first event after "
            f"{figures['start_to_first_event_s']:.2f}s, peak RSS {figures['peak_rss_mib']:.0f} MiB",
            flush=True,
        )

        # Freshness: the same worker, caught up, now fed live at a steady rate.
        since_ms = int(time.time() * 1000)
        live = CampaignGenerator(world, seed=8, malformed_share=0.0, clock=LiveClock())
        with RssSampler(worker.pid) as rss:
            live_stats = asyncio.run(produce_events(broker.bootstrap, live, args.rate, args.freshness_seconds))
        results["worker_rss_during_live"] = rss.summary()
        target = stats.sent + live_stats.sent
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = health(port) or {}
            if state.get("events_accepted", 0) + state.get("events_rejected", 0) >= target:
                break
            time.sleep(0.1)
        results["live_rate_events_per_s"] = live_stats.sent / live_stats.elapsed_s
        results["worker_peak_rss_after_live_mib"] = peak_rss_mib(worker.pid)
        stop(worker)
        results["freshness"] = freshness(batch_dir, since_ms)
        f, m = results["freshness"], results["worker_rss_during_live"]
        print(
            f"freshness at {results['live_rate_events_per_s']:,.0f} events/s over {f['events']:,} events: "
            f"p50 {f['p50_s']:.3f}s  p95 {f['p95_s']:.3f}s  p99 {f['p99_s']:.3f}s  max {f['max_s']:.3f}s",
            flush=True,
        )
        print(
            f"worker RSS while live: {m['first_mib']:.0f} → {m['last_mib']:.0f} MiB (max {m['max_mib']:.0f}), "
            f"growth after warm-up {m['growth_mib_per_hour_after_warmup']:+.0f} MiB/h",
            flush=True,
        )

        if not args.skip_baseline:
            base_dir = work / "baseline"
            base_dir.mkdir()
            # The baseline reads only the pre-produced events (its group starts at the earliest offsets).
            base = run_baseline(broker.bootstrap, base_dir, stats.sent)
            results["faust_baseline"] = base
            print(
                f"faust agent:   {base['events_per_s']:>9,.0f} events/s, first event after "
                f"{base['start_to_first_event_s']:.2f}s, peak RSS {base['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            ratio = figures["events_per_s"] / base["events_per_s"]
            results["throughput_ratio_batch_over_faust"] = ratio
            print(f"ratio batch / faust agent: {ratio:.1f}x", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
