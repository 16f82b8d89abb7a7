"""bench/linking_stream: the linking agent end to end (read, link, write) against an embedded warehouse.

    .venv/bin/python -m bench.linking_stream [--voters 240000] [--signups 100000] [--email-people 30000]

A simulated world of about --voters voters; its voter file (streams/simulation/voter_export.py)
loaded as `groundswell voters load` does; --signups signups and the email events of
--email-people list members over --mailings mailings (a send each, and some opens), validated and
written by the ingest path (EventProcessor, IdentityCapture, RawBatchWriter with its tokens), one
partition per topic. Then the LinkingAgent ticks (one read thread with its own client, as in the
worker) until it has caught up.

Reported: the first tick apart (index build, training, the first batch); then per later tick its
seconds, records decided and events read, and over them links/s (records decided per second of
tick) with p50/p95 tick seconds; peak RSS. Baseline, same run: `Matcher.link` alone on the same
person records in batches of the same size, so the agent's overhead shows as a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from clickhouse_connect.driver.client import Client
from confluent_kafka import Message

from config.settings import EMAIL_TOPIC, SIGNUP_TOPIC, LinkingSettings, load_settings
from models.linking import Matcher, PersonRecord
from sinks.clickhouse.client import Warehouse, connect, warehouse_from_dsn
from sinks.clickhouse.links import LinkStore
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.voters import VoterStore
from sinks.clickhouse.writer import RawBatchWriter
from streams.dedup import EventIdWindow
from streams.identity_capture import IdentityCapture
from streams.linking import LinkingAgent
from streams.processing import EventProcessor
from streams.simulation.identities import IdentitySimulator, SimPerson
from streams.simulation.voter_export import write_voter_file
from streams.simulation.world import build_world
from streams.voter_load import DirectSink, load_voter_file

T = TypeVar("T")
SECRET = "bench-linking-stream-secret-0123"
VOTERS_PER_PRECINCT = 800  # as bench/linking.py: Ohio has about 8M registered voters in about 8,900 precincts
LIST_VOTER_ID_KNOWN = 0.8  # as the simulated campaign: the ESP knows the voter of 80% of on-file members
OPEN_SHARE = 0.17  # human opens per send, as the simulated campaign
INGEST_CHUNK = 5_000
_encode = msgspec.json.Encoder()


def rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def signup_json(person: SimPerson, at: datetime) -> bytes:
    fields = ("given_name", "family_name", "email", "phone", "address_line1", "birth_year")
    body: dict[str, Any] = {f: getattr(person, f) for f in fields}
    body["zip5"] = person.zip5[:5] if person.zip5 else None
    if not body["email"] and not body["phone"]:
        body["phone"] = "+16145550100"  # the contract wants one contact point; 555-01xx is fictional
    event = {"event_id": str(uuid.uuid4()), "event_type": SIGNUP_TOPIC, "schema_version": 1,
             "occurred_at": at.isoformat(), "source_system": "action_network", "action_type": "form_submission",
             "source_record_id": person.record_id, "person": body}  # fmt: skip
    return json.dumps(event).encode()


def email_json(email: str, kind: str, mailing: str, at: datetime, voter_id: str | None) -> bytes:
    event = {"event_id": str(uuid.uuid4()), "event_type": EMAIL_TOPIC, "schema_version": 1,
             "occurred_at": at.isoformat(), "source_system": "actionkit", "kind": kind, "mailing_id": mailing,
             "email": email, "voter_id": voter_id}  # fmt: skip
    return json.dumps(event).encode()


def email_events(people: list[SimPerson], mailings: int, seed: int, start: datetime) -> Iterator[bytes]:
    """Per mailing: a send to every member, then human opens from some; the voter_id when the ESP knows it."""
    rng = random.Random(seed)
    known = {p.email: p.true_voter_id if p.true_voter_id and rng.random() < LIST_VOTER_ID_KNOWN else None
             for p in people if p.email}  # fmt: skip
    for m in range(mailings):
        at = start + timedelta(hours=6 * m)
        mailing = f"M{m:03d}"
        for email, voter in known.items():
            yield email_json(email, "send", mailing, at, voter)
        for email, voter in known.items():
            if rng.random() < OPEN_SHARE:
                yield email_json(email, "open", mailing, at + timedelta(minutes=30), voter)


class Ingest:
    """The ingest path of one partition per topic, without Kafka: validate, capture identities, write."""

    def __init__(self, client: Client, warehouse: Warehouse, processors: dict[str, EventProcessor]) -> None:
        self.writer = RawBatchWriter(client, warehouse)
        self.processors = processors
        self.offsets = dict.fromkeys(processors, 0)
        self.windows = {t: EventIdWindow(1_000_000) for t in processors}

    def send(self, topic: str, values: list[bytes]) -> int:
        first = self.offsets[topic]
        ms = int(time.time() * 1000)
        records = [Message(topic=topic, partition=0, offset=first + i, key=b"k", value=v, timestamp=(1, ms))
                   for i, v in enumerate(values)]  # fmt: skip
        processed = self.processors[topic].process(0, records, self.windows[topic])
        side: tuple[tuple[str, bytes], ...] = ()
        if topic == SIGNUP_TOPIC:
            side = (("signup_identities", _encode.encode_lines(IdentityCapture().rows(processed.rows, records))),)
        table = "raw_signups" if topic == SIGNUP_TOPIC else "raw_email"
        token = f"bench/{topic}/0/{first}-{first + len(values) - 1}"
        self.writer.write(table, token, _encode.encode_lines(processed.rows), processed.rejected, side)
        self.offsets[topic] += len(values)
        return len(processed.rows)

    def send_all(self, topic: str, values: Iterator[bytes]) -> int:
        sent, chunk = 0, []
        for value in values:
            chunk.append(value)
            if len(chunk) == INGEST_CHUNK:
                sent += self.send(topic, chunk)
                chunk = []
        return sent + (self.send(topic, chunk) if chunk else 0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def build_warehouse(args: argparse.Namespace, work: Path) -> tuple[Warehouse, dict[str, float]]:
    precincts = max(4, round(args.voters / VOTERS_PER_PRECINCT))
    world = build_world(args.seed, precincts=precincts, counties=min(88, precincts), regions=4,
                        voters_per_precinct=VOTERS_PER_PRECINCT)  # fmt: skip
    warehouse = warehouse_from_dsn(f"chdb://{work / 'clickhouse'}")
    client = connect(warehouse)
    migrate(client, warehouse, "UTC")
    started = time.perf_counter()
    path = work / "voters.parquet"
    write_voter_file(world, path)
    report = load_voter_file(path, world.geography(), SECRET.encode(), DirectSink(VoterStore(client, warehouse)))
    load_s = time.perf_counter() - started
    sim = IdentitySimulator(world)
    settings = load_settings(secret=SECRET)
    geography = world.geography()
    ingest = Ingest(client, warehouse, {t: EventProcessor(t, settings, geography) for t in (SIGNUP_TOPIC, EMAIL_TOPIC)})
    start = datetime.now(UTC) - timedelta(days=2)
    started = time.perf_counter()
    signups = ingest.send_all(SIGNUP_TOPIC, (signup_json(p, start) for p in sim.signups(args.signups, seed=args.seed)))
    members = sim.email_people(args.email_people, seed=args.seed + 1)
    emails = ingest.send_all(EMAIL_TOPIC, email_events(members, args.mailings, args.seed, start))
    ingest_s = time.perf_counter() - started
    client.close()
    return warehouse, {"voters": report.rows_loaded, "voter_file_s": load_s, "signups": signups,
                       "email_events": emails, "email_people": len(members), "ingest_s": ingest_s}  # fmt: skip


def run_agent(warehouse: Warehouse, settings: LinkingSettings) -> tuple[LinkingAgent, dict[str, Any]]:
    """Ticks until caught up; the runner is one thread with its own client, like the worker's reads."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="bench-linking")
    client = pool.submit(connect, warehouse).result()
    store = LinkStore(client, warehouse)

    async def run(fn: Callable[[LinkStore], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, store)

    agent = LinkingAgent(run, settings)

    async def go() -> dict[str, Any]:
        ticks: list[tuple[float, int, int]] = []
        first: tuple[float, int, int] | None = None
        while True:
            started = time.perf_counter()
            outcome = await agent.tick()
            seconds = time.perf_counter() - started
            assert outcome.status == "linking", outcome.status
            if first is None:
                first = (seconds, outcome.decided, outcome.signups + outcome.email_events)
            elif outcome.signups or outcome.email_events:
                ticks.append((seconds, outcome.decided, outcome.signups + outcome.email_events))
            if max(outcome.signups, outcome.email_events) < settings.batch_rows:
                return {"first": first, "ticks": ticks}

    try:
        return agent, asyncio.run(go())
    finally:
        pool.submit(client.close).result()
        pool.shutdown()


def matcher_baseline(warehouse: Warehouse, agent: LinkingAgent, batch: int) -> dict[str, float]:
    """`Matcher.link` alone on the same person records (signups, then email people), same batch size."""
    client = connect(warehouse)
    store = LinkStore(client, warehouse)
    signups = store.read_signups({}, 1 << 40)
    people = list(signups.people(signups.record_ids()).values())
    hashes = client.query("SELECT DISTINCT email_hash FROM raw_email WHERE email_hash != ''").result_columns
    people += [PersonRecord(h, email_hash=h) for h in (hashes[0] if hashes else [])]
    client.close()
    matcher = agent.matcher
    assert isinstance(matcher, Matcher)
    started = time.perf_counter()
    for i in range(0, len(people), batch):
        matcher.link(people[i : i + batch])
    seconds = time.perf_counter() - started
    return {"people": len(people), "seconds": seconds, "links_per_s": len(people) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters", type=int, default=240_000)
    parser.add_argument("--signups", type=int, default=100_000)
    parser.add_argument("--email-people", type=int, default=30_000)
    parser.add_argument("--mailings", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=LinkingSettings().batch_rows)
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    settings = LinkingSettings(batch_rows=args.batch_rows)
    with tempfile.TemporaryDirectory(prefix="bench-linking-stream-") as tmp:
        warehouse, built = build_warehouse(args, Path(tmp))
        print(json.dumps({"warehouse": built}))
        agent, result = run_agent(warehouse, settings)
        first_s, first_decided, first_events = result["first"]
        ticks: list[tuple[float, int, int]] = result["ticks"]
        seconds = [t[0] for t in ticks]
        decided = sum(t[1] for t in ticks)
        events = sum(t[2] for t in ticks)
        total = sum(seconds)
        baseline = matcher_baseline(warehouse, agent, args.batch_rows)
    agent_rate = decided / total if total else float("nan")
    report = {
        "first_tick": {"seconds": first_s, "decided": first_decided, "events": first_events},
        "later_ticks": len(ticks),
        "decided": decided,
        "events": events,
        "seconds": total,
        "links_per_s": agent_rate,
        "events_per_s": events / total if total else float("nan"),
        "tick_p50_s": statistics.median(seconds) if seconds else float("nan"),
        "tick_p95_s": percentile(seconds, 0.95),
        "matcher_alone": baseline,
        "agent_over_matcher": agent_rate / baseline["links_per_s"],
        "peak_rss_mib": rss_peak_mib(),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
