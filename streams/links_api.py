"""The review queue for ambiguous links (issue #5), on the worker's web server.

- GET /api/v1/links/review?limit=100: ambiguous links, oldest first, each with the person's fields
  and the candidate voters (file identity, precinct, posterior). Admins and statisticians see all;
  regional staff see only candidates in their regions (and items with at least one such candidate).
- POST /api/v1/links/review/{record_id} with {"decision": "accept" | "reject", "voter_id": "..."}:
  records the decision (202). The linking agent applies it within a tick: an accept is a link
  decided by the reviewer that the model never overrides; a rejected pair is never proposed again.
  Decisions live in `link_reviews`, so they survive restarts and voter-file reloads.

Names and addresses are in these responses (reviewers need them) but never in logs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import faust
import msgspec
from faust.web import Request, Response, View

from sinks.clickhouse.links import Link, LinkStore, Review
from streams.access import Access
from streams.auth import Principal

if TYPE_CHECKING:
    from streams.app import WorkerContext

REVIEWERS = ("admin", "statistician", "regional")
MAX_LIMIT = 1000
# Regional staff see a filtered queue: read this many times the limit before filtering.
REGIONAL_OVERFETCH = 10
_json = msgspec.json.Encoder()


class ReviewDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision: Literal["accept", "reject"]
    voter_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _respond(view: View, payload: Any, status: int = 200) -> Response:
    return view.bytes(_json.encode(payload), content_type="application/json", status=status)


def parse_limit(raw: str | None) -> int:
    try:
        limit = int(raw if raw is not None else "100")
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def review_queue(store: LinkStore, principal: Principal, limit: int) -> list[dict[str, Any]]:
    """The queue as the principal may see it (blocking: run on a read thread)."""
    fetched = store.review_queue(limit if principal.sees_everything else limit * REGIONAL_OVERFETCH)
    voters = store.voters({c[0] for link, _ in fetched for c in link.candidates})
    items = []
    for link, person in fetched:
        candidates = [
            {**voters[voter_id], "probability": probability, "match_weight": weight}
            for voter_id, probability, weight in link.candidates
            if voter_id in voters and principal.may_see_region(str(voters[voter_id]["region"]))
        ]
        if not candidates:
            continue
        items.append(_item(link, person, candidates))
        if len(items) == limit:
            break
    return items


def _item(link: Link, person: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "record_kind": link.record_kind,
        "record_id": link.record_id,
        "probability": link.probability,
        "linked_at": link.linked_at.isoformat(),
        "person": person or {"email_hash": link.record_id},
        "candidates": candidates,
    }


def record_decision(store: LinkStore, principal: Principal, record_id: str, wanted: ReviewDecision) -> Review:
    """Check and store one decision (blocking). Raises ApiError 404 or 403."""
    link = store.link_by_record(record_id)
    if link is None:
        raise ApiError(404, f"no linked record {record_id!r}")
    voter = store.voters([wanted.voter_id]).get(wanted.voter_id)
    if voter is None:
        raise ApiError(404, f"no voter {wanted.voter_id!r} on the voter file")
    if not principal.may_see_region(str(voter["region"])):
        raise ApiError(403, "regional staff may decide only on voters in their regions")
    review = Review(uuid.uuid4().hex, link.record_kind, record_id, wanted.voter_id, wanted.decision, principal.name,
                    datetime.now(UTC))  # fmt: skip
    store.add_review(review)
    return review


def register_link_routes(app: faust.App, ctx: WorkerContext, access: Access) -> None:
    """Add the review queue's routes to the worker's app."""
    warehouse = ctx.warehouse

    @app.page("/api/v1/links/review")
    async def links_review(view: View, request: Request) -> Response:
        principal = access.require(request, REVIEWERS, "review links")
        try:
            limit = parse_limit(request.query.get("limit"))
        except ApiError as exc:
            return _respond(view, {"error": str(exc)}, exc.status)
        items = await ctx.read(lambda client: review_queue(LinkStore(client, warehouse), principal, limit))
        return _respond(view, {"queue": items})

    @app.page("/api/v1/links/review/{record_id}")
    class LinkReviewView(View):
        async def post(self, request: Request, record_id: str) -> Response:
            principal = access.require(request, REVIEWERS, "review links")
            try:
                try:
                    wanted = msgspec.json.decode(await request.read(), type=ReviewDecision)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise ApiError(
                        400, f'expected {{"decision": "accept" | "reject", "voter_id": "..."}}: {exc}'
                    ) from None
                review = await ctx.write(
                    lambda client: record_decision(LinkStore(client, warehouse), principal, record_id, wanted)
                )
            except ApiError as exc:
                return _respond(self, {"error": str(exc)}, exc.status)
            body = {"review_id": review.review_id, "record_id": record_id, "decision": review.decision,
                    "voter_id": review.voter_id, "status": "recorded; the linking agent applies it"}  # fmt: skip
            return _respond(self, body, 202)
