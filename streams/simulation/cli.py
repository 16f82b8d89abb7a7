"""`groundswell simulate`: produce a simulated campaign's events to Kafka.

The CLI module wires these in: `add_simulate_arguments(subparser)` and
`run_simulate(args, bootstrap)`. Progress goes to stderr and never includes event contents.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import secrets
import signal
import sys
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import DEFAULT_TIMEZONE, Clock, LiveClock, ReplayClock
from streams.simulation.payloads import SimEvent
from streams.simulation.producer import ProduceStats, ensure_topics, produce
from streams.simulation.truth import TruthWriter
from streams.simulation.world import DEFAULT_SEED, build_world

DEFAULT_RATE = 200.0


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Produce a simulated campaign (canvassing, signups, email) to Kafka, with a share of "
        "malformed events labelled with the reason they must be rejected for."
    )
    parser.add_argument("--seed", type=int, help="seed of the event stream (default: random, printed)")
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help=f"events per second; 0 = flat out (default {DEFAULT_RATE:g})"
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--events", type=int, metavar="N", help="stop after N events (default: until Ctrl-C)")
    stop.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument(
        "--malformed-share", type=float, default=0.01, help="share of malformed events, 0-1 (default 0.01)"
    )
    parser.add_argument(
        "--clock",
        choices=("live", "replay"),
        default="live",
        help="live: events happen now, canvassing at all hours; replay: --days of past campaign from --start, "
        "canvassing 10:00-20:00 local, ends when the days are done (default live)",
    )
    parser.add_argument(
        "--history-days",
        type=float,
        default=0.0,
        help="live clock only: first produce this many days of past campaign, flat out, ending now, so that "
        "dashboards and trend baselines have history (default 0)",
    )
    parser.add_argument("--start", help="replay start, ISO date or datetime (default: --days ago, local midnight)")
    parser.add_argument("--days", type=float, default=14.0, help="replay length in days (default 14)")
    parser.add_argument(
        "--timezone",
        default=DEFAULT_TIMEZONE,
        help=f"local time of the replayed field day (default {DEFAULT_TIMEZONE})",
    )
    parser.add_argument(
        "--world-seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the geography and voter file (default {DEFAULT_SEED}: the shipped config/geography.csv)",
    )
    parser.add_argument("--precincts", type=int, default=400, help="number of precincts (default 400)")
    parser.add_argument("--counties", type=int, default=8, help="number of counties (default 8)")
    parser.add_argument("--regions", type=int, default=4, help="number of regions (default 4)")
    parser.add_argument("--voters-per-precinct", type=int, default=600, help="mean voters per precinct (default 600)")
    parser.add_argument(
        "--write-geography",
        type=Path,
        metavar="PATH",
        help="write this world's geography CSV (for GROUNDSWELL_GEOGRAPHY) and exit",
    )
    parser.add_argument(
        "--truth", type=Path, metavar="PATH", help="write every produced event with its expected outcome (JSONL[.gz])"
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions of event topics it creates (default 4)")


def _replay_clock(args: argparse.Namespace) -> ReplayClock:
    if args.start is None:
        return ReplayClock.ending_now(args.days, args.timezone)
    start = datetime.fromisoformat(args.start)
    if len(args.start) <= 10:  # a date: local midnight
        start = datetime.combine(date.fromisoformat(args.start), time(), ZoneInfo(args.timezone))
    elif start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(args.timezone))
    clock = ReplayClock(start, args.days, args.timezone)
    end = clock.end()
    if end is None or end <= clock.begin():
        raise ValueError(f"replay start {start.isoformat()} is not in the past")
    return clock


def run_simulate(args: argparse.Namespace, bootstrap: str) -> int:
    try:
        if args.rate < 0 or not 0.0 <= args.malformed_share <= 1.0 or (args.events is not None and args.events < 0):
            raise ValueError("--rate and --events must not be negative, --malformed-share must be within 0-1")
        if args.history_days < 0 or (args.history_days and args.clock != "live"):
            raise ValueError("--history-days must not be negative, and goes with the live clock only")
        world = build_world(
            args.world_seed, args.precincts, args.counties, args.regions, "OH", args.voters_per_precinct
        )
        clock: Clock = _replay_clock(args) if args.clock == "replay" else LiveClock()
    except (ValueError, ZoneInfoNotFoundError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if args.write_geography is not None:
        world.write_geography_csv(args.write_geography)
        print(f"simulate: wrote {len(world.precincts)} precincts to {args.write_geography}", file=sys.stderr)
        return 0
    custom_world = (args.world_seed, args.precincts, args.counties, args.regions) != (DEFAULT_SEED, 400, 8, 4)
    if custom_world:
        print(
            "simulate: not the default world: run the worker with GROUNDSWELL_GEOGRAPHY set to a file written "
            "by --write-geography with the same options, or its events are rejected as unknown precincts",
            file=sys.stderr,
        )
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    print(
        f"simulate: seed {seed}, {args.clock} clock, {len(world.precincts)} precincts, {world.n_voters:,} voters, "
        f"{'flat out' if args.rate == 0 else f'{args.rate:g} events/s'}, malformed share {args.malformed_share:g}",
        file=sys.stderr,
    )
    events: Iterator[SimEvent] = iter(CampaignGenerator(world, seed, args.malformed_share, clock))
    if args.events is not None:
        events = itertools.islice(events, args.events)
    history: Iterator[SimEvent] = iter(())
    if args.history_days:
        # Another seed: the history's event ids must not repeat the live stream's.
        past = ReplayClock.ending_now(args.history_days, args.timezone)
        history = iter(CampaignGenerator(world, seed + 1, args.malformed_share, past))
    try:
        stats = asyncio.run(_run(args, bootstrap, history, events))
    except Exception as exc:  # a broker problem: report it plainly, no traceback
        print(f"simulate: failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    by_topic = ", ".join(f"{topic} {count:,}" for topic, count in sorted(stats.by_topic.items()))
    print(
        f"simulate: delivered {stats.sent:,} events ({by_topic}; {stats.malformed:,} malformed) "
        f"in {stats.elapsed_s:.1f} s, {stats.rate:,.0f}/s",
        file=sys.stderr,
    )
    if args.truth is not None:
        print(f"simulate: ground truth in {args.truth}", file=sys.stderr)
    return 0


def _progress(stats: ProduceStats, interval_rate: float) -> None:
    print(
        f"simulate: {stats.sent:,} events, {interval_rate:,.0f}/s, {stats.malformed:,} malformed",
        file=sys.stderr,
        flush=True,
    )


async def _run(
    args: argparse.Namespace, bootstrap: str, history: Iterator[SimEvent], events: Iterator[SimEvent]
) -> ProduceStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupted(signum: int) -> None:
        print("simulate: stopping after delivering what was handed to Kafka (again: abort)", file=sys.stderr)
        stop.set()
        loop.remove_signal_handler(signum)  # a second signal takes the default action

    # Ctrl-C, or SIGTERM from a supervisor (groundswell up): stop cleanly, losing nothing taken.
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers off the main thread
            loop.add_signal_handler(signum, interrupted, signum)
    await ensure_topics(bootstrap, partitions=args.partitions)
    rate = None if args.rate == 0 else args.rate
    with contextlib.ExitStack() as stack:
        if args.truth is not None:
            writer = stack.enter_context(TruthWriter(args.truth))
            history, events = _tee(history, writer), _tee(events, writer)
        past = await produce(bootstrap, history, None, stop=stop, report=_progress)
        if past.sent:
            print(f"simulate: {past.sent:,} events of history delivered; now live", file=sys.stderr, flush=True)
        if stop.is_set():
            return past
        live = await produce(bootstrap, events, rate, duration_s=args.duration, stop=stop, report=_progress)
        return _combined(past, live)


def _combined(first: ProduceStats, second: ProduceStats) -> ProduceStats:
    return dataclasses.replace(
        second,
        sent=first.sent + second.sent,
        malformed=first.malformed + second.malformed,
        by_topic=first.by_topic + second.by_topic,
        elapsed_s=first.elapsed_s + second.elapsed_s,
    )


def _tee(events: Iterator[SimEvent], writer: TruthWriter) -> Iterator[SimEvent]:
    # produce() takes an event only to send it, so the file holds exactly what was produced.
    for event in events:
        writer.write(event)
        yield event


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: `python -m streams.simulation.cli --bootstrap HOST:PORT ...`."""
    parser = argparse.ArgumentParser(prog="python -m streams.simulation.cli")
    parser.add_argument(
        "--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers (default 127.0.0.1:9092)"
    )
    add_simulate_arguments(parser)
    args = parser.parse_args(argv)
    return run_simulate(args, args.bootstrap)


if __name__ == "__main__":
    raise SystemExit(main())
