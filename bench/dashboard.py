"""bench/dashboard: the dashboard's API latency and first render over a warehouse of 10M events.

    .venv/bin/python -m bench.dashboard [--events 10000000] [--data-dir DIR] [--reuse] [--rounds 30]
        [--renders 10] [--live-rate 200] [--out results.json]
    .venv/bin/python -m bench.dashboard screenshots [--data-dir DIR] [--reuse] [--out docs/screenshots]

1. **Warehouse**: synthetic raw events written straight into a chDB data directory (a child process:
   one process per chDB directory), `INSERT ... SELECT ... FROM numbers()` in batches of a million
   through clickhouse-connect, so that the materialized views fill the aggregates as ingest does;
   then the parts are merged, as a warehouse that has been running a while is. Each row comes from
   hashes of its number and the seed. Shapes follow the simulator (streams/simulation/campaign.py):
   activity rising towards today, field hours 09:00-21:00, contact rates of 15-35% and support of
   35-65% varying by precinct, an email program. A copy of the geography gets ID goals (goal_ids).
2. **Worker**: an embedded broker and `groundswell worker` on that directory, the trend agent off
   (on a fresh 30-day warehouse it would spend minutes catching up), with a simulated campaign
   producing live events at --live-rate per second, so that ingest and the live poller run throughout.
3. **API**: every request the dashboard makes for a view (state, region, county, precinct; 15-minute,
   hourly and daily charts; today, 7-day and campaign totals), the trend and alert feeds, the live
   stream's first event, and /api/v1/metrics for comparison, timed from this process. Rounds are
   spaced so that a repeated request is never served by the worker's one-second cache (each response
   says X-Cache: hit or miss; the table counts misses only); cache hits are timed apart.
4. **First render**: chromium (Playwright), a fresh browser context each time (empty HTTP cache),
   from navigation start to `window.__dashboardReady` (the first view's table and charts drawn): views
   no one has opened yet, then views opened before, each render past the worker's one-second cache.

`screenshots` runs the same worker with the trend agent on, waits for it to raise flags on the
warehouse's history, and saves the main views (state, county drill-down, precinct time series, a
regional token's view) as PNGs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from bench.ingest import free_port
from bench.ingest import worker_env as ingest_worker_env
from config.geography import Geography
from config.settings import DEFAULT_GEOGRAPHY
from sinks.clickhouse.client import connect, warehouse_from_dsn
from sinks.clickhouse.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "gs_bench_dashboard_token_0123456789"
CHROMIUM = Path(os.environ.get("GROUNDSWELL_CHROMIUM", "/usr/bin/chromium"))


BATCH_ROWS = 1_000_000
# Shares of the events by stream (the simulator's campaign is canvass-heavy, then email).
SHARES = {"raw_canvass": 0.55, "raw_email": 0.35, "raw_signups": 0.10}


@dataclass(frozen=True)
class Spec:
    events: int
    days: int
    seed: int
    timezone: str = "UTC"


def _geography_arrays(geography: Geography) -> str:
    """WITH-clause arrays of the precincts' ids and places (ClickHouse arrays are 1-based)."""
    rows = sorted(geography.precincts.values(), key=lambda p: p.precinct_id)

    def array(values: list[str]) -> str:
        return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"

    return (
        f"{array([p.precinct_id for p in rows])} AS P, {array([p.county for p in rows])} AS C, "
        f"{array([p.region for p in rows])} AS R, {array([p.state for p in rows])} AS S, {len(rows)} AS NP"
    )


