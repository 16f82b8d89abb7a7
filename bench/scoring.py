"""bench/scoring: in-stream scoring rate, bulk rescore rate, and model swap latency, with a naive baseline.

    .venv/bin/python -m bench.scoring [--voters-per-precinct 2500] [--skip-worker]

1. In-stream scoring (models/scoring/bench.py): the vectorised path (hash, gather, sum, sigmoid)
   against a per-voter scikit-learn `predict_proba` loop holding the same coefficients, same run.
2. Bulk rescore: every voter of a simulated voter file (default 400 precincts x 2,500 = ~1M voters)
   scored inside chDB with the model's SQL form (streams/model_registry.py `rescore_all`), against
   the same voters scored in numpy after reading them out (the Python path it replaces).
3. Swap latency (unless --skip-worker): a real `groundswell worker` with the embedded broker; a model
   is pushed and promoted over HTTP while events stream; the figure is the time from the promote
   call returning to the first stream score by the new champion, and the promote call itself
   (which includes the bulk rescore of the voter file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from bench.ingest import TOKEN, free_port, health, worker_env
from models.scoring import DEFAULT_SPEC, RowHasher
from models.scoring.artifact import ModelArtifact
from models.scoring.bench import bench_scoring
from models.scoring.online import OnlineLogisticRegression
from sinks.clickhouse.client import connect, warehouse_from_dsn
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.voters import VoterStore
from streams.broker import EmbeddedBroker, ensure_topics
from streams.model_registry import MODEL, ModelRegistry
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import LiveClock, ReplayClock
from streams.simulation.producer import produce
from streams.simulation.voter_export import voter_file_table, write_voter_file
from streams.simulation.world import DEFAULT_SEED, build_world
from streams.voter_load import DirectSink, load_voter_file

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"bench-secret-0123456789"


def trained_artifact(world_columns: dict[str, list[Any]], support: np.ndarray) -> Any:
    """A model with realistic weights: the online learner over the voter file with drawn labels."""
    features = RowHasher(DEFAULT_SPEC).transform(world_columns)
    labels = (np.random.default_rng(1).random(len(support)) < support).astype(float)
    model = OnlineLogisticRegression(DEFAULT_SPEC)
    model.partial_fit(features, labels)
    return model.to_artifact("bench: one pass over the simulated voter file")


def fitted_artifact(world_columns: dict[str, list[Any]], support: np.ndarray) -> ModelArtifact:
    """A well-calibrated model, as a modeller would fit one offline (docs/modelling.md)."""
    features = RowHasher(DEFAULT_SPEC).transform(world_columns)
    labels = (np.random.default_rng(1).random(len(support)) < support).astype(float)
    fitted = LogisticRegression(C=1.0, max_iter=1000).fit(features.to_csr(), labels)
    return ModelArtifact.build(fitted.coef_[0], float(fitted.intercept_[0]), DEFAULT_SPEC,
                               {"description": "bench: scikit-learn LogisticRegression on the voter file"})  # fmt: skip


def bulk_rescore(work: Path, voters_per_precinct: int) -> dict[str, float]:
    world = build_world(DEFAULT_SEED, voters_per_precinct=voters_per_precinct)
    path = work / "voters.parquet"
    n = write_voter_file(world, path)
    warehouse = warehouse_from_dsn(f"chdb://{work / 'clickhouse'}")
    client = connect(warehouse)
    migrate(client, warehouse, "UTC")
    started = time.perf_counter()
    load_voter_file(path, world.geography(), SECRET, DirectSink(VoterStore(client, warehouse)))
    load_s = time.perf_counter() - started
    table = voter_file_table(world).to_pydict()
    precincts = [world.precincts[i] for i in world.voter_precinct]
    columns = {**table, "county": [p.county for p in precincts], "region": [p.region for p in precincts]}
    artifact = trained_artifact({k: v for k, v in columns.items() if k in DEFAULT_SPEC.columns}, world.support)
    registry = ModelRegistry(client, warehouse)
    registry.store.add_version(artifact.version, MODEL, artifact.to_bytes(), "{}", "", "{}", "bench")
    result = registry.rescore_all(artifact.version)
    # The Python path it replaces: read the voters out, hash and score in numpy (no insert).
    started = time.perf_counter()
    read = client.query_arrow("SELECT party, gender, birth_year, registration_date, vote_history, precinct_id, "
                              "county, region, zip5 FROM voters FINAL")  # fmt: skip
    rows = {name: read.column(name).to_pylist() for name in read.column_names}
    scores = artifact.scorer().score_rows(rows)
    python_s = time.perf_counter() - started
    check = client.query(
        f"SELECT score FROM voter_scores_latest FINAL WHERE version = '{artifact.version}' AND source = 'bulk' "
        "ORDER BY voter_id LIMIT 1"
    ).result_rows
    client.close()
    assert len(scores) == n and check
    return {
        "voters": n, "voter_file_load_s": load_s, "voter_file_load_rows_per_s": n / load_s,
        "sql_rescore_s": result.seconds, "sql_voters_per_s": result.voters_per_s,
        "python_read_and_score_s": python_s, "python_voters_per_s": n / python_s,
        "ratio_sql_over_python": python_s / result.seconds,
    }  # fmt: skip


def call(port: int, method: str, path: str, body: bytes | None = None) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}") from None


def swap_latency(work: Path) -> dict[str, float]:
    world = build_world(DEFAULT_SEED)
    with EmbeddedBroker(free_port(), work / "broker.log") as broker:
        from config.settings import load_settings

        ensure_topics(load_settings(demo=True), broker.bootstrap)
        port = free_port()
        data = work / "worker"
        env = {**worker_env(broker.bootstrap, data, port, "bench-scoring"), "GROUNDSWELL_SCORING__CHECKPOINT_S": "5"}
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, env=env,
                                  stdout=(work / "worker.log").open("ab"), stderr=subprocess.STDOUT)  # fmt: skip
        try:
            while not (health(port) or {}).get("consuming"):
                time.sleep(0.2)
            path = work / "voters.parquet"
            write_voter_file(world, path)
            from streams.voter_load import WorkerSink

            load_voter_file(path, world.geography(), b"", WorkerSink(f"http://127.0.0.1:{port}", TOKEN))
            # A week of history first: the gate wants 1,000 holdout IDs (about 1.3% of events are IDs).
            producing = asyncio.new_event_loop()
            past = CampaignGenerator(world, seed=2, malformed_share=0.0, clock=ReplayClock.ending_now(days=7))
            producing.run_until_complete(produce(broker.bootstrap, past, None))
            live = CampaignGenerator(world, seed=3, malformed_share=0.0, clock=LiveClock())
            task = producing.create_task(produce(broker.bootstrap, live, 3000, duration_s=120))
            producing.run_until_complete(asyncio.sleep(20))  # the bootstrap champion scores and learns
            table = voter_file_table(world).to_pydict()
            precincts = [world.precincts[i] for i in world.voter_precinct]
            columns = {**table, "county": [p.county for p in precincts], "region": [p.region for p in precincts]}
            artifact = fitted_artifact({k: v for k, v in columns.items() if k in DEFAULT_SPEC.columns}, world.support)
            started = time.perf_counter()
            call(port, "POST", "/api/v1/models", artifact.to_bytes())
            pushed = time.perf_counter()
            call(port, "POST", "/api/v1/models/aliases/champion", json.dumps({"version": artifact.version}).encode())
            promoted = time.perf_counter()
            query = f"SELECT count() FROM voter_scores WHERE version = '{artifact.version}' AND source = 'stream'"
            while True:
                producing.run_until_complete(asyncio.sleep(0.05))
                rows = call(port, "POST", "/api/v1/sql", json.dumps({"query": query}).encode())["rows"]
                if rows[0][0] > 0:
                    break
            first_score = time.perf_counter()
            task.cancel()
            producing.run_until_complete(asyncio.gather(task, return_exceptions=True))
            producing.close()
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    return {"push_s": pushed - started, "promote_with_bulk_rescore_s": promoted - pushed,
            "promote_to_first_stream_score_s": first_score - promoted}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voters-per-precinct", type=int, default=2500, help="bulk rescore size (x 400 precincts)")
    parser.add_argument("--skip-worker", action="store_true", help="no swap-latency measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="groundswell-bench-scoring-"))
    results: dict[str, Any] = {}
    stream = bench_scoring()
    results["in_stream"] = {"rows": stream.rows, "columns_rows_per_s": stream.columns_rows_per_s,
                            "records_rows_per_s": stream.records_rows_per_s,
                            "naive_rows_per_s": stream.naive_rows_per_s, "speedup": stream.speedup}  # fmt: skip
    for line in stream.lines():
        print(line, flush=True)
    bulk = bulk_rescore(work / "bulk", args.voters_per_precinct)
    results["bulk"] = bulk
    print(f"voter file load: {bulk['voters']:,} voters in {bulk['voter_file_load_s']:.1f} s "
          f"({bulk['voter_file_load_rows_per_s']:,.0f} rows/s)", flush=True)  # fmt: skip
    print(f"bulk rescore in ClickHouse: {bulk['sql_voters_per_s']:,.0f} voters/s ({bulk['sql_rescore_s']:.2f} s); "
          f"read out and score in numpy: {bulk['python_voters_per_s']:,.0f} voters/s; "
          f"ratio {bulk['ratio_sql_over_python']:.1f}x", flush=True)  # fmt: skip
    if not args.skip_worker:
        swap = swap_latency(work / "swap")
        results["swap"] = swap
        print(f"swap: push {swap['push_s']:.2f} s, promote incl. bulk rescore "
              f"{swap['promote_with_bulk_rescore_s']:.2f} s, promote → first stream score by the new champion "
              f"{swap['promote_to_first_stream_score_s']:.2f} s", flush=True)  # fmt: skip
    print(json.dumps(results, indent=2))
    os._exit(0)


if __name__ == "__main__":
    main()
