"""Expected aggregates of a simulated stream, computed independently of the pipeline.

It deliberately shares no code with streams.processing, streams.rows or sinks.*: it decodes the
JSON itself and applies the contract's counting rules from scratch, so a bug in the pipeline
cannot hide in its own yardstick. Counting rules:

- attempts: canvass events; contacts: result canvassed; ids: support_level given; supporters: 1-2
- doors: unique households among walk attempts (household_id, else voter_id, else event_id)
- signups: signup events; email_sends: kind send; donations_cents: amount_cents of kind donation
- email_unique_clicks: unique (mailing_id, recipient) among clicks, recipient = lower(strip(email)),
  else voter_id, else event_id
- precinct: the event's precinct_id; a signup without one resolves through its zip5 when that zip
  lies in exactly one precinct; anything else counts under "unassigned"
- windows: 15 minutes of event time (occurred_at), UTC-aligned; unique counts are per window and,
  separately, per precinct over the whole run (a door knocked in two windows is one door overall)

The ground-truth file is JSON Lines of SimEvents (key and value base64, since a malformed value
need not be UTF-8), optionally gzip-compressed (a path ending .gz).
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec

from config.geography import UNASSIGNED, Geography
from config.settings import CANVASS_TOPIC, EMAIL_TOPIC, SIGNUP_TOPIC
from streams.simulation.payloads import OK, SimEvent

WINDOW_SECONDS = 900


@dataclass(slots=True)
class Counts:
    attempts: int = 0
    doors: int = 0
    contacts: int = 0
    ids: int = 0
    supporters: int = 0
    signups: int = 0
    email_sends: int = 0
    email_unique_clicks: int = 0
    donations_cents: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Truth:
    windows: dict[tuple[str, datetime], Counts] = field(default_factory=dict)  # (precinct_id, window start)
    precincts: dict[str, Counts] = field(default_factory=dict)
    rejections: Counter[str] = field(default_factory=Counter)  # reason code → events
    accepted: int = 0

    def total(self) -> Counts:
        """Whole-campaign sums (door and click uniqueness is per precinct, as in `precincts`)."""
        total = Counts()
        for counts in self.precincts.values():
            total.add(counts)
        return total


class _Unique:
    """Distinct doors and clicks per bucket; turned into counts at the end."""

    def __init__(self) -> None:
        self.doors: dict[Any, set[str]] = {}
        self.clicks: dict[Any, set[tuple[str, str]]] = {}


def compute_truth(events: Iterable[SimEvent], geography: Geography) -> Truth:
    """Expected aggregates of the events labelled "ok"; the rest are counted by reason."""
    truth = Truth()
    by_window: _Unique = _Unique()
    by_precinct: _Unique = _Unique()
    decode = msgspec.json.decode
    for event in events:
        if event.expected != OK:
            truth.rejections[event.expected] += 1
            continue
        truth.accepted += 1
        body: dict[str, Any] = decode(event.value)
        occurred = datetime.fromisoformat(body["occurred_at"]).timestamp()
        window = datetime.fromtimestamp(occurred - occurred % WINDOW_SECONDS, UTC)
        if event.topic == CANVASS_TOPIC:
            precinct = body["precinct_id"]
        elif event.topic == SIGNUP_TOPIC:
            precinct = body.get("precinct_id") or _precinct_of_zip(geography, (body.get("person") or {}).get("zip5"))
        elif event.topic == EMAIL_TOPIC:
            precinct = body.get("precinct_id") or UNASSIGNED
        else:
            raise ValueError(f"unknown topic {event.topic!r}")
        cell = (precinct, window)
        for counts in (_counts(truth.windows, cell), _counts(truth.precincts, precinct)):
            _count(event.topic, body, counts)
        _remember_unique(event.topic, body, by_window, cell)
        _remember_unique(event.topic, body, by_precinct, precinct)
    for cell, doors in by_window.doors.items():
        truth.windows[cell].doors = len(doors)
    for cell, clicks in by_window.clicks.items():
        truth.windows[cell].email_unique_clicks = len(clicks)
    for precinct, doors in by_precinct.doors.items():
        truth.precincts[precinct].doors = len(doors)
    for precinct, clicks in by_precinct.clicks.items():
        truth.precincts[precinct].email_unique_clicks = len(clicks)
    return truth


def _precinct_of_zip(geography: Geography, zip5: str | None) -> str:
    candidates = geography.zip_precincts.get(zip5 or "", ())
    return candidates[0] if len(candidates) == 1 else UNASSIGNED


def _counts(table: dict[Any, Counts], key: Any) -> Counts:
    counts = table.get(key)
    if counts is None:
        counts = table[key] = Counts()
    return counts


def _count(topic: str, body: dict[str, Any], counts: Counts) -> None:
    if topic == CANVASS_TOPIC:
        counts.attempts += 1
        if body["result"] == "canvassed":
            counts.contacts += 1
        level = body.get("support_level")
        if level is not None:
            counts.ids += 1
            if level in (1, 2):
                counts.supporters += 1
    elif topic == SIGNUP_TOPIC:
        counts.signups += 1
    else:
        kind = body["kind"]
        if kind == "send":
            counts.email_sends += 1
        elif kind == "donation":
            counts.donations_cents += body.get("amount_cents") or 0


def _remember_unique(topic: str, body: dict[str, Any], unique: _Unique, bucket: Any) -> None:
    if topic == CANVASS_TOPIC and body["contact_type"] == "walk":
        door = body.get("household_id") or body.get("voter_id") or body["event_id"]
        unique.doors.setdefault(bucket, set()).add(door)
    elif topic == EMAIL_TOPIC and body["kind"] == "click":
        recipient = (body.get("email") or "").strip().lower() or body.get("voter_id") or body["event_id"]
        unique.clicks.setdefault(bucket, set()).add((body["mailing_id"], recipient))


# --- the ground-truth file --------------------------------------------------------------------


def _open(path: Path, write: bool) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "wb" if write else "rb", compresslevel=3)
    return path.open("wb") if write else path.open("rb")


class TruthWriter:
    """Appends SimEvents to a ground-truth file as they are produced (a context manager)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = _open(path, write=True)
        self._encode = msgspec.json.Encoder().encode
        self.count = 0

    def write(self, event: SimEvent) -> None:
        self._handle.write(self._encode(event) + b"\n")
        self.count += 1

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> TruthWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_truth(path: Path, events: Iterable[SimEvent]) -> int:
    """Write every event (ok and malformed) as one JSON line; returns how many."""
    with TruthWriter(path) as writer:
        for event in events:
            writer.write(event)
        return writer.count


def iter_truth(path: Path) -> Iterator[SimEvent]:
    decoder = msgspec.json.Decoder(SimEvent)
    with _open(path, write=False) as handle:
        for line in handle:
            if line.strip():
                yield decoder.decode(line)


def read_truth(path: Path) -> list[SimEvent]:
    return list(iter_truth(path))
