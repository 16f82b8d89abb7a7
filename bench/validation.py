"""bench/validation: decode-and-validate cost per event, msgspec (used) vs pydantic v2 vs orjson + hand checks.

    .venv/bin/python -m bench.validation [--events 100000]

All three check the same canvass.knock v1 fields (types, enums, ranges, zone-aware time, UUID).
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson
from pydantic import BaseModel, Field

from streams.events import CanvassKnock, CanvassResult, ContactType
from streams.simulation.campaign import CampaignGenerator
from streams.simulation.clock import ReplayClock
from streams.simulation.world import build_world


class PydanticResponse(BaseModel):
    question: Annotated[str, Field(min_length=1, max_length=128)]
    answer: Annotated[str, Field(max_length=512)]


class PydanticGps(BaseModel):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    accuracy_m: Annotated[float, Field(ge=0)] | None = None


class PydanticKnock(BaseModel, strict=True):
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    source_system: str
    precinct_id: str
    contact_type: ContactType
    result: CanvassResult
    source_record_id: str | None = None
    voter_id: str | None = None
    household_id: str | None = None
    canvasser_id: str | None = None
    team_id: str | None = None
    turf_id: str | None = None
    list_id: str | None = None
    support_level: Annotated[int, Field(ge=1, le=5)] | None = None
    responses: list[PydanticResponse] | None = None
    gps: PydanticGps | None = None
    notes: str | None = None


_RESULTS = frozenset(CanvassResult.__args__)  # type: ignore[attr-defined]
_CONTACTS = frozenset(ContactType.__args__)  # type: ignore[attr-defined]
_STR_FIELDS = ("event_type", "source_system", "precinct_id")


def orjson_checks(raw: bytes) -> dict[str, Any]:
    event = orjson.loads(raw)
    if not isinstance(event, dict):
        raise ValueError("not an object")
    uuid.UUID(event["event_id"])
    for name in _STR_FIELDS:
        if not isinstance(event[name], str):
            raise ValueError(name)
    if type(event["schema_version"]) is not int:
        raise ValueError("schema_version")
    occurred = datetime.fromisoformat(event["occurred_at"])
    if occurred.tzinfo is None:
        raise ValueError("occurred_at needs a zone")
    if event["result"] not in _RESULTS or event["contact_type"] not in _CONTACTS:
        raise ValueError("enum")
    level = event.get("support_level")
    if level is not None and (type(level) is not int or not 1 <= level <= 5):
        raise ValueError("support_level")
    return dict(event)


def timed(name: str, fn: Any, values: list[bytes]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for value in values:
            fn(value)
        best = min(best, time.perf_counter() - started)
    per_event_us = best / len(values) * 1e6
    print(f"{name:<28} {per_event_us:6.2f} µs/event  {len(values) / best:>12,.0f} events/s")
    return per_event_us


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    world = build_world(42)
    events = CampaignGenerator(world, seed=3, clock=ReplayClock.ending_now(days=30))
    values = [e.value for e in itertools.islice((e for e in events if e.topic == "canvass.knock"), args.events)]
    decoder = msgspec.json.Decoder(CanvassKnock)
    base = timed("msgspec Struct (used)", decoder.decode, values)
    slow = timed("pydantic v2 model_validate_json", PydanticKnock.model_validate_json, values)
    hand = timed("orjson + hand checks", orjson_checks, values)
    print(f"pydantic / msgspec: {slow / base:.1f}x   orjson+checks / msgspec: {hand / base:.1f}x")


if __name__ == "__main__":
    main()