def _common(spec: Spec, stream: int, geography: Geography) -> str:
    """Per row: u1..u6 uniform in [0, 1), the precinct index `pi` and the event time `t`."""
    # Days back from today skew towards the present (u^1.6); the time of day is in field hours, and a
    # time later than now today moves into today's hours so far. Seeds and stream ids keep streams apart.
    return f"""
        WITH {_geography_arrays(geography)},
             {spec.seed} AS seed, {stream} AS stream,
             (cityHash64(number, seed, stream, 1) % 1000003) / 1000003 AS u1,
             (cityHash64(number, seed, stream, 2) % 1000003) / 1000003 AS u2,
             (cityHash64(number, seed, stream, 3) % 1000003) / 1000003 AS u3,
             (cityHash64(number, seed, stream, 4) % 1000003) / 1000003 AS u4,
             (cityHash64(number, seed, stream, 5) % 1000003) / 1000003 AS u5,
             (cityHash64(number, seed, stream, 6) % 1000003) / 1000003 AS u6,
             toUInt32(floor(u1 * NP)) + 1 AS pi,
             toStartOfDay(now64(3, '{spec.timezone}'), '{spec.timezone}') AS today,
             toUInt32(floor({spec.days} * pow(u2, 1.6))) AS days_back,
             toDateTime64(today, 3, '{spec.timezone}') - toIntervalDay(days_back)
                 + toIntervalMillisecond(toUInt64((9 + 12 * u3) * 3600000)) AS t0,
             if(t0 > now64(3), greatest(toDateTime64(today, 3, '{spec.timezone}'),
                now64(3) - toIntervalMillisecond(toUInt64(u3 * 12 * 3600000))), t0) AS t,
             (cityHash64(pi, seed) % 1000) / 1000 AS precinct_u
    """


def canvass_sql(spec: Spec, geography: Geography, first: int, count: int) -> str:
    return f"""
        INSERT INTO raw_canvass (event_id, occurred_at, received_at, source_system, voter_id, household_id,
            precinct_id, county, region, state, canvasser_id, contact_type, result, support_level)
        {_common(spec, 1, geography)},
             0.15 + 0.20 * precinct_u AS contact_p,
             0.35 + 0.30 * (cityHash64(pi, seed, 7) % 1000) / 1000 AS support_p,
             multiIf(u4 < 0.70, 'walk', u4 < 0.95, 'phone', 'sms') AS contact_type,
             multiIf(u5 < contact_p, 'canvassed', u5 < contact_p + 0.40, 'not_home', u5 < contact_p + 0.50, 'refused',
                     u5 < contact_p + 0.54, 'moved', u5 < contact_p + 0.55, 'deceased',
                     u5 < contact_p + 0.59, 'wrong_number', u5 < contact_p + 0.61, 'disconnected',
                     'come_back_later') AS result,
             toUInt32(cityHash64(number, seed, 8) % 600) AS voter_in_precinct
        SELECT generateUUIDv4(number), t, t + toIntervalMillisecond(200), 'bench',
               concat('V', toString(pi * 1000 + voter_in_precinct)),
               concat('H', toString(pi * 1000 + intDiv(voter_in_precinct, 2))),
               P[pi], C[pi], R[pi], S[pi], concat('C', toString(pi * 10 + number % 7)), contact_type, result,
               if(result = 'canvassed' AND u6 < 0.9,
                  toUInt8(if(u6 < 0.9 * support_p, 1 + (number % 2), if(u6 < 0.9 * support_p + 0.12, 3,
                          4 + (number % 2)))),
                  NULL)
        FROM numbers({first}, {count})
    """


def email_sql(spec: Spec, geography: Geography, first: int, count: int) -> str:
    return f"""
        INSERT INTO raw_email (event_id, occurred_at, received_at, source_system, kind, mailing_id, variant_id,
            email_hash, voter_id, amount_cents, precinct_id, county, region, state, geo_resolution)
        {_common(spec, 2, geography)},
             multiIf(u4 < 0.62, 'send', u4 < 0.76, 'open', u4 < 0.84, 'machine_open', u4 < 0.88, 'click',
                     u4 < 0.90, 'bounce_soft', u4 < 0.91, 'bounce_hard', u4 < 0.915, 'unsubscribe',
                     u4 < 0.925, 'action', u4 < 0.93, 'donation', u4 < 0.931, 'spam_complaint', 'send') AS kind
        SELECT generateUUIDv4(number), t, t + toIntervalMillisecond(200), 'bench', kind,
               concat('M', toString(toYYYYMMDD(t))), if(u5 < 0.5, 'A', 'B'),
               hex(cityHash64(pi, number % 500)), '', if(kind = 'donation', toUInt64(500 + u6 * 10000), NULL),
               P[pi], C[pi], R[pi], S[pi], 'precinct'
        FROM numbers({first}, {count})
    """


