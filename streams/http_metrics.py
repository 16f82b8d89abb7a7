"""HTTP latency for /metrics: an aiohttp middleware on the worker's web server, labelled by route pattern."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Histogram

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Server-sent events stay open for minutes: their "latency" is a session length, not a response time.
STREAMING_ROUTES = frozenset({"/api/v1/stream"})


def route_pattern(request: web.Request) -> str:
    """The route's pattern, so `/api/v1/alerts/abc/ack` and `/api/v1/alerts/def/ack` share one series."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def latency_middleware(histogram: Histogram) -> Middleware:
    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = route_pattern(request)
            if route not in STREAMING_ROUTES:
                histogram.labels(route, request.method, f"{status // 100}xx").observe(perf_counter() - started)

    return timed


def instrument(web_app: web.Application, histogram: Histogram) -> None:
    web_app.middlewares.append(latency_middleware(histogram))
