"""GET /api/v1/stream: server-sent events that keep an open dashboard live without reloading it.

A `tick` about every second (at least every two) says how fresh the data is and which regions have
new data or changed trend flags since the last tick, so the page refetches only what it shows. The
figures are cut to the principal's regions before they are sent; the worker-wide count of accepted
events goes only to principals who see every region. The token is checked again on every tick, so a
revoked or expired token ends the stream. Browsers read it with fetch() (EventSource cannot send an
Authorization header).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from streams.auth import Principal
from streams.web.live import LivePoller, RegionView

_json = msgspec.json.Encoder()


def sse_frame(event: str, data: Any) -> bytes:
    """One event; msgspec's JSON has no raw newlines, so one `data:` line carries it."""
    return b"event: " + event.encode() + b"\ndata: " + _json.encode(data) + b"\n\n"


def tick_payload(view: RegionView, earlier: RegionView, now: datetime, events_accepted: int | None) -> dict[str, Any]:
    changed, flags_changed = view.changed_since(earlier)
    as_of = view.as_of
    payload: dict[str, Any] = {
        "now": now.astimezone(UTC).isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "behind_s": round(max((now - as_of).total_seconds(), 0.0), 3) if as_of else None,
        "changed": changed,
        "flags_changed": flags_changed,
    }
    if events_accepted is not None:
        payload["events_accepted"] = events_accepted
    return payload


async def serve_stream(
    request: web.Request,
    principal: Principal,
    poller: LivePoller,
    authenticate: Callable[[], Principal | None],
    events_accepted: Callable[[], int],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    regions = principal.regions
    async with poller.listening():
        snapshot = poller.snapshot
        if snapshot.seq == 0:  # the first poll of this worker is still running
            snapshot = await poller.wait_after(0, poller.interval_s * 5)
        last = snapshot.visible(regions)
        hello = {"interval_s": poller.interval_s, "name": principal.name, "role": principal.role,
                 "regions": sorted(regions) if regions is not None else None}  # fmt: skip
        try:
            await response.write(b"retry: 2000\n" + sse_frame("hello", hello))
            while not poller.closed.is_set():
                current = authenticate()
                if current is None or current.regions != regions:
                    await response.write(sse_frame("expired", {"error": "the token is no longer valid"}))
                    break
                view = snapshot.visible(regions)
                accepted = events_accepted() if regions is None else None
                await response.write(sse_frame("tick", tick_payload(view, last, clock(), accepted)))
                last = view
                snapshot = await poller.wait_after(snapshot.seq, poller.interval_s * 2)
        except (ConnectionResetError, RuntimeError):  # the browser went away (aiohttp raises either)
            pass
    return response
