"""`groundswell` command line: up, worker, simulate, migrate, sql."""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from config.geography import Geography, GeographyError
from config.settings import ConfigError, Settings, load_settings
from streams.broker import BrokerError

log = logging.getLogger("groundswell")
TOKEN_FILE = "admin-token"

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Faust leaves the root logger at DEBUG, so every internal debug call builds a record.
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        **{name: {"level": "INFO"} for name in ("groundswell", "streams", "sinks", "config")},
        # kafka-python logs every refused connection while we wait for a broker; we report that ourselves.
        "kafka": {"level": "CRITICAL"},
    },
}


def _settings(**overrides: Any) -> Settings:
    return load_settings(**overrides)


def _demo_overrides() -> dict[str, Any]:
    """`up` runs as a demo unless a secret is configured: PII hashes then use a public key."""
    return {} if os.environ.get("GROUNDSWELL_SECRET") else {"demo": True}


def cmd_migrate(args: argparse.Namespace) -> int:
    from sinks.clickhouse.client import connect, warehouse_from_dsn
    from sinks.clickhouse.migrations import migrate

    settings = _settings(**_demo_overrides())
    warehouse = warehouse_from_dsn(
        settings.clickhouse_dsn, settings.clickhouse.cluster, settings.clickhouse.deduplication_window
    )
    if warehouse.embedded:
        Path(settings.clickhouse_dsn.removeprefix("chdb://")).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = connect(warehouse)
    except Exception as exc:
        if warehouse.embedded:
            raise SystemExit(
                f"cannot open the embedded warehouse {settings.clickhouse_dsn}: {exc}\n"
                "Only one process may open it; a running worker migrates it on start."
            ) from exc
        raise
    applied = migrate(client, warehouse, settings.timezone)
    print(f"applied migrations {applied}" if applied else "schema is up to date")
    return 0


def _token(settings: Settings, generate: bool) -> str:
    from streams.auth import new_token

    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    if not generate:
        raise ConfigError("GROUNDSWELL_ADMIN_TOKEN is required outside demo mode")
    token = new_token()
    path = settings.data_dir / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(token + "\n")
    return token


