"""The Faust application: the frame of a Groundswell worker.

Faust owns the lifecycle (start, signals, clean stop), the web server and timers; the
high-volume ingest path runs inside it as a service (streams/ingest.py), because Faust's
per-event agents cost ~90 µs of CPU per event (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

import confluent_kafka
import faust
import mode
import msgspec
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config.geography import Geography
from config.settings import CANVASS_TOPIC, CONTROL_TOPIC, DEFAULT_ALERTS, DEFAULT_GEOGRAPHY, Settings
from models.trends import TrendFlag
from models.trends.quality import QualityFlag
from sinks.alerts import (
    AckOutcome,
    AlertConfig,
    AlertDeliverer,
    AlertDispatcher,
    AlertStore,
    build_channels,
    load_alert_config,
)
from sinks.alerts.alert import ALERT_STATUSES
from sinks.clickhouse.client import Warehouse, connect
from sinks.clickhouse.links import LinkStore
from sinks.clickhouse.models import ModelRegistryStore
from sinks.clickhouse.queries import (
    RAW_SQL_FORMATS,
    MetricsQuery,
    QueryError,
    fetch_metrics,
    run_read_only,
    run_read_only_raw,
)
from sinks.clickhouse.scoring import ScoringSource
from sinks.clickhouse.tokens import StoredToken, TokenStore
from sinks.clickhouse.trends import TrendStore
from sinks.clickhouse.voters import VoterStore
from sinks.exactly_once import PartitionKey
from sinks.metrics import PipelineMetrics
from streams.access import ADMIN, MODEL_READERS, MODEL_WRITERS, SQL_READERS, Access
from streams.auth import ROLES, Principal, TokenAuthority, TokenGrant, new_token, new_token_id, token_digest
from streams.config_view import redacted_settings
from streams.control import ControlDispatcher
from streams.http_metrics import instrument
from streams.ingest import IngestLoop
from streams.linking import LinkingAgent
from streams.links_api import register_link_routes
from streams.model_registry import MODEL, ModelOpError, ModelRegistry
from streams.scoring import ScoringAgent
from streams.trends import TrendAgent
from streams.voter_file import LOADED_SCHEMA
from streams.voter_load import batch_token
from streams.web.dashboard import register_dashboard

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WorkerContext:
    """Everything a worker's services and views share."""

    settings: Settings
    geography: Geography
    warehouse: Warehouse
    auth: TokenAuthority
    bootstrap: str
    metrics: PipelineMetrics = field(default_factory=PipelineMetrics)
    ingest: IngestLoop | None = None
    control: ControlDispatcher | None = None
    trends: TrendAgent | None = None
    scoring: ScoringAgent | None = None
    # Where trend flags go after they are stored (the alert router, issue #4); none: stored only.
    flag_listeners: list[Callable[[list[TrendFlag]], Awaitable[None]]] = field(default_factory=list)
    # Run first when the worker stops (e.g. stop the demo simulator so the worker can drain it).
    before_stop: list[Callable[[], None]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    _reads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="groundswell-read")
    )
    _local: threading.local = field(default_factory=threading.local)

    def _read_client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = connect(self.warehouse)
            self._local.client = client
        return client

    async def read(self, fn: Callable[[Client], T]) -> T:
        """Run a query on a read thread with that thread's own client (never the ingest writer's)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, lambda: fn(self._read_client()))

    async def publish_flags(self, flags: list[TrendFlag]) -> None:
        for listener in self.flag_listeners:
            await listener(flags)

    async def read_only_sql(self, fn: Callable[[Client], T]) -> T:
        """A user's SQL on a client of its own, closed afterwards: chDB keeps `readonly=1` on a session
        after it refuses a write, which would make a shared client refuse every later write."""

        def run() -> T:
            client = connect(self.warehouse)
            try:
                return fn(client)
            finally:
                client.close()

        return await asyncio.get_running_loop().run_in_executor(self._reads, run)

    async def write(self, fn: Callable[[Client], T]) -> T:
        """Run an insert that is not ingest's (a voter-file batch, a model push) the same way."""
        return await self.read(fn)


_json = msgspec.json.Encoder()
MAX_UPLOAD_BYTES = 64 << 20


SCORING_INTERVAL_S = 1.0
MAX_SCORING_BATCHES_PER_TICK = 20
ALIAS_MOVED = "model.alias_moved"
# How often a worker re-reads the stored tokens: a revocation reaches every worker within this.
TOKEN_RELOAD_SECONDS = 5.0


class TokenRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    role: str
    regions: list[str] = []
    expires_in_days: Annotated[float, msgspec.Meta(gt=0, le=3650)] | None = None


class VoterLoadRecord(msgspec.Struct, frozen=True):
    load_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
    file_name: Annotated[str, msgspec.Meta(max_length=512)]
    file_sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    rows_read: Annotated[int, msgspec.Meta(ge=0)]
    rows_loaded: Annotated[int, msgspec.Meta(ge=0)]
    rows_rejected: Annotated[int, msgspec.Meta(ge=0)]
    rejected_by_reason: dict[str, Annotated[int, msgspec.Meta(ge=0)]]
    ignored_columns: list[str]
    started_at: float


def _json_response(view: View, payload: Any, status: int = 200) -> Response:
    return view.bytes(_json.encode(payload), content_type="application/json", status=status)


def _error(view: View, status: int, message: str) -> Response:
    return _json_response(view, {"error": message}, status)


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name} must be an ISO 8601 time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise QueryError(f"{name} must include a time zone (e.g. 2026-10-31T00:00:00Z)")
    return parsed


def create_app(ctx: WorkerContext) -> faust.App:
    settings = ctx.settings
    app = faust.App(
        # One consumer group per worker, so that every worker sees every control message.
        f"groundswell-{settings.worker_id}",
        broker=f"kafka://{ctx.bootstrap}",
        autodiscover=False,
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # The embedded broker completes a group join only after half the session timeout.
        broker_session_timeout=settings.ingest.session_timeout(settings.uses_embedded_broker) / 1000,
        broker_heartbeat_interval=settings.ingest.heartbeat_interval_ms / 1000,
        broker_rebalance_timeout=settings.ingest.session_timeout(settings.uses_embedded_broker) / 1000,
        topic_allow_declare=False,
        topic_disable_leader=True,
        # Voter-file batches arrive as Arrow streams of up to ~50k rows (streams/voter_load.py).
        web_application_options={"client_max_size": MAX_UPLOAD_BYTES},
    )

    ctx.control = ControlDispatcher(ctx.metrics.registry)
    control = ctx.control
    control_topic = app.topic(CONTROL_TOPIC, value_serializer="raw", key_serializer="raw")

    # Per-event Faust agent: control messages are rare, and every worker must see every one.
    @app.agent(control_topic, concurrency=1)
    async def control_agent(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            await control.dispatch(raw)

    class IngestService(mode.Service):
        """Runs the batch ingest loop; on stop, flushes and commits what it holds."""

        def __post_init__(self) -> None:
            self._stopping = asyncio.Event()
            self._task: asyncio.Task[None] | None = None

        async def on_start(self) -> None:
            ctx.ingest = IngestLoop(ctx.settings, ctx.geography, ctx.warehouse, ctx.metrics, bootstrap=ctx.bootstrap)
            await ctx.ingest.start()
            self._task = asyncio.ensure_future(ctx.ingest.run(self._stopping))

        async def on_stop(self) -> None:
            for hook in ctx.before_stop:
                await asyncio.to_thread(hook)
            self._stopping.set()
            if self._task is not None:
                await self._task
            if ctx.ingest is not None:
                await ctx.ingest.stop()

    # A direct dependency of the app, not an @app.service: those start only after Faust's own
    # consumer group has joined, and ingest must not wait for the control agent's group.
    app.add_dependency(IngestService())

    access = Access(ctx.auth.authenticate)
    authorized = access.principal

    async def reload_tokens() -> None:
        try:
            stored = await ctx.read(lambda client: TokenStore(client, ctx.warehouse).all())
        except Exception as exc:  # the table appears with the first migration; until then, bootstrap tokens only
            log.debug("could not read stored tokens yet: %s", exc)
            return
        ctx.auth.load(_grant(t) for t in stored)

    @app.timer(TOKEN_RELOAD_SECONDS)  # type: ignore[untyped-decorator]
    async def token_reload_timer() -> None:
        await reload_tokens()

    # --- alerts (issue #4) --------------------------------------------------------------------------
    # The shipped alerts.yaml routes the simulated campaign's regions; with another geography it is
    # loaded without the region check (its regional rules then match nothing) and says so.
    shipped = settings.alerts_config == DEFAULT_ALERTS
    alert_config = load_alert_config(settings.alerts_config, regions=None if shipped else ctx.geography.regions)
    if shipped and settings.geography != DEFAULT_GEOGRAPHY:
        log.warning("alerts: the default %s names the simulated regions; set GROUNDSWELL_ALERTS_CONFIG "
                    "for this geography's staff", DEFAULT_ALERTS.name)  # fmt: skip
    dispatcher = AlertDispatcher(alert_config, settings.timezone, settings.hashing_secret)

    async def route_flags(flags: list[TrendFlag]) -> None:
        alerts = await ctx.read(lambda client: dispatcher.submit_trend_flags(AlertStore(client, ctx.warehouse), flags))
        ctx.metrics.alerts_planned.inc(len(alerts))

    ctx.flag_listeners.append(route_flags)
    delivery = AlertDelivery(ctx, alert_config)

    @app.page("/api/v1/alerts")
    async def api_alerts(view: View, request: Request) -> Response:
        principal = access.require(request)
        q = request.query
        status = q.get("status")
        if status is not None and status not in ALERT_STATUSES:
            return _error(view, 400, f"status must be one of {', '.join(ALERT_STATUSES)}")
        try:
            limit = int(q.get("limit", "100"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            return _error(view, 400, "limit must be an integer from 1 to 1000")
        regions, flag_id = principal.regions, q.get("flag_id")
        rows = await ctx.read(lambda client: AlertStore(client, ctx.warehouse).alerts(regions, status, flag_id, limit))
        return _json_response(view, {"alerts": rows})

    @app.page("/api/v1/alerts/{alert_id}/ack")
    class AckView(View):
        async def post(self, request: Request, alert_id: str) -> Response:
            principal = access.require(request)
            regions = principal.regions
            result = await ctx.read(
                lambda client: AlertStore(client, ctx.warehouse).ack(alert_id, principal.name, regions)
            )
            # Another region's alert answers like a missing one: ids must not be probed across regions.
            if result.outcome in (AckOutcome.NOT_FOUND, AckOutcome.FORBIDDEN):
                return _error(self, 404, f"no alert {alert_id!r}")
            acked_at = result.acked_at.isoformat() if result.acked_at else None
            body = {
                "alert_id": alert_id,
                "outcome": str(result.outcome),
                "acked_by": result.acked_by,
                "acked_at": acked_at,
            }
            return _json_response(self, body)

    async def route_quality(flags: list[tuple[QualityFlag, str]]) -> None:
        def submit(client: Client) -> int:
            return len(dispatcher.submit_quality_flags(AlertStore(client, ctx.warehouse), flags))

        ctx.metrics.alerts_planned.inc(await ctx.read(submit))

    trend_agent = TrendAgent(
        ctx.geography, settings.timezone, timedelta(seconds=settings.trends.grace_s),
        lambda fn: ctx.read(lambda client: fn(TrendStore(client, ctx.warehouse))),
        on_flags=ctx.publish_flags, on_quality=route_quality,
    )  # fmt: skip
    ctx.trends = trend_agent

    @app.timer(settings.trends.interval_s)  # type: ignore[untyped-decorator]
    async def trend_timer() -> None:
        # One worker runs the agent: the owner of the canvass topic's partition 0 in the ingest group.
        if not settings.trends.enabled or ctx.ingest is None:
            return
        if PartitionKey(CANVASS_TOPIC, 0) not in ctx.ingest.stats.assigned:
            delivery.stop()  # another worker leads now
            return
        delivery.start()
        if catching_up():
            return
        started = time.perf_counter()
        before = trend_agent.windows_evaluated
        try:
            flags = await trend_agent.tick()
        except Exception:
            log.exception("trend agent tick failed; the next tick retries from the saved state")
            return
        ctx.metrics.trend_windows.inc(trend_agent.windows_evaluated - before)
        ctx.metrics.trend_tick_seconds.observe(time.perf_counter() - started)
        for flag in flags:
            ctx.metrics.trend_flags.labels(flag.metric, flag.level, flag.status).inc()

    @app.page("/api/v1/trends")
    async def api_trends(view: View, request: Request) -> Response:
        principal = access.require(request)
        q = request.query
        status, metric = q.get("status"), q.get("metric")
        if status not in (None, "open", "new", "updated", "closed"):
            return _error(view, 400, "status must be open, new, updated or closed")
        try:
            limit = int(q.get("limit", "200"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            return _error(view, 400, "limit must be an integer from 1 to 1000")
        regions = principal.regions  # regional staff: their regions only, filtered in the query
        flags = await ctx.read(lambda client: TrendStore(client, ctx.warehouse).flags(regions, status, metric, limit))
        return _json_response(view, {"flags": flags})

    def catching_up() -> bool:
        """Ingest first: while this worker has a backlog, trends and scoring wait (they read what
        ingest has written, and they share its event loop and the interpreter's lock)."""
        return ctx.ingest is not None and ctx.ingest.backlog() > settings.ingest.batch_max_rows // 10

    # --- models (issue #3) ------------------------------------------------------------------------

    def registry_call(fn: Callable[[ModelRegistry], T]) -> Awaitable[T]:
        return ctx.read(lambda client: fn(ModelRegistry(client, ctx.warehouse)))

    scoring_agent = ScoringAgent(
        lambda fn: ctx.read(lambda client: fn(ModelRegistryStore(client, ctx.warehouse),
                                             ScoringSource(client, ctx.warehouse))),
        settings.worker_id,
        evaluation_share=settings.scoring.evaluation_share,
        batch_rows=settings.scoring.batch_rows,
        checkpoint_s=settings.scoring.checkpoint_s,
    )  # fmt: skip
    ctx.scoring = scoring_agent

    async def on_alias_moved(message: dict[str, Any]) -> None:
        if message.get("model") == MODEL:
            scoring_agent.aliases_changed()

    control.register(ALIAS_MOVED, on_alias_moved)

    async def announce(alias: str, version: str) -> None:
        payload = msgspec.json.encode({"type": ALIAS_MOVED, "model": MODEL, "alias": alias, "version": version})
        await asyncio.to_thread(_publish_control, ctx.bootstrap, payload)
        scoring_agent.aliases_changed()  # this worker at once, whatever the control topic does

    @app.timer(SCORING_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def scoring_timer() -> None:
        # The same single worker as trends: the owner of canvass partition 0 in the ingest group.
        if not settings.scoring.enabled or ctx.ingest is None:
            return
        if PartitionKey(CANVASS_TOPIC, 0) not in ctx.ingest.stats.assigned or catching_up():
            return
        try:
            if not scoring_agent.versions:
                created = await registry_call(lambda r: r.ensure_champion())
                if created:
                    log.info("no model yet: champion %s is an all-zero model that learns online", created[:12])
            for _ in range(MAX_SCORING_BATCHES_PER_TICK):
                started = time.perf_counter()
                outcome = await scoring_agent.tick()
                ctx.metrics.scoring_seconds.observe(time.perf_counter() - started)
                ctx.metrics.voters_scored.inc(outcome.scored)
                ctx.metrics.labels_learned.inc(outcome.learned)
                if outcome.rows < scoring_agent.batch_rows:
                    break
            for row in scoring_agent.last_metrics:
                for name in ("log_loss", "brier", "ece", "auc"):
                    ctx.metrics.model_metric.labels(row.alias, row.scope, name).set(getattr(row, name))
                ctx.metrics.model_metric.labels(row.alias, row.scope, "window_labels").set(row.window_labels)
        except Exception:
            log.exception("scoring tick failed; the next tick retries")

    linking_agent = LinkingAgent(lambda fn: ctx.read(lambda client: fn(LinkStore(client, ctx.warehouse))),
                                 settings.linking, metrics=ctx.metrics)  # fmt: skip

    @app.timer(settings.linking.interval_s)  # type: ignore[untyped-decorator]
    async def linking_timer() -> None:
        # The same single worker as scoring: the owner of canvass partition 0 in the ingest group.
        ingest = ctx.ingest
        leading = ingest is not None and PartitionKey(CANVASS_TOPIC, 0) in ingest.stats.assigned
        if settings.linking.enabled and leading and not catching_up():
            await linking_agent.run_ticks()

    @app.page("/api/v1/models")
    class ModelsView(View):
        """GET: versions and aliases. POST: push an artifact (the request body), through the gate."""

        async def get(self, request: Request) -> Response:
            access.require(request, MODEL_READERS, "read models")
            return _json_response(self, await registry_call(lambda r: r.listing()))

        async def post(self, request: Request) -> Response:
            principal = access.require(request, MODEL_WRITERS, "change models")
            data = await request.read()
            try:
                report = await registry_call(lambda r: r.push(data, principal.name))
            except ModelOpError as exc:
                return _json_response(self, {"error": str(exc), "gate": exc.detail}, exc.status)
            return _json_response(self, {"version": report.version, "gate": report.as_dict()}, 201)

    @app.page("/api/v1/models/aliases/{alias}")
    class AliasView(View):
        """POST {"version": "<hex prefix>", "reason": "..."}: point an alias at a version ("" clears a shadow)."""

        async def post(self, request: Request, alias: str) -> Response:
            principal = access.require(request, MODEL_WRITERS, "change models")
            try:
                body = msgspec.json.decode(await request.read(), type=AliasRequest)
                version = await registry_call(lambda r: r.move(alias, body.version, principal.name, body.reason))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return _error(self, 400, f'expected {{"version": "...", "reason": "..."}}: {exc}')
            except ModelOpError as exc:
                return _error(self, exc.status, str(exc))
            await announce(alias, version)
            rescore = None
            if alias == "champion" and body.rescore:
                result = await registry_call(lambda r: r.rescore_all(version))
                ctx.metrics.bulk_rescore_rate.set(result.voters_per_s)
                rescore = {"voters": result.voters, "seconds": round(result.seconds, 3)}
            return _json_response(self, {"alias": alias, "version": version, "rescored": rescore})

    @app.page("/api/v1/models/aliases/{alias}/rollback")
    class RollbackView(View):
        async def post(self, request: Request, alias: str) -> Response:
            principal = access.require(request, MODEL_WRITERS, "change models")
            try:
                version = await registry_call(lambda r: r.rollback(alias, principal.name))
            except ModelOpError as exc:
                return _error(self, exc.status, str(exc))
            await announce(alias, version)
            if alias == "champion":
                await registry_call(lambda r: r.rescore_all(version))
            return _json_response(self, {"alias": alias, "version": version})

    @app.page("/api/v1/models/metrics")
    async def model_metrics(view: View, request: Request) -> Response:
        access.require(request, MODEL_READERS, "read models")

        try:
            days = int(request.query.get("calibration_days", "7"))
            if not 1 <= days <= 366:
                raise ValueError
        except ValueError:
            return _error(view, 400, "calibration_days must be an integer from 1 to 366")

        def read(client: Client) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            store = ModelRegistryStore(client, ctx.warehouse)
            return store.latest_metrics(MODEL), store.calibration(MODEL, days)

        rows, calibration = await ctx.read(read)
        return _json_response(
            view, {"model": MODEL, "live": scoring_agent.versions, "metrics": rows, "calibration": calibration}
        )

    @app.page("/api/v1/tokens")
    class TokensView(View):
        """Create (POST) and list (GET) API tokens; admin only. A new token is shown once, in the response."""

        async def get(self, request: Request) -> Response:
            access.require(request, ADMIN, "manage tokens")
            stored = await ctx.read(lambda client: TokenStore(client, ctx.warehouse).all())
            return _json_response(
                self, {"tokens": [_token_json(t) for t in sorted(stored, key=lambda t: t.created_at)]}
            )

        async def post(self, request: Request) -> Response:
            principal = access.require(request, ADMIN, "manage tokens")
            try:
                wanted = msgspec.json.decode(await request.read(), type=TokenRequest)
                _check_grant(wanted, ctx.geography)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                return _error(self, 400, f"bad token request: {exc}")
            secret = new_token()
            now = datetime.now(UTC)
            expires = now + timedelta(days=wanted.expires_in_days) if wanted.expires_in_days else None
            stored = StoredToken(
                new_token_id(), wanted.name, wanted.role, tuple(sorted(set(wanted.regions))), token_digest(secret),
                now, principal.name, expires, None,
            )  # fmt: skip
            await ctx.write(lambda client: TokenStore(client, ctx.warehouse).save(stored))
            await reload_tokens()
            return _json_response(self, {**_token_json(stored), "token": secret}, 201)

    @app.page("/api/v1/tokens/{token_id}")
    class TokenView(View):
        """Revoke (DELETE) a token; admin only. Every worker refuses it within TOKEN_RELOAD_SECONDS."""

        async def delete(self, request: Request, token_id: str) -> Response:
            access.require(request, ADMIN, "manage tokens")
            found = await ctx.read(lambda client: TokenStore(client, ctx.warehouse).get(token_id))
            if found is None:
                return _error(self, 404, f"no token {token_id!r}")
            if found.revoked_at is None:
                revoked = dataclasses.replace(found, revoked_at=datetime.now(UTC))
                await ctx.write(lambda client: TokenStore(client, ctx.warehouse).save(revoked))
                await reload_tokens()
                found = revoked
            return _json_response(self, _token_json(found))

    @app.page("/api/v1/config")
    async def api_config(view: View, request: Request) -> Response:
        """The worker's effective configuration (admin only), secrets hidden, and its geography's size."""
        access.require(request, ADMIN, "read the configuration")
        geography = ctx.geography
        return _json_response(view, {
            "worker_id": settings.worker_id,
            "settings": redacted_settings(settings),
            "geography": {"precincts": len(geography.precincts), "regions": sorted(geography.regions)},
        })  # fmt: skip

    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        ingest = ctx.ingest
        body = {
            "status": "ok" if ingest is not None else "starting",
            "uptime_s": round(time.time() - ctx.started_at, 1),
            "assigned_partitions": len(ingest.stats.assigned) if ingest else 0,
            "events_accepted": ingest.stats.accepted if ingest else 0,
            "events_rejected": ingest.stats.rejected if ingest else 0,
            "consuming": bool(ingest and ingest.stats.assigned),
            "last_flush_age_s": (
                round(time.time() - ingest.stats.last_flush_at, 1) if ingest and ingest.stats.last_flush_at else None
            ),
        }
        return _json_response(view, body, 200 if ingest is not None else 503)

    @app.page("/metrics")
    async def prometheus_metrics(view: View, request: Request) -> Response:
        if not settings.metrics_public:
            if authorized(request) is None:
                return _error(view, 401, "a bearer token is required (or set GROUNDSWELL_METRICS_PUBLIC=true)")
            # Pipeline metrics span every region (e.g. the models' per-region figures): not for regional staff.
            access.require(request, MODEL_READERS, "read pipeline metrics")
        return view.bytes(generate_latest(ctx.metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/v1/metrics")
    async def api_metrics(view: View, request: Request) -> Response:
        principal = access.require(request)
        q = request.query
        try:
            query = MetricsQuery(
                level=q.get("level", "precinct"),
                window=q.get("window", "1h"),
                id=q.get("id"),
                start=_parse_time("from", q.get("from")),
                end=_parse_time("to", q.get("to")),
                regions=principal.regions,
            )
        except QueryError as exc:
            status = 403 if principal.regions is not None and "other regions" in str(exc) else 400
            return _error(view, status, str(exc))
        rows, truncated = await ctx.read(lambda client: fetch_metrics(client, query))
        return _json_response(
            view, {"level": query.level, "window": query.window, "rows": rows, "truncated": truncated}
        )

    @app.page("/api/v1/sql")
    class SqlView(View):
        """Read-only SQL for statisticians: ClickHouse enforces readonly=1 and the limits."""

        async def post(self, request: Request) -> Response:
            access.require(request, SQL_READERS, "run SQL")
            try:
                body = msgspec.json.decode(await request.read(), type=SqlRequest)
                if not body.query.strip():
                    raise ValueError
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                return _error(self, 400, 'expected a JSON body {"query": "SELECT ...", "format": "json|csv|arrow"}')
            try:
                if body.format == "json":
                    columns, rows = await ctx.read_only_sql(partial(run_read_only, sql=body.query))
                    return _json_response(self, {"columns": columns, "rows": rows})
                data = await ctx.read_only_sql(partial(run_read_only_raw, sql=body.query, fmt=body.format))
            except Exception as exc:  # ClickHouse's own message: syntax, readonly refusal, limits
                return _error(self, 400, str(exc).strip().splitlines()[0][:2000])
            return self.bytes(data, content_type=RAW_SQL_FORMATS[body.format][1])

    @app.page("/api/v1/voters/batches")
    class VoterBatchView(View):
        """One validated voter-file batch from `groundswell voters load` (admin only), as an Arrow stream."""

        async def post(self, request: Request) -> Response:
            access.require(request, ADMIN, "load voter files")
            headers = request.headers
            try:
                load_id = headers.get("X-Load-Id", "")
                if len(load_id) != 32 or any(c not in "0123456789abcdef" for c in load_id):
                    raise ValueError("X-Load-Id must be 32 lowercase hex digits")
                version = int(headers.get("X-Load-Version", ""))
                batch_index = int(headers.get("X-Batch-Index", ""))
                with pa.ipc.open_stream(await request.read()) as reader:
                    table = reader.read_all()
                if not table.schema.equals(LOADED_SCHEMA):
                    raise ValueError(f"the batch's columns do not match the voter format: {table.schema.names}")
            except (ValueError, pa.ArrowException) as exc:
                return _error(self, 400, f"bad voter batch: {exc}")
            store = partial(_insert_voters, ctx.warehouse, load_id, version, batch_token(load_id, batch_index), table)
            await ctx.write(store)
            return _json_response(self, {"inserted": table.num_rows})

    @app.page("/api/v1/voters/loads")
    class VoterLoadView(View):
        """The summary of a finished voter-file load (admin only)."""

        async def post(self, request: Request) -> Response:
            access.require(request, ADMIN, "load voter files")
            try:
                record = msgspec.json.decode(await request.read(), type=VoterLoadRecord)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return _error(self, 400, f"bad load record: {exc}")
            await ctx.write(partial(_record_load, ctx.warehouse, record))
            return _json_response(self, {"recorded": record.load_id})

    register_dashboard(app, ctx, authorized)
    register_link_routes(app, ctx, access)
    instrument(getattr(app.web, "web_app"), ctx.metrics.http_seconds)  # noqa: B009 (untyped in Faust)
    return app


class SqlRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    query: str
    format: Literal["json", "csv", "arrow"] = "json"


class AliasRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""
    rescore: bool = True  # champion only: rescore every voter on the file in ClickHouse


def _publish_control(bootstrap: str, payload: bytes) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(CONTROL_TOPIC, value=payload)
    if producer.flush(10) != 0:
        raise RuntimeError("the control message was not delivered within 10 s")


class AlertDelivery:
    """The alert deliverer's thread (with its own ClickHouse client), on the worker that leads trends."""

    def __init__(self, ctx: WorkerContext, config: AlertConfig) -> None:
        self._ctx = ctx
        self._config = config
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        ctx.before_stop.append(self.stop)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="groundswell-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        settings = self._ctx.settings
        client = connect(self._ctx.warehouse)
        try:
            deliverer = AlertDeliverer(AlertStore(client, self._ctx.warehouse), self._config,
                                       build_channels(self._config), timezone=settings.timezone,
                                       worker=settings.worker_id)  # fmt: skip
            deliverer.run(stop, poll_s=1.0)
        except Exception:
            log.exception("alert delivery stopped; it restarts on the next trend tick")
        finally:
            client.close()


def _grant(t: StoredToken) -> TokenGrant:
    regions = frozenset(t.regions) if t.role == "regional" else None
    return TokenGrant(t.token_id, t.token_sha256, Principal(t.name, t.role, regions, t.token_id), t.expires_at,
                      t.revoked_at)  # fmt: skip


def _token_json(t: StoredToken) -> dict[str, Any]:
    return {
        "token_id": t.token_id, "name": t.name, "role": t.role, "regions": list(t.regions),
        "created_at": t.created_at.isoformat(), "created_by": t.created_by,
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
    }  # fmt: skip


def _check_grant(wanted: TokenRequest, geography: Geography) -> None:
    if wanted.role not in ROLES:
        raise ValueError(f"unknown role {wanted.role!r}; known: {', '.join(ROLES)}")
    if wanted.role == "regional":
        if not wanted.regions:
            raise ValueError("a regional token needs at least one region")
        unknown = sorted(set(wanted.regions) - set(geography.regions))
        if unknown:
            raise ValueError(f"unknown regions {unknown}; known: {sorted(geography.regions)}")
    elif wanted.regions:
        raise ValueError(f"regions apply to regional tokens only; a {wanted.role} sees every region")


def _insert_voters(
    warehouse: Warehouse, load_id: str, version: int, token: str, table: pa.Table, client: Client
) -> None:
    VoterStore(client, warehouse).insert_batch(load_id, version, token, table)


def _record_load(warehouse: Warehouse, r: VoterLoadRecord, client: Client) -> None:
    VoterStore(client, warehouse).record_load(
        r.load_id, r.file_name, r.file_sha256, (r.rows_read, r.rows_loaded, r.rows_rejected),
        r.rejected_by_reason, r.ignored_columns, r.started_at,
    )  # fmt: skip
