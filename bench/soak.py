"""bench/soak: the worker's memory over a long run of live traffic, every agent on.

    .venv/bin/python -m bench.soak [--minutes 60] [--rate 2000] [--sample-s 30] [--out FILE]

An embedded broker, the simulated voter file loaded, one `groundswell worker` (ingest, scoring,
trends, linking, alerts, dashboard poller), and the simulated campaign produced live at `--rate`
events/s for `--minutes`. The worker's RSS is sampled every `--sample-s`; the figure that matters is
growth after warm-up (bench/ingest.RssSampler.summary: second quarter against the last, per hour),
with events judged per interval beside it so a stall would show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.ingest import RssSampler, free_port, health, produce_events, stop, worker_env
from config.geography import Geography
from config.settings import load_settings
from streams.broker import EmbeddedBroker, ensure_topics
from streams.cli import _load_simulated_voter_file
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import LiveClock
from streams.simulation.world import build_world

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="live events per second")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="write the samples and summary as JSON here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="groundswell-soak-"))
    data_dir = work / "data"
    settings = load_settings(demo=True, data_dir=data_dir)
    _load_simulated_voter_file(settings, Geography.from_csv(settings.geography))
    world = build_world(42)
    with EmbeddedBroker(free_port(), work / "broker.log") as broker:
        ensure_topics(settings, broker.bootstrap)
        port = free_port()
        log = (work / "worker.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=worker_env(broker.bootstrap, data_dir, port, "soak"),
        )  # fmt: skip
        while not (health(port) or {}).get("consuming"):
            if worker.poll() is not None:
                raise SystemExit(f"worker exited with {worker.returncode}; see {work / 'worker.log'}")
            time.sleep(0.2)
        judged: list[tuple[float, int]] = []
        done = threading.Event()

        def count_judged() -> None:
            started = time.monotonic()
            while not done.wait(args.sample_s):
                state = health(port) or {}
                judged.append(
                    (time.monotonic() - started, state.get("events_accepted", 0) + state.get("events_rejected", 0))
                )

        counter = threading.Thread(target=count_judged, daemon=True)
        live = CampaignGenerator(world, seed=9, malformed_share=0.01, clock=LiveClock())
        with RssSampler(worker.pid, args.sample_s) as rss:
            counter.start()
            sent = asyncio.run(produce_events(broker.bootstrap, live, args.rate, args.minutes * 60))
            done.set()
            counter.join()
        alive = worker.poll() is None
        stop(worker)

    summary = rss.summary()
    print(f"sent {sent.sent:,} events in {sent.elapsed_s / 60:.1f} min ({sent.sent / sent.elapsed_s:,.0f}/s); "
          f"worker alive at the end: {alive}")  # fmt: skip
    print(f"worker RSS: first {summary['first_mib']:.0f} MiB, last {summary['last_mib']:.0f} MiB, "
          f"max {summary['max_mib']:.0f} MiB; growth after warm-up {summary['growth_mib_per_hour_after_warmup']:+.1f} "
          "MiB/hour")  # fmt: skip
    step = max(1, len(rss.samples) // 12)
    print(f"{'minute':>7} {'RSS MiB':>8} {'judged':>10}")
    for (t, mib), (_, count) in list(zip(rss.samples, [(0.0, 0), *judged], strict=False))[::step]:
        print(f"{t / 60:>7.1f} {mib:>8.0f} {count:>10,}")
    if args.out:
        result: dict[str, Any] = {"summary": summary, "rss": rss.samples, "judged": judged, "sent": sent.sent,
                                  "minutes": args.minutes, "rate": args.rate, "worker_alive": alive}  # fmt: skip
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
