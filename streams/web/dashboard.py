"""The dashboard's routes on the worker's web server (`register_dashboard`, called by streams/app.py).

- GET /dashboard and /dashboard/static/{name}: the page (vanilla JS and SVG, no build step, no CDN);
  it holds no data, so it needs no token; every API call it makes sends `Authorization: Bearer`.
- GET /api/v1/dashboard/view?level=&unit=&window=15m|1h|1d&period=today|7d|all: one view as JSON
  (streams/web/views.py), cached about a second per (view, principal's regions, data generation).
- GET /api/v1/stream: server-sent events (streams/web/stream.py).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import faust
import msgspec
from aiohttp import web
from faust.web import Request, Response, View

from streams.auth import Principal
from streams.web.cache import ResponseCache
from streams.web.goals import deadline, load_goals
from streams.web.live import LivePoller, Marks, warehouse_marks
from streams.web.places import PlaceTree
from streams.web.queries import DashboardQueries
from streams.web.stream import serve_stream
from streams.web.views import ViewBuilder, ViewError, ViewRequest

if TYPE_CHECKING:
    from streams.app import WorkerContext

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
CACHE_TTL_S = 1.0
_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static(directory: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every file of the static directory, read once: the page is a handful of small files."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.is_file():
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if path.suffix == ".js":  # some systems' mime tables lack it, and modules need it exact
                content_type = "text/javascript"
            body = path.read_bytes()
            files[path.name] = StaticFile(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return files


def _error(view: View, status: int, message: str) -> Response:
    return view.bytes(_json.encode({"error": message}), content_type="application/json", status=status)


def register_dashboard(app: faust.App, ctx: WorkerContext, authorized: Callable[[Request], Principal | None]) -> None:
    """Add the dashboard's routes and its live poller to the worker's app."""
    settings = ctx.settings
    tree = PlaceTree(ctx.geography)
    goals = load_goals(settings.geography, ctx.geography)
    deadline(datetime.now(UTC).date())  # a bad GROUNDSWELL_ELECTION_DAY fails at start, not per request
    warehouse = ctx.warehouse
    parts_only = warehouse.topology.cluster is None  # system.parts of one node says nothing about the others

    async def read(fn: Callable[[DashboardQueries], Any]) -> Any:
        return await ctx.read(lambda client: fn(DashboardQueries(client, warehouse)))

    async def read_marks(since: datetime | None) -> Marks:
        marks: Marks = await read(lambda q: warehouse_marks(q, since, parts_only))
        return marks

    builder = ViewBuilder(tree, goals, settings.timezone, settings.campaign_start, read)
    poller = LivePoller(read_marks)
    cache: ResponseCache[bytes] = ResponseCache(CACHE_TTL_S)
    static = load_static()

    async def close_streams(_: web.Application) -> None:
        await poller.close()

    # Open streams end when the server shuts down, instead of holding the worker's stop for a minute.
    web_app: web.Application = getattr(app.web, "web_app")  # noqa: B009 (the aiohttp driver's, untyped in Faust)
    web_app.on_shutdown.append(close_streams)

    def serve_static(view: View, request: Request, name: str) -> Response:
        found = static.get(name)
        if found is None:
            return _error(view, 404, f"no file {name!r}")
        if request.headers.get("If-None-Match") == found.etag:
            return cast(Response, web.Response(status=304, headers={"ETag": found.etag}))
        return view.bytes(
            found.body, content_type=found.content_type, headers={"ETag": found.etag, "Cache-Control": "no-cache"}
        )

    @app.page("/dashboard")
    async def dashboard_page(view: View, request: Request) -> Response:
        return serve_static(view, request, "index.html")

    @app.page("/dashboard/")
    async def dashboard_page_slash(view: View, request: Request) -> Response:
        return serve_static(view, request, "index.html")

    @app.page("/dashboard/static/{name}")
    class StaticView(View):
        async def get(self, request: Request, name: str) -> Response:
            return serve_static(self, request, name)

    @app.page("/api/v1/dashboard/view")
    async def dashboard_view(view: View, request: Request) -> Response:
        principal = authorized(request)
        if principal is None:
            return _error(view, 401, "missing or invalid bearer token")
        try:
            wanted = ViewRequest.parse(request.query)
            place = builder.resolve(principal, wanted)
            key = ("view", place.level, place.unit, wanted.window, wanted.period, principal.regions,
                   poller.generation)  # fmt: skip
            body, hit = await cache.get(key, lambda: _encoded(builder.build(principal, wanted)))
        except ViewError as exc:
            return _error(view, exc.status, str(exc))
        headers = {"Cache-Control": "no-store", "X-Cache": "hit" if hit else "miss"}
        return view.bytes(body, content_type="application/json", headers=headers)

    @app.page("/api/v1/stream")
    async def live_stream(view: View, request: Request) -> Any:
        principal = authorized(request)
        if principal is None:
            return _error(view, 401, "missing or invalid bearer token")

        def accepted() -> int:
            return ctx.ingest.stats.accepted if ctx.ingest is not None else 0

        return await serve_stream(cast(web.Request, request), principal, poller, lambda: authorized(request), accepted)


async def _encoded(built: Awaitable[dict[str, Any]]) -> bytes:
    return _json.encode(await built)
