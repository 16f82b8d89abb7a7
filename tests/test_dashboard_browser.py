"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a running worker.

One worker and one embedded broker serve every test here. The figures on the page are read from the
data-* attributes the page writes next to each number, and compared with what /api/v1/metrics says
(a different query path: the metric views); pace is compared with goals and IDs summed here.
Screenshots go to $GROUNDSWELL_SCREENSHOTS (e.g. docs/screenshots) when set, else to a temporary dir.
"""

from __future__ import annotations

import json
import os
import random
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.broker import EmbeddedBroker
from tests.browser import chromium
from tests.browser import open_dashboard as open_dashboard_at
from tests.harness import TOKEN, WorkerProcess, free_port, produce, wait_for

# (precinct, county, region, goal_ids): two regions of two counties; P12 has no goal.
PRECINCTS = [
    ("P01", "Alder County", "Northeast", 40), ("P02", "Alder County", "Northeast", 35),
    ("P03", "Alder County", "Northeast", 30), ("P04", "Cedar County", "Northeast", 25),
    ("P05", "Cedar County", "Northeast", 30), ("P06", "Cedar County", "Northeast", 45),
    ("P07", "Birch County", "Northwest", 50), ("P08", "Birch County", "Northwest", 20),
    ("P09", "Birch County", "Northwest", 30), ("P10", "Dogwood County", "Northwest", 25),
    ("P11", "Dogwood County", "Northwest", 40), ("P12", "Dogwood County", "Northwest", None),
]  # fmt: skip
STATE = "OH"
RESULTS = ["canvassed", "canvassed", "not_home", "not_home", "not_home", "refused", "moved", "come_back_later"]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def knock(rng: random.Random, precinct: str, at: datetime) -> tuple[str, bytes, bytes]:
    result = rng.choice(RESULTS)
    event = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event_type": "canvass.knock",
        "schema_version": 1, "occurred_at": _iso(at), "source_system": "test", "precinct_id": precinct,
        "voter_id": f"V{rng.randrange(10_000):05d}", "household_id": f"H{rng.randrange(5_000):05d}",
        "contact_type": rng.choice(["walk", "walk", "phone"]), "result": result,
        "support_level": rng.choice([1, 2, 2, 3, 4, 5, None]) if result == "canvassed" else None,
    }  # fmt: skip
    return "canvass.knock", precinct.encode(), json.dumps(event).encode()


def signup(rng: random.Random, precinct: str, at: datetime) -> tuple[str, bytes, bytes]:
    event = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event_type": "digital.signup",
        "schema_version": 1, "occurred_at": _iso(at), "source_system": "test", "action_type": "list_signup",
        "person": {"email": f"s{rng.randrange(10**6)}@example.org"}, "precinct_id": precinct,
    }  # fmt: skip
    return "digital.signup", precinct.encode(), json.dumps(event).encode()


def email(rng: random.Random, precinct: str, at: datetime) -> tuple[str, bytes, bytes]:
    kind = rng.choices(["send", "open", "click", "unsubscribe", "bounce_soft"], [20, 6, 2, 0.3, 0.5])[0]
    event = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "event_type": "email.event",
        "schema_version": 1, "occurred_at": _iso(at), "source_system": "test", "kind": kind, "mailing_id": "M1",
        "email": f"r{rng.randrange(400)}@example.org", "precinct_id": precinct,
    }  # fmt: skip
    return "email.event", b"M1", json.dumps(event).encode()


def campaign(seed: int, count: int, start: datetime, end: datetime, precincts: list[str]) -> list[Any]:
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    makers = [knock] * 6 + [signup] + [email] * 4
    return [rng.choice(makers)(rng, rng.choice(precincts), start + timedelta(seconds=rng.random() * span))
            for _ in range(count)]  # fmt: skip


@dataclass
class System:
    worker: WorkerProcess
    bootstrap: str
    today: datetime  # UTC midnight: the worker's campaign time zone is UTC
    shots: Path
    tokens: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def judged(self) -> int:
        health = self.worker.get("/healthz")[1]
        return int(health["events_accepted"]) + int(health["events_rejected"])

    def send(self, events: list[Any]) -> None:
        before = self.judged()
        produce(self.bootstrap, events)
        wait_for(lambda: self.judged() >= before + len(events), 60, "the events to be judged")

    def api(self, path: str, token: str = TOKEN, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.worker.port}{path}", data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}"}, method="GET" if body is None else "POST",
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def metrics(self, query: str) -> list[dict[str, Any]]:
        status, body = self.api(f"/api/v1/metrics?{query}")
        assert status == 200, body
        return list(body["rows"])

    def token(self, role: str, regions: list[str] | None = None) -> str:
        key = (role, tuple(regions or ()))
        if key not in self.tokens:
            request = {"name": f"test-{role}", "role": role, "regions": regions or []}
            status, body = self.api("/api/v1/tokens", body=request)
            assert status == 201, body
            self.tokens[key] = str(body["token"])
        return self.tokens[key]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    work = tmp_path_factory.mktemp("dashboard")
    geography = work / "geography.csv"
    lines = ["precinct_id,county,region,state,goal_ids"]
    lines += [f"{p},{c},{r},{STATE},{'' if g is None else g}" for p, c, r, g in PRECINCTS]
    geography.write_text("\n".join(lines) + "\n")
    shots = Path(os.environ.get("GROUNDSWELL_SCREENSHOTS") or work / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with EmbeddedBroker(free_port(), work / "broker.log") as broker:
        # Pace needs a deadline: three weeks from today.
        election_day = {"GROUNDSWELL_ELECTION_DAY": (today + timedelta(days=21)).date().isoformat()}
        worker = WorkerProcess(broker.bootstrap, work / "data", geography, election_day).start()
        try:
            running = System(worker, broker.bootstrap, today, shots)
            names = [p[0] for p in PRECINCTS]
            # Yesterday and today so far, so that "today" and the other periods differ.
            running.send(campaign(1, 600, today - timedelta(days=1), today, names)
                         + campaign(2, 1500, today, now - timedelta(seconds=30), names))  # fmt: skip
            yield running
        finally:
            worker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


ERRORS: list[str] = []  # uncaught errors in any page


def open_dashboard(browser: Any, system: System, token: str) -> Any:
    return open_dashboard_at(browser, system.worker.port, token, ERRORS)  # signing in as a user does


def wait_for_view(page: Any, title: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('title').textContent.includes(t) && !document.body.classList.contains('loading')",
        arg=title,
    )


def screenshot(page: Any, system: System, name: str) -> None:
    path = system.shots / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def figures_on_page(page: Any, selector: str) -> dict[str, dict[str, str]]:
    """{row unit (or "" for headline figures): {metric: data-value}} of the matching cells."""
    found: dict[str, dict[str, str]] = page.evaluate(
        """sel => {
            const out = {};
            for (const el of document.querySelectorAll(sel)) {
                const row = el.closest('tr');
                const key = row ? (row.dataset.unit || row.dataset.window) : '';
                (out[key] = out[key] || {})[el.dataset.metric] = el.dataset.value;
            }
            return out;
        }""",
        selector,
    )
    return found


def same(shown: str, api: Any) -> bool:
    if api is None:
        return shown == ""
    return float(shown) == float(api)


def assert_rows_match(shown: dict[str, str], api_row: dict[str, Any], where: str) -> None:
    assert shown, f"no figures shown for {where}"
    for metric, value in shown.items():
        if metric != "pace":
            assert same(value, api_row[metric]), f"{where} {metric}: page {value!r}, API {api_row[metric]!r}"


def when(text: str) -> datetime:
    """A window start of either API. /api/v1/metrics gives naive times: UTC here (the worker's zone is UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def at(rows: list[dict[str, Any]], start: datetime) -> list[dict[str, Any]]:
    return [r for r in rows if when(r["window_start"]) == start]


def test_the_page_shows_the_apis_numbers_and_drills_down_to_a_precinct(system: System, browser: Any) -> None:
    page = open_dashboard(browser, system, TOKEN)
    wait_for_view(page, f"State {STATE}")
    today = _iso(system.today)

    # Headline figures = the state's row for today.
    [state_today] = at(system.metrics(f"level=state&window=1d&from={today}"), system.today)
    assert_rows_match(figures_on_page(page, "#headline [data-metric]")[""], state_today, "state headline")
    # Region rows = the regions' rows for today; pace = IDs to date / goal, summed here from the CSV.
    regions = figures_on_page(page, "#children td[data-metric]")
    assert set(regions) == {"Northeast", "Northwest"}
    all_days = system.metrics("level=region&window=1d")
    for row in at(system.metrics(f"level=region&window=1d&from={today}"), system.today):
        assert_rows_match(regions[row["region"]], row, f"region {row['region']}")
        goal = sum(g for _, _, r, g in PRECINCTS if r == row["region"] and g is not None)
        goaled = {p for p, _, r, g in PRECINCTS if r == row["region"] and g is not None}
        ids = sum(r["ids"] for r in system.metrics("level=precinct&window=1d") if r["precinct_id"] in goaled)
        assert float(regions[row["region"]]["pace"]) == pytest.approx(ids / goal)
    assert sum(r["ids"] for r in all_days) > 0
    # The hourly IDs chart = the state's hourly rows.
    bars = page.eval_on_selector_all(
        "svg[data-metric=ids] rect[data-window-start]", "els => els.map(e => [e.dataset.windowStart, e.dataset.value])"
    )
    hourly = {r["window_start"]: r for r in system.metrics(f"level=state&window=1h&from={today}")}
    shown_hours = {when(w): v for w, v in bars}
    for start, row in hourly.items():
        assert same(shown_hours[when(start)], row["ids"])
    screenshot(page, system, "state-view")

    # Drill down: region → county (its precincts' rows for today) → precinct (its hourly windows).
    page.click("#children a:text-is('Northeast')")
    wait_for_view(page, "Region Northeast")
    page.click("#children a:text-is('Cedar County')")
    wait_for_view(page, "County Cedar County")
    precincts = figures_on_page(page, "#children td[data-metric]")
    api_precincts = [r for r in at(system.metrics(f"level=precinct&window=1d&from={today}"), system.today)
                     if r["county"] == "Cedar County"]  # fmt: skip
    assert set(precincts) == {r["precinct_id"] for r in api_precincts} == {"P04", "P05", "P06"}
    for row in api_precincts:
        assert_rows_match(precincts[row["precinct_id"]], row, f"precinct {row['precinct_id']}")
    screenshot(page, system, "county-drilldown")

    page.click("#children a:text-is('P05')")
    wait_for_view(page, "Precinct P05")
    if page.query_selector("#windows button.more"):
        page.click("#windows button.more")
    windows = figures_on_page(page, "#windows td[data-metric]")
    api_hours = system.metrics(f"level=precinct&id=P05&window=1h&from={today}")
    assert api_hours and len(windows) >= len(api_hours)
    shown = {when(w): v for w, v in windows.items()}
    for row in api_hours:
        assert_rows_match(shown[when(row["window_start"])], row, "window")
    crumbs = page.inner_text("#crumbs")
    assert [part.strip() for part in crumbs.split("\u203a")] == ["OH", "Northeast", "Cedar County", "P05"], crumbs
    page.click("[data-window='15m']")
    page.wait_for_function("document.querySelector('[data-window=\"15m\"]').getAttribute('aria-pressed') === 'true'")
    page.wait_for_function("document.querySelectorAll('#windows tbody tr').length > 0")
    screenshot(page, system, "precinct-time-series")
    assert not ERRORS


def test_a_live_update_appears_without_reloading(system: System, browser: Any) -> None:
    page = open_dashboard(browser, system, TOKEN)
    wait_for_view(page, f"State {STATE}")
    page.wait_for_function(
        "/^as of \\d\\d:\\d\\d:\\d\\d, [\\d.]+ (s|min) behind/.test(document.getElementById('freshness').textContent)"
    )
    page.evaluate("window.__sameDocument = true")
    before = page.get_attribute("#headline [data-metric=attempts]", "data-value")
    system.send(campaign(3, 40, datetime.now(UTC) - timedelta(seconds=20), datetime.now(UTC), ["P01"]))
    page.wait_for_function(
        "v => document.querySelector('#headline [data-metric=attempts]').dataset.value !== v", arg=before,
        timeout=15_000,
    )  # fmt: skip
    assert page.evaluate("window.__sameDocument") is True  # the same document: no reload
    [state_today] = at(system.metrics(f"level=state&window=1d&from={_iso(system.today)}"), system.today)
    wait_for(lambda: same(page.get_attribute("#headline [data-metric=attempts]", "data-value"),
                          state_today["attempts"]), 5, "the page to settle")  # fmt: skip
    assert not ERRORS


def read_stream(system: System, token: str, during: Any, until: Any, timeout_s: float = 45) -> list[tuple[str, Any]]:
    """Events of /api/v1/stream: `during()` runs (in a thread) once the first tick came; reading stops
    once `during` has finished and a tick since it started satisfied `until(tick)`."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{system.worker.port}/api/v1/stream", headers={"Authorization": f"Bearer {token}"}
    )
    events: list[tuple[str, Any]] = []
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    worker: threading.Thread | None = None
    seen = False
    with urllib.request.urlopen(request, timeout=10) as response:
        name = ""
        while datetime.now(UTC) < deadline:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:])
                events.append((name, data))
                if name != "tick":
                    continue
                if worker is None:
                    worker = threading.Thread(target=during, daemon=True)
                    worker.start()
                    continue
                # The awaited tick may come while `during` is still returning (its events were already
                # in), so remember it and stop at the first tick after `during` has finished.
                seen = seen or until(data)
                if seen and not worker.is_alive():
                    return events
    raise AssertionError(f"the stream never showed what was expected: {events}")


def test_regional_staff_see_only_their_region_in_the_ui_the_api_and_the_stream(system: System, browser: Any) -> None:
    secret = system.token("regional", ["Northeast"])
    page = open_dashboard(browser, system, secret)
    wait_for_view(page, "Region Northeast")  # a one-region principal starts at their region
    page.wait_for_function("document.getElementById('who').textContent.includes('regional')")
    screenshot(page, system, "regional-view")
    others = ("Northwest", "Birch", "Dogwood", "P07", "P10")
    text = page.inner_text("body")
    assert "Northeast" in text and not any(name in text for name in others), text

    # The state level lists their regions only, without state totals; another region is refused.
    page.evaluate("location.hash = '#level=state&unit=OH'")
    wait_for_view(page, "Your regions")
    assert set(figures_on_page(page, "#children td[data-metric]")) == {"Northeast"}
    assert page.query_selector("#headline [data-metric]") is None and page.query_selector("#charts svg") is None
    page.evaluate("location.hash = '#level=county&unit=OH/Birch County'")
    page.wait_for_function("!document.getElementById('view-error').hidden")
    assert "outside your regions" in page.inner_text("#view-error")
    assert not any(name in page.inner_text("body") for name in others)

    for path in (
        "/api/v1/dashboard/view?level=region&unit=Northwest",
        "/api/v1/dashboard/view?level=precinct&unit=P07",
        "/api/v1/dashboard/view?level=county&unit=OH/Birch%20County",
        "/api/v1/metrics?level=state",
    ):
        status, body = system.api(path, secret)
        assert status == 403, (path, body)
    for path in ("/api/v1/dashboard/view", "/api/v1/stream"):
        assert system.api(path, "gs_not_a_token")[0] == 401
    status, body = system.api("/api/v1/dashboard/view?level=state&unit=OH", secret)
    assert status == 200 and body["total"] is None and body["series"] is None
    assert {c["region"] for c in body["children"]} == {"Northeast"}
    assert "Northwest" not in json.dumps(body)

    # The stream: no worker-wide counts, and data arriving in another region is not even mentioned.
    now = datetime.now(UTC)
    # One batch with both regions' events: when the stream names Northeast, Northwest's rows are in too.
    batch = campaign(4, 30, now - timedelta(seconds=10), now, ["P07", "P10"]) + campaign(5, 30, now, now, ["P02"])
    events = read_stream(system, secret, lambda: system.send(batch), lambda tick: "Northeast" in tick["changed"])
    hello = [data for name, data in events if name == "hello"]
    ticks = [data for name, data in events if name == "tick"]
    assert hello == [{"interval_s": 1.0, "name": "test-regional", "role": "regional", "regions": ["Northeast"]}]
    assert len(ticks) >= 2 and all("events_accepted" not in t for t in ticks)
    changed = {region for t in ticks for region in t["changed"]}
    assert changed == {"Northeast"}, changed
    assert not ERRORS


def test_sql_is_read_only_for_statisticians(system: System) -> None:
    statistician, regional = system.token("statistician"), system.token("regional", ["Northwest"])
    status, body = system.api("/api/v1/sql", statistician, {"query": "SELECT count() FROM raw_canvass"})
    assert status == 200 and body["rows"][0][0] > 0
    for write in ("INSERT INTO raw_canvass (precinct_id) VALUES ('P01')", "DROP TABLE raw_canvass",
                  "ALTER TABLE raw_canvass DELETE WHERE 1", "TRUNCATE TABLE trend_flags"):  # fmt: skip
        status, body = system.api("/api/v1/sql", statistician, {"query": write})
        assert status == 400 and "readonly" in body["error"].lower(), (write, body)
    assert system.api("/api/v1/sql", regional, {"query": "SELECT 1"})[0] == 403


def test_sql_still_answers_after_refusing_a_write(system: System) -> None:
    # chDB keeps readonly=1 on a session after refusing a write: a shared read client would then refuse
    # every later write (token saves, model pushes). The SQL API runs each query on a client of its own.
    statistician = system.token("statistician")
    for _ in range(8):  # enough calls to reach every read thread
        status, body = system.api("/api/v1/sql", statistician, {"query": "DROP TABLE raw_canvass"})
        assert status == 400 and "readonly" in body["error"].lower(), body
    for _ in range(8):
        status, body = system.api("/api/v1/sql", statistician, {"query": "SELECT count() FROM raw_canvass"})
        assert status == 200 and body["rows"][0][0] > 0, body
    status, body = system.api("/api/v1/tokens", body={"name": "after-refusals", "role": "statistician"})
    assert status == 201, body  # writes on the read threads still work