def run_worker(settings: Settings, simulate: list[str] | None) -> int:
    """Start (if needed) the embedded broker, migrate, then run the Faust worker until signalled."""
    import faust

    from sinks.clickhouse.client import warehouse_from_dsn
    from streams.app import WorkerContext, create_app
    from streams.auth import Principal, TokenAuthority
    from streams.broker import EmbeddedBroker, ensure_topics

    geography = Geography.from_csv(settings.geography)
    warehouse = warehouse_from_dsn(
        settings.clickhouse_dsn, settings.clickhouse.cluster, settings.clickhouse.deduplication_window
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        bootstrap = settings.bootstrap_servers
        if settings.uses_embedded_broker:
            broker = EmbeddedBroker(settings.embedded_broker_port, settings.data_dir / "broker.log")
            broker.start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
            print(f"embedded broker (Tansu, in memory: development and demos only) on {bootstrap}", flush=True)
        ensure_topics(settings, bootstrap)
        # The ingest service migrates the warehouse itself, while its consumer joins the group.

        auth = TokenAuthority()
        token = _token(settings, generate=settings.demo)
        auth.register(token, Principal("admin", "admin"))
        url = f"http://{settings.web_host}:{settings.web_port}"
        print(f"dashboard: {url}/dashboard   (sign in with a token)", flush=True)
        print(f"web: {url}/api/v1/metrics?level=county&window=1h   (Authorization: Bearer <token>)", flush=True)
        if settings.admin_token is None:
            print(f"demo admin token: {token}   (also in {settings.data_dir / TOKEN_FILE})", flush=True)

        ctx = WorkerContext(settings, geography, warehouse, auth, bootstrap)
        if simulate is not None:
            _load_simulated_voter_file(settings, geography)
            env = {**os.environ, "GROUNDSWELL_KAFKA_URL": f"kafka://{bootstrap}"}
            # Its own session: Ctrl-C reaches the worker, which stops the simulator first and then
            # drains what it produced, so nothing produced is left behind in the in-memory broker.
            sim = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "simulate", *simulate], env=env, start_new_session=True
            )
            ctx.before_stop.append(partial(_stop_process, sim))
            stack.callback(_stop_process, sim)

        app = create_app(ctx)
        worker = faust.Worker(app, loglevel="INFO", quiet=True, logging_config=LOGGING_CONFIG, redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def _load_simulated_voter_file(settings: Settings, geography: Geography) -> None:
    """The demo scores voters, so `up` loads the simulated world's voter file once (before the worker
    opens the warehouse; later starts find it loaded). Only for the shipped geography: another one has
    its own voter file, loaded with `groundswell voters load`."""
    from config.settings import DEFAULT_GEOGRAPHY
    from sinks.clickhouse.client import connect, warehouse_from_dsn
    from sinks.clickhouse.migrations import migrate
    from sinks.clickhouse.voters import VoterStore
    from streams.simulation.voter_export import write_voter_file
    from streams.simulation.world import DEFAULT_SEED, build_world
    from streams.voter_load import DirectSink, load_voter_file

    if settings.geography.resolve() != DEFAULT_GEOGRAPHY.resolve():
        return
    warehouse = warehouse_from_dsn(
        settings.clickhouse_dsn, settings.clickhouse.cluster, settings.clickhouse.deduplication_window
    )
    client = connect(warehouse)
    try:
        migrate(client, warehouse, settings.timezone)
        store = VoterStore(client, warehouse)
        if store.count() > 0:
            return
        path = settings.data_dir / "simulated-voters.parquet"
        voters = write_voter_file(build_world(DEFAULT_SEED), path)
        report = load_voter_file(path, geography, settings.hashing_secret, DirectSink(store))
        print(f"loaded the simulated voter file: {report.rows_loaded:,} of {voters:,} voters ({path})", flush=True)
    finally:
        client.close()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def cmd_up(args: argparse.Namespace) -> int:
    settings = _settings(**_demo_overrides())
    simulate = None
    if not args.no_simulate:
        # A random seed unless given: a fixed one would re-send the same event_ids on every run.
        simulate = [
            "--rate", str(args.rate), "--history-days", str(args.history_days),
            *(["--seed", str(args.seed)] if args.seed is not None else []),
        ]  # fmt: skip
    return run_worker(settings, simulate)


def cmd_worker(args: argparse.Namespace) -> int:
    return run_worker(_settings(), None)


def cmd_simulate(args: argparse.Namespace) -> int:
    from streams.simulation.cli import run_simulate

    settings = _settings(**_demo_overrides())
    return int(run_simulate(args, settings.bootstrap_servers))


def _client_token(settings: Settings, given: str | None) -> str:
    """--token, else GROUNDSWELL_ADMIN_TOKEN, else the demo token file written by `groundswell up`."""
    token = given or (settings.admin_token.get_secret_value() if settings.admin_token else None)
    token_path = settings.data_dir / TOKEN_FILE
    if token is None and token_path.exists():
        token = token_path.read_text().strip()
    if token is None:
        raise SystemExit("no token: pass --token, set GROUNDSWELL_ADMIN_TOKEN, or run `groundswell up` first")
    return token


def _worker_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def cmd_voters_load(args: argparse.Namespace) -> int:
    from sinks.clickhouse.client import connect, warehouse_from_dsn
    from sinks.clickhouse.migrations import migrate
    from sinks.clickhouse.voters import VoterStore
    from streams.voter_file import VoterFileError
    from streams.voter_load import (
        DirectSink,
        ProgressLine,
        VoterSink,
        WorkerSink,
        expected_rows,
        format_report,
        load_voter_file,
        report_json,
    )  # fmt: skip

    settings = _settings(**_demo_overrides())
    geography = Geography.from_csv(settings.geography)
    path = Path(args.file)
    if not path.is_file():
        print(f"groundswell: no such file {path}", file=sys.stderr)
        return 2
    url = args.url or f"http://127.0.0.1:{settings.web_port}"
    sink: VoterSink
    if not args.direct and (args.url or _worker_answers(url)):
        sink = WorkerSink(url, _client_token(settings, args.token))
        via = f"through the worker at {url}"
    else:
        warehouse = warehouse_from_dsn(
            settings.clickhouse_dsn, settings.clickhouse.cluster, settings.clickhouse.deduplication_window
        )
        client = connect(warehouse)
        migrate(client, warehouse, settings.timezone)
        sink = DirectSink(VoterStore(client, warehouse))
        via = "directly into ClickHouse"
    print(f"loading {path.name} {via}", file=sys.stderr)
    progress = None if args.quiet else ProgressLine(expected_rows(path))
    try:
        report = load_voter_file(path, geography, settings.hashing_secret, sink, args.batch_rows, progress)
    except (VoterFileError, RuntimeError) as exc:
        print(f"\ngroundswell: {exc}", file=sys.stderr)
        return 1
    if progress is not None:
        print(file=sys.stderr)
    print(json.dumps(report_json(report)) if args.json else format_report(report))
    return 0


def _api(
    args: argparse.Namespace, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """Call a running worker's API with the given (else the admin) token; (status, decoded JSON body)."""
    settings = _settings(**_demo_overrides())
    url = (args.url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
    request = urllib.request.Request(
        url + path,
        data=raw if raw is not None else None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {_client_token(settings, args.token)}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except urllib.error.URLError as exc:
        raise SystemExit(f"cannot reach the worker at {url}: {exc.reason} (is `groundswell up` running?)") from None


def _print_api_result(status: int, body: Any) -> int:
    if status >= 400:
        print(f"error {status}: {body.get('error', body) if isinstance(body, dict) else body}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.regions:
        request["regions"] = [r.strip() for r in args.regions.split(",") if r.strip()]
    if args.expires_days is not None:
        request["expires_in_days"] = args.expires_days
    status, body = _api(args, "POST", "/api/v1/tokens", request)
    if status < 400:
        print("the token is shown once; store it now", file=sys.stderr)
    return _print_api_result(status, body)


def cmd_token_list(args: argparse.Namespace) -> int:
    return _print_api_result(*_api(args, "GET", "/api/v1/tokens"))


def cmd_token_revoke(args: argparse.Namespace) -> int:
    return _print_api_result(*_api(args, "DELETE", f"/api/v1/tokens/{urllib.parse.quote(args.token_id)}"))


def cmd_model_push(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    status, body = _api(args, "POST", "/api/v1/models", raw=data)
    if status >= 400 and isinstance(body, dict) and isinstance(body.get("gate"), dict):
        for check in body["gate"].get("checks", []):
            print(f"  {check.get('status', '?'):5} {check.get('name')}: {check.get('reason')}", file=sys.stderr)
    return _print_api_result(status, body)


def cmd_model_list(args: argparse.Namespace) -> int:
    return _print_api_result(*_api(args, "GET", "/api/v1/models"))


def cmd_model_promote(args: argparse.Namespace) -> int:
    body = {"version": args.version, "reason": args.reason or "", "rescore": not args.no_rescore}
    return _print_api_result(*_api(args, "POST", f"/api/v1/models/aliases/{args.alias}", body))


def cmd_model_shadow(args: argparse.Namespace) -> int:
    body = {"version": "" if args.clear else args.version, "reason": args.reason or ""}
    if not args.clear and not args.version:
        raise SystemExit("give a VERSION, or --clear")
    return _print_api_result(*_api(args, "POST", "/api/v1/models/aliases/shadow", body))


def cmd_model_rollback(args: argparse.Namespace) -> int:
    return _print_api_result(*_api(args, "POST", f"/api/v1/models/aliases/{args.alias}/rollback", raw=b""))


def cmd_sql(args: argparse.Namespace) -> int:
    settings = _settings(**_demo_overrides())
    token = _client_token(settings, args.token)
    url = args.url or f"http://127.0.0.1:{settings.web_port}"
    wire_format = "json" if args.format in ("tsv", "json") else args.format
    if wire_format == "arrow" and args.output is None and sys.stdout.isatty():
        print("--format arrow writes binary: give --output FILE or redirect stdout", file=sys.stderr)
        return 2
    request = urllib.request.Request(
        f"{url}/api/v1/sql",
        data=json.dumps({"query": args.query, "format": wire_format}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        print(f"error {exc.code}: {detail}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"cannot reach the worker at {url}: {exc.reason} (is `groundswell up` running?)", file=sys.stderr)
        return 1
    if wire_format != "json":
        if args.output is not None:
            Path(args.output).write_bytes(payload)
        else:
            sys.stdout.buffer.write(payload)
            sys.stdout.flush()
        return 0
    body = json.loads(payload)
    lines = [json.dumps(body, default=str)] if args.format == "json" else [
        "\t".join(body["columns"]),
        *("\t".join("" if v is None else str(v) for v in row) for row in body["rows"]),
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    if args.output is not None:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="groundswell", description="Real-time analytics for campaigns.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="embedded broker + worker + web + simulated campaign (development/demo)")
    up.add_argument("--no-simulate", action="store_true", help="do not start the simulated campaign")
    up.add_argument("--rate", type=float, default=200.0, help="simulated events per second (default 200)")
    up.add_argument("--seed", type=int, default=None, help="simulation seed (default: random)")
    up.add_argument(
        "--history-days", type=float, default=21.0,
        help="days of past campaign the simulator sends first, so charts and trend baselines have history "
        "(default 21; trend detection needs two weeks)",
    )  # fmt: skip
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="run a worker (consumes Kafka, writes ClickHouse, serves HTTP)")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="create or upgrade the ClickHouse schema (idempotent)")
    migrate.set_defaults(func=cmd_migrate)

    simulate = sub.add_parser("simulate", help="produce a simulated campaign to Kafka")
    from streams.simulation.cli import add_simulate_arguments

    add_simulate_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

    sql = sub.add_parser("sql", help="run a read-only SQL query against a running worker")
    sql.add_argument("query", help="a SELECT statement")
    sql.add_argument(
        "--format",
        choices=("tsv", "json", "csv", "arrow"),
        default="tsv",
        help="tsv (default) or json as printed rows; csv or arrow (an Arrow IPC stream) as ClickHouse renders them",
    )
    sql.add_argument("--output", help="write the result to this file instead of standard output")
    sql.add_argument("--token", help="bearer token (default: GROUNDSWELL_ADMIN_TOKEN or the demo token file)")
    sql.add_argument("--url", help="worker URL (default http://127.0.0.1:$GROUNDSWELL_WEB_PORT)")
    sql.set_defaults(func=cmd_sql)

    voters = sub.add_parser("voters", help="the voter file").add_subparsers(dest="voters_command", required=True)
    load = voters.add_parser(
        "load", help="validate and load a voter file (CSV or Parquet; format in docs/data-dictionary.md)"
    )
    load.add_argument("file", help="a .csv or .parquet voter file")
    load.add_argument("--batch-rows", type=int, default=50_000, help="rows per insert (default 50,000)")
    load.add_argument("--direct", action="store_true", help="write to ClickHouse from this process, not via a worker")
    load.add_argument("--url", help="worker URL (default: http://127.0.0.1:$GROUNDSWELL_WEB_PORT if it answers)")
    load.add_argument("--token", help="admin bearer token (default: GROUNDSWELL_ADMIN_TOKEN or the demo token file)")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument("--quiet", action="store_true", help="no progress bar")
    load.set_defaults(func=cmd_voters_load)

    tokens = sub.add_parser("token", help="API tokens (through a running worker; admin)")
    token_sub = tokens.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token (printed once)")
    create.add_argument("--name", required=True, help="who or what the token is for")
    create.add_argument("--role", required=True, choices=("admin", "statistician", "modeller", "regional"))
    create.add_argument("--regions", help="comma-separated regions (regional tokens only)")
    create.add_argument("--expires-days", type=float, help="expire after this many days (default: never)")
    create.set_defaults(func=cmd_token_create)
    token_sub.add_parser("list", help="list tokens (never their secrets)").set_defaults(func=cmd_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_token_revoke)
    model = sub.add_parser("model", help="support models: push, list, promote, shadow, rollback (admin or modeller)")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    push = model_sub.add_parser("push", help="push an artifact through the gate (docs/modelling.md)")
    push.add_argument("file", help="an artifact file (zip of manifest.json + coefficients.npy)")
    push.set_defaults(func=cmd_model_push)
    model_sub.add_parser("list", help="versions, aliases and gate reports").set_defaults(func=cmd_model_list)
    promote = model_sub.add_parser("promote", help="point an alias (default champion) at a version")
    promote.add_argument("version", help="the version's content hash (at least 8 hex digits)")
    promote.add_argument("--alias", default="champion", choices=("champion", "challenger", "shadow"))
    promote.add_argument("--reason", help="why, for the alias history")
    promote.add_argument("--no-rescore", action="store_true", help="do not rescore every voter on promotion")
    promote.set_defaults(func=cmd_model_promote)
    shadow = model_sub.add_parser("shadow", help="score a version beside the champion (or --clear)")
    shadow.add_argument("version", nargs="?")
    shadow.add_argument("--clear", action="store_true")
    shadow.add_argument("--reason")
    shadow.set_defaults(func=cmd_model_shadow)
    rollback = model_sub.add_parser("rollback", help="point an alias back at its previous version")
    rollback.add_argument("--alias", default="champion", choices=("champion", "challenger", "shadow"))
    rollback.set_defaults(func=cmd_model_rollback)
    for command in (create, revoke, token_sub.choices["list"], push, promote, shadow, rollback,
                    model_sub.choices["list"]):  # fmt: skip
        command.add_argument("--url", help="worker URL (default http://127.0.0.1:$GROUNDSWELL_WEB_PORT)")
        command.add_argument("--token", help="admin token (default: GROUNDSWELL_ADMIN_TOKEN or the demo token file)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.config.dictConfig(LOGGING_CONFIG)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, GeographyError, BrokerError) as exc:
        print(f"groundswell: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