def signups_sql(spec: Spec, geography: Geography, first: int, count: int) -> str:
    return f"""
        INSERT INTO raw_signups (event_id, occurred_at, received_at, source_system, action_type, email_hash,
            zip5, utm_source, utm_medium, precinct_id, county, region, state, geo_resolution)
        {_common(spec, 3, geography)}
        SELECT generateUUIDv4(number), t, t + toIntervalMillisecond(200), 'bench',
               ['form_submission', 'petition_signature', 'event_rsvp', 'list_signup'][1 + number % 4],
               hex(cityHash64(number, seed)), '', ['facebook', 'email', 'sms', 'organic'][1 + toUInt32(u4 * 4)],
               'social', P[pi], C[pi], R[pi], S[pi], 'precinct'
        FROM numbers({first}, {count})
    """


BUILDERS = {"raw_canvass": canvass_sql, "raw_email": email_sql, "raw_signups": signups_sql}


def build(client: Client, spec: Spec, geography: Geography, progress: bool = True) -> dict[str, int]:
    """Insert `spec.events` raw events in batches; returns rows per raw table."""
    counts: dict[str, int] = {}
    for table, share in SHARES.items():
        counts[table] = int(spec.events * share)
    counts["raw_canvass"] += spec.events - sum(counts.values())
    started = time.perf_counter()
    done = 0
    for table, total in counts.items():
        for first in range(0, total, BATCH_ROWS):
            count = min(BATCH_ROWS, total - first)
            client.command(BUILDERS[table](spec, geography, first, count), settings={"max_insert_threads": 2})
            done += count
            if progress:
                rate = done / (time.perf_counter() - started)
                print(f"\r  {done:,} / {spec.events:,} events ({rate:,.0f}/s)", end="", flush=True)
    if progress:
        print()
    return counts


def optimize(client: Client) -> None:
    """Merge every part, as background merges do on a warehouse that has been running a while."""
    for table in ("raw_canvass", "raw_email", "raw_signups", "agg_precinct_15m", "agg_precinct_1h", "agg_precinct_1d"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")


def write_goals(client: Client, geography_path: Path, out: Path, seed: int) -> None:
    """The geography with goal_ids: each precinct's IDs so far times 1.3-2.0 (a campaign part-way to its goals)."""
    rows = client.query("SELECT precinct_id, sum(ids) FROM agg_precinct_1d GROUP BY precinct_id").result_rows
    ids = {str(precinct): int(count) for precinct, count in rows}
    with geography_path.open(newline="") as source, out.open("w", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, [*(reader.fieldnames or []), "goal_ids"], lineterminator="\n")
        writer.writeheader()
        for row in reader:
            factor = 1.3 + 0.7 * random.Random(f"{seed}/{row['precinct_id']}").random()
            writer.writerow({**row, "goal_ids": round(ids.get(row["precinct_id"], 0) * factor)})


def cmd_build(args: argparse.Namespace) -> None:
    warehouse = warehouse_from_dsn(f"chdb://{(args.data_dir / 'clickhouse').resolve()}")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    client = connect(warehouse)
    migrate(client, warehouse, args.timezone)
    spec = Spec(args.events, args.days, args.seed, args.timezone)
    started = time.perf_counter()
    counts = build(client, spec, Geography.from_csv(DEFAULT_GEOGRAPHY))
    built = time.perf_counter()
    optimize(client)
    write_goals(client, DEFAULT_GEOGRAPHY, args.data_dir / "geography.csv", args.seed)
    print(f"built {sum(counts.values()):,} events {counts} in {built - started:.0f} s, "
          f"merged in {time.perf_counter() - built:.0f} s")  # fmt: skip


# --- the worker -----------------------------------------------------------------------------------


def worker_env(bootstrap: str, data_dir: Path, port: int, trends: bool) -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {
        **ingest_worker_env(bootstrap, data_dir, port, "bench-dashboard"),
        "GROUNDSWELL_ADMIN_TOKEN": TOKEN,
        "GROUNDSWELL_GEOGRAPHY": str(data_dir / "geography.csv"),
        "GROUNDSWELL_ELECTION_DAY": (today + timedelta(days=14)).isoformat(),
        # On a fresh 30-day warehouse the trend agent spends minutes catching up: off while measuring.
        "GROUNDSWELL_TRENDS__ENABLED": "true" if trends else "false",
    }


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}; see {log}")
        try:
            status, body, _ = Api(port).get("/healthz")
            if status == 200 and json.loads(body).get("consuming"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the worker did not become healthy; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Api:
    """One keep-alive connection to the worker, as a browser holds one."""

    def __init__(self, port: int, token: str = TOKEN) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._token = token

    def get(self, path: str) -> tuple[int, bytes, str]:
        self._connection.request("GET", path, headers={"Authorization": f"Bearer {self._token}"})
        response = self._connection.getresponse()
        return response.status, response.read(), response.getheader("X-Cache") or ""

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        self._connection.request(
            "POST", path, body=json.dumps(body), headers={"Authorization": f"Bearer {self._token}"}
        )
        response = self._connection.getresponse()
        return response.status, json.loads(response.read())


# --- measuring ------------------------------------------------------------------------------------

VIEWS = [("state", "OH"), ("region", "Northeast"), ("county", "OH/Alder County"), ("precinct", "P0001")]


def dashboard_requests() -> list[tuple[str, str]]:
    """(label, path) of what the page asks for: a view per place, window and period, and its feeds."""
    requests = []
    for level, unit in VIEWS:
        for window in ("15m", "1h", "1d"):
            query = urllib.parse.urlencode({"level": level, "unit": unit, "window": window, "period": "today"})
            requests.append((f"view {level} {window} today", f"/api/v1/dashboard/view?{query}"))
        for period in ("7d", "all"):
            query = urllib.parse.urlencode({"level": level, "unit": unit, "window": "1h", "period": period})
            requests.append((f"view {level} 1h {period}", f"/api/v1/dashboard/view?{query}"))
    requests.append(("trend flags (open)", "/api/v1/trends?status=open&limit=100"))
    requests.append(("alerts", "/api/v1/alerts?limit=200"))
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:00:00Z")
    requests.append(("metrics API county 1h 24h", f"/api/v1/metrics?level=county&window=1h&from={since}"))
    return requests


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99), "max": max(values)}  # fmt: skip


class StreamListener:
    """An open /api/v1/stream, as an open dashboard holds one (it keeps the worker's live poller running)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self.first_event_ms: float | None = None
        self.ticks = 0
        self._stop = False
        import threading

        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StreamListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
        started = time.perf_counter()
        connection.request("GET", "/api/v1/stream", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        while not self._stop:
            line = response.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                if self.first_event_ms is None:
                    self.first_event_ms = (time.perf_counter() - started) * 1000
                self.ticks += 1


@dataclass
class ApiTimes:
    """Latencies (ms) by request label, and by how the worker answered (X-Cache)."""

    by_label: dict[str, list[float]]
    by_answer: dict[str, list[float]]  # X-Cache of the view requests: miss (every query ran) or hit
    unexpected_hits: int


def measure_api(port: int, rounds: int) -> ApiTimes:
    """Each round asks for everything once (as many open dashboards refetching would), then once more for
    each view (a second tab: the response cache). Rounds start 1.2 s apart: the response cache keeps an
    entry one second, so the first request of a round is never served from it."""
    api = Api(port)
    requests = dashboard_requests()
    times = ApiTimes(defaultdict(list), defaultdict(list), 0)
    for _ in range(rounds):
        round_started = time.monotonic()
        for label, path in requests:
            started = time.perf_counter()
            status, _, answer = api.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise SystemExit(f"{path}: HTTP {status}")
            if answer == "hit":
                times.unexpected_hits += 1
                continue
            times.by_label[label].append(elapsed)
            if label.startswith("view"):
                times.by_answer[answer].append(elapsed)
                started = time.perf_counter()
                _, _, answer = api.get(path)
                if answer == "hit":
                    times.by_answer["hit"].append((time.perf_counter() - started) * 1000)
        time.sleep(max(0.0, 1.2 - (time.monotonic() - round_started)))
    return times


def cold_pages() -> list[tuple[str, str]]:
    """Views no one has opened yet (so the worker has nothing of them cached): the landing page first."""
    pages = [("state", f"#window={w}&period=today") for w in ("1h", "15m", "1d")]
    pages += [("region", f"#level=region&unit={r}&window=1h") for r in ("Northwest", "Southeast", "Southwest")]
    pages += [
        ("county", f"#level=county&unit=OH%2F{c}%20County&window=15m") for c in ("Birch", "Cedar", "Dogwood", "Elm")
    ]
    return pages


def render(browser: Any, port: int, fragment: str, token: str = TOKEN) -> float:
    """Navigation start to window.__dashboardReady (ms), in a fresh context: an empty HTTP cache."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(f"sessionStorage.setItem('groundswell.token', {json.dumps(token)})")
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/dashboard{fragment}")
    page.wait_for_function("window.__dashboardReady !== undefined", timeout=30_000)
    ready = float(page.evaluate("window.__dashboardReady"))
    context.close()
    return ready


def measure_renders(browser: Any, port: int, pages: list[tuple[str, str]], repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        for name, fragment in pages:
            results[name].append(render(browser, port, fragment))
            time.sleep(1.2)  # past the response cache's second
    return results


def take_screenshots(browser: Any, port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    status, created = Api(port).post("/api/v1/tokens", {"name": "bench-northeast", "role": "regional",
                                                          "regions": ["Northeast"]})  # fmt: skip
    if status != 201:
        raise SystemExit(f"could not create a regional token: {created}")
    shots = [
        ("state-view", TOKEN, "#window=1h&period=today"),
        ("county-drilldown", TOKEN, "#level=county&unit=OH%2FAlder%20County&window=1h&period=today"),
        ("precinct-time-series", TOKEN, "#level=precinct&unit=P0001&window=15m&period=today"),
        ("regional-view", created["token"], "#window=1d&period=7d"),
    ]
    for name, token, fragment in shots:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(f"sessionStorage.setItem('groundswell.token', {json.dumps(token)})")
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/dashboard{fragment}")
        page.wait_for_function("window.__dashboardReady !== undefined", timeout=30_000)
        page.wait_for_function("document.getElementById('freshness').textContent.startsWith('as of')")
        # The feeds load once the view is drawn.
        page.wait_for_function("['flags', 'alerts'].every(id => document.getElementById(id).children.length > 0)")
        page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
        context.close()


def report(api: ApiTimes, cold: dict[str, list[float]], warm: dict[str, list[float]],
           first_event_ms: float | None) -> dict[str, Any]:  # fmt: skip
    rows = {label: summary(values) for label, values in api.by_label.items()}
    views = [v for label, values in api.by_label.items() if label.startswith("view") for v in values]
    rows["all view requests"] = summary(views)
    answers = {"hit": "view: a second tab (response cache)"}
    for answer, label in answers.items():
        if api.by_answer.get(answer):
            rows[label] = summary(api.by_answer[answer])
    print(f"{'request (ms)':42s} {'n':>5s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'max':>8s}")
    for label, s in rows.items():
        print(f"{label:42s} {s['n']:5d} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f} {s['max']:8.1f}")
    renders = {f"first render, {name} view, nothing cached": summary(v) for name, v in cold.items()}
    renders |= {f"first render, {name}, seen before": summary(v) for name, v in warm.items()}
    for label, s in renders.items():
        print(f"{label:42s} {s['n']:5d} {s['p50']:8.0f} {s['p95']:8.0f} {s['p99']:8.0f} {s['max']:8.0f}")
    if first_event_ms is not None:
        print(f"live stream: first event after {first_event_ms:.0f} ms")
    if api.unexpected_hits:
        print(f"note: {api.unexpected_hits} first requests of a round came from the response cache (not counted)")
    return {"api_ms": rows, "first_render_ms": renders, "stream_first_event_ms": first_event_ms}


def ensure_warehouse(args: argparse.Namespace) -> None:
    if not (args.reuse and (args.data_dir / "geography.csv").exists()):
        subprocess.run([sys.executable, "-m", "bench.dashboard", "build", "--data-dir", str(args.data_dir),
                        "--events", str(args.events), "--days", str(args.days), "--seed", str(args.seed)],
                       cwd=ROOT, check=True)  # fmt: skip


@contextlib.contextmanager
def running_worker(data_dir: Path, live_rate: float, trends: bool) -> Iterator[int]:
    """An embedded broker, `groundswell worker` on the data directory and a live simulated campaign; the port."""
    from config.settings import load_settings
    from streams.broker import EmbeddedBroker, ensure_topics

    port = free_port()
    with EmbeddedBroker(free_port(), data_dir / "broker.log") as broker:
        env = worker_env(broker.bootstrap, data_dir, port, trends)
        ensure_topics(load_settings(kafka_url=f"kafka://{broker.bootstrap}", demo=True), broker.bootstrap)
        log = data_dir / "worker.log"
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, env=env,
                                  stdout=log.open("ab"), stderr=subprocess.STDOUT)  # fmt: skip
        simulator = None
        try:
            wait_healthy(port, worker, log)
            if live_rate > 0:
                simulator = subprocess.Popen(
                    # A random seed: a fixed one re-sends event ids the warehouse already counted (rejected).
                    [sys.executable, "-m", "streams.cli", "simulate", "--rate", str(live_rate)],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(data_dir / "simulate.log").open("ab"),
                )  # fmt: skip
            yield port
        finally:
            if simulator is not None:
                stop(simulator)
            stop(worker)


def cmd_run(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    ensure_warehouse(args)
    with running_worker(args.data_dir, args.live_rate, trends=False) as port:
        time.sleep(args.settle)
        load_before = os.getloadavg()[0]
        with StreamListener(port) as stream, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            cold = measure_renders(browser, port, cold_pages(), 1)
            api = measure_api(port, args.rounds)
            warm_pages = [
                ("state view", "#window=1h&period=today"),
                ("county view", "#level=county&unit=OH%2FAlder%20County"),
            ]
            warm = measure_renders(browser, port, warm_pages, args.renders)
            browser.close()
            first_event = stream.first_event_ms
        load_after = os.getloadavg()[0]
    results = report(api, cold, warm, first_event)
    # The machine is shared: say how busy it was (2 cores; above 2, processes waited for a core).
    print(f"load average (1 min) before / after measuring: {load_before:.1f} / {load_after:.1f}")
    results |= {"events": args.events, "live_rate": args.live_rate, "load_average": [load_before, load_after]}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def cmd_screenshots(args: argparse.Namespace) -> None:
    """The main views, with the trend agent on: it first works through the warehouse's history, so the
    flag and alert feeds have something to show once it has (waits up to --wait seconds for flags)."""
    from playwright.sync_api import sync_playwright

    ensure_warehouse(args)
    with running_worker(args.data_dir, args.live_rate, trends=True) as port:
        api = Api(port)
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            status, body, _ = api.get("/api/v1/trends?status=open&limit=1")
            if status == 200 and json.loads(body)["flags"]:
                break
            time.sleep(5)
        else:
            print(f"no open trend flags after {args.wait:.0f} s: the feeds will be empty")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            take_screenshots(browser, port, args.out)
            browser.close()
    print(f"screenshots in {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    build_parser = sub.add_parser("build", help="only build the warehouse (a worker data directory)")
    shots = sub.add_parser("screenshots", help="save the main views' screenshots (trend agent on)")
    for p in (parser, build_parser, shots):
        p.add_argument("--data-dir", type=Path, default=Path("/tmp/groundswell-bench-dashboard"))
        p.add_argument("--events", type=int, default=10_000_000)
        p.add_argument("--days", type=int, default=30, help="days of campaign history, ending now")
        p.add_argument("--seed", type=int, default=1)
    build_parser.add_argument("--timezone", default="UTC")
    for p in (parser, shots):
        p.add_argument("--reuse", action="store_true", help="reuse a warehouse built earlier in --data-dir")
        p.add_argument("--live-rate", type=float, default=200.0, help="live simulated events per second")
    parser.add_argument("--rounds", type=int, default=30, help="rounds over every API request (default 30)")
    parser.add_argument("--renders", type=int, default=10, help="first renders per page (default 10)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds between worker start and measuring")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    shots.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    shots.add_argument("--wait", type=float, default=2400.0, help="seconds to wait for trend flags")
    args = parser.parse_args()
    {"build": cmd_build, "screenshots": cmd_screenshots}.get(args.command, cmd_run)(args)


if __name__ == "__main__":
    main()
