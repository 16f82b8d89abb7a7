"""A deterministic, seeded stream of campaign events: canvass shifts, online signups, email blasts.

A discrete-event simulation: a heap of (time, handler) entries. Each handler emits events and
schedules what follows (the next door of a shift, an open two hours after a send). The clock
turns simulated time into `occurred_at` (see clock.py). Same world, seed, share and clock →
the same bytes, including event_ids.

Rates and shares below are typical field and email-program numbers (as in the domain notes):
contact rate 10-30 % per attempt, households knocked once and not-homes once more, about 2 %
unique clicks per delivered email, machine opens kept apart from human opens.

People who sign up and email subscribers come from streams/simulation/identities.py: noisy
identities (nicknames, typos, moves, housemates' emails, people not on the file) whose true voter
is known, so the linking agent (issue #5) has realistic work; a signup's `source_record_id` is its
simulated person's record id, which joins it back to that truth.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from config.settings import CANVASS_TOPIC, EMAIL_TOPIC, SIGNUP_TOPIC
from streams.simulation.clock import FIELD_HOURS, Clock, LiveClock
from streams.simulation.identities import IdentitySimulator, SimPerson
from streams.simulation.malformed import Malformer
from streams.simulation.payloads import (
    OK,
    Canvass,
    Email,
    Gps,
    Person,
    Response,
    Signup,
    SimEvent,
    Source,
    Timestamps,
    uuid4_text,
)
from streams.simulation.world import World

# --- field program -------------------------------------------------------------------------
WALK_SHIFTS_PER_PRECINCT_DAY = 0.18
PHONE_SHIFTS_PER_PRECINCT_DAY = 0.04
SMS_SHIFTS_PER_PRECINCT_DAY = 0.004
CANVASSERS_PER_PRECINCT = 0.3
LIVE_FIELD_FACTOR = 2.0
FABRICATOR_SHARE = 0.02  # canvassers who make up contacts: alerts should catch them
# Per voter at a door that was answered: the household member asked for may still be out.
_ANSWERED = (
    ("canvassed", 0.72), ("not_home", 0.12), ("refused", 0.07), ("come_back_later", 0.03), ("moved", 0.03),
    ("language_barrier", 0.01), ("deceased", 0.005), ("do_not_contact", 0.005),
)  # fmt: skip
_PHONE = (
    ("not_home", 0.52), ("canvassed", 0.22), ("wrong_number", 0.08), ("refused", 0.07), ("disconnected", 0.05),
    ("come_back_later", 0.03), ("language_barrier", 0.01), ("do_not_contact", 0.01), ("moved", 0.01),
)  # fmt: skip
_SMS = (("not_home", 0.78), ("canvassed", 0.12), ("wrong_number", 0.05), ("do_not_contact", 0.04), ("refused", 0.01))
_ISSUES = ("economy", "healthcare", "education", "housing", "public_safety", "climate", "jobs", "abortion_rights")
_ISSUE_RESPONSES = tuple((Response("top_issue", issue),) for issue in _ISSUES)
_NOTES = ("Dog in yard", "Gate locked", "Asked for a yard sign", "Wants early-vote info", "Prefers Spanish")

# --- online signups ------------------------------------------------------------------------
SIGNUPS_PER_PRECINCT_DAY = 1.5
_SIGNUP_SOURCES = ("facebook", "instagram", "email", "sms", "organic")
_SOURCE_WEIGHTS = (0.30, 0.15, 0.20, 0.10, 0.25)
_SOURCE_MEDIUM = {"facebook": "paid_social", "instagram": "social", "email": "email", "sms": "sms", "organic": "web"}
_SOURCE_CODE = {"facebook": "fb", "instagram": "ig", "email": "em", "sms": "sms", "organic": "web"}
_SOURCE_ACTIONS = {
    "facebook": ("form_submission", "petition_signature", "list_signup"),
    "instagram": ("form_submission", "petition_signature", "event_rsvp"),
    "email": ("petition_signature", "event_rsvp", "donation_form"),
    "sms": ("event_rsvp", "form_submission"),
    "organic": ("form_submission", "list_signup", "event_rsvp", "relational_contact", "donation_form"),
}
_ACTION_SYSTEM = {"event_rsvp": "mobilize", "donation_form": "actblue", "relational_contact": "nationbuilder"}
_UTM_CAMPAIGNS = ("gotv", "persuasion", "volunteer-recruit", "early-vote")
_AREA_CODES = ("614", "216", "513", "330", "419", "937", "440", "740")
_OUTSIDE_ZIPS = ("10001", "15213", "20001", "60601", "94110", "98101")
# Signups per hour of the local day, relative to the daily mean (evenings peak, nights are quiet).
_HOURLY = (
    0.15, 0.10, 0.08, 0.07, 0.08, 0.15, 0.35, 0.60, 0.80, 0.95, 1.00, 1.05,
    1.10, 1.05, 1.00, 1.00, 1.05, 1.15, 1.35, 1.50, 1.50, 1.30, 0.90, 0.45,
)  # fmt: skip
_HOURLY_MEAN = sum(_HOURLY) / 24

# --- email program -------------------------------------------------------------------------
LIST_SHARE_OF_VOTERS = 0.025  # the list has 2x this share of the voter count in subscribers
# The ESP knows the voter_id (and precinct) of most on-file subscribers from an earlier list match;
# the rest are known by their address only, for the stream to link.
LIST_VOTER_ID_KNOWN = 0.8
SIGNUP_PEOPLE_CHUNK = 512  # simulated people are drawn in seeded chunks as signups need them
_LINKS = ("read-more", "volunteer-signup", "petition", "donate-main")
_AMOUNTS = (500, 1000, 1500, 2500, 2700, 5000, 10_000)

_SIGNUP_REST_S = 900.0  # the signup process re-draws at least this often: its rate varies by hour


def _cumulative(table: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    names = tuple(n for n, _ in table)
    total = sum(w for _, w in table)
    return names, tuple(itertools.accumulate(w / total for _, w in table))[:-1]


_ANSWERED_CUM = _cumulative(_ANSWERED)
_PHONE_CUM = _cumulative(_PHONE)
_SMS_CUM = _cumulative(_SMS)


class CampaignGenerator:
    """Iterate to get SimEvents; each iteration starts the same seeded run again."""

    def __init__(self, world: World, seed: int, malformed_share: float = 0.0, clock: Clock | None = None) -> None:
        if not 0.0 <= malformed_share <= 1.0:
            raise ValueError("malformed_share must be between 0 and 1")
        self.world = world
        self.seed = seed
        self.malformed_share = malformed_share
        self.clock: Clock = clock if clock is not None else LiveClock()
        self._index = _WorldIndex.of(world)

    def __iter__(self) -> Iterator[SimEvent]:
        return _Run(self._index, self.seed, self.malformed_share, self.clock).events()


@dataclass(frozen=True)
class _WorldIndex:
    """The world as plain Python lists: scalar reads from numpy arrays are slow and not JSON-encodable."""

    world: World
    precinct_ids: list[str]
    precinct_keys: list[bytes]
    precinct_zip: list[str]
    precinct_team: list[str]
    precinct_households: list[tuple[int, int]]
    precinct_voters: list[tuple[int, int]]
    household_first: list[int]
    household_size: list[int]
    household_lat: list[float]
    household_lon: list[float]
    voter_household: list[int]
    voter_precinct: list[int]
    support: list[float]
    outside_zips: tuple[str, ...]
    identities: IdentitySimulator
    zip_precinct: dict[str, int]  # zips that lie in exactly one precinct

    @classmethod
    def of(cls, world: World) -> _WorldIndex:
        region_index = {r: i for i, r in enumerate(world.regions)}
        household_precinct = world.household_precinct.tolist()
        voter_precinct = world.voter_precinct.tolist()
        n = len(world.precincts)
        return cls(
            world=world,
            precinct_ids=[p.precinct_id for p in world.precincts],
            precinct_keys=[p.precinct_id.encode() for p in world.precincts],
            precinct_zip=[p.zip5 for p in world.precincts],
            precinct_team=[f"TM{region_index[p.region] + 1:02d}" for p in world.precincts],
            precinct_households=_ranges(household_precinct, n),
            precinct_voters=_ranges(voter_precinct, n),
            household_first=world.household_first_voter.tolist(),
            household_size=world.household_size.tolist(),
            household_lat=world.household_lat.tolist(),
            household_lon=world.household_lon.tolist(),
            voter_household=world.voter_household.tolist(),
            voter_precinct=voter_precinct,
            support=world.support.tolist(),
            outside_zips=tuple(z for z in _OUTSIDE_ZIPS if z not in {p.zip5 for p in world.precincts}),
            identities=IdentitySimulator(world),
            zip_precinct=_unique_zips([p.zip5 for p in world.precincts]),
        )


def _unique_zips(precinct_zips: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for z in precinct_zips:
        counts[z] = counts.get(z, 0) + 1
    return {z: i for i, z in enumerate(precinct_zips) if counts[z] == 1}


def _ranges(sorted_owner: list[int], n: int) -> list[tuple[int, int]]:
    """[start, stop) of each owner's items in a list sorted by owner."""
    starts = [0] * (n + 1)
    for owner in sorted_owner:
        starts[owner + 1] += 1
    acc = list(itertools.accumulate(starts))
    return [(acc[i], acc[i + 1]) for i in range(n)]


@dataclass(slots=True)
class _Turf:
    precinct: int
    turf_id: str
    households: list[int]
    visit: int  # 1: first knock; 2: not-homes knocked again


@dataclass(slots=True)
class _Shift:
    turf: _Turf
    end: float
    canvasser_id: str
    answer_p: float
    fabricator: bool
    pos: int = 0
    not_home: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _CallShift:
    precinct: int
    end: float
    canvasser_id: str
    contact_type: str


@dataclass(slots=True)
class _Burst:
    start: float
    end: float
    source: str
    peak_per_s: float
    decay_s: float


@dataclass(slots=True)
class _Blast:
    mailing_id: str
    key: bytes
    refcode: str
    recipients: list[int]
    start: float
    step: float
    salt: int
    pos: int = 0


Handler = Callable[[float, Any], None]


class _Run:
    """One pass of the simulation; all randomness comes from one seeded generator."""

    def __init__(self, index: _WorldIndex, seed: int, malformed_share: float, clock: Clock) -> None:
        self.ix = index
        self.clock = clock
        self.rng = random.Random(seed)
        self.share = malformed_share
        self.heap: list[tuple[float, int, Handler, Any]] = []
        self.seq = itertools.count()
        self.out: list[SimEvent] = []
        self.stamps = Timestamps()
        self.encode = msgspec.json.Encoder().encode
        self.begin = clock.begin()
        self.occurred = clock.occurred
        self.device_lag = clock.device_lag
        self.malformer = Malformer(self.rng, set(index.precinct_ids), clock.wall)
        n_precincts = len(index.precinct_ids)
        self.n_precincts = n_precincts
        self.n_voters = len(index.support)
        self.run_tag = f"{self.rng.getrandbits(12):03X}"  # keeps mailing ids of different runs apart

        n_canvassers = max(3, round(n_precincts * CANVASSERS_PER_PRECINCT))
        self.canvasser_ids = [f"C{i + 1:04d}" for i in range(n_canvassers)]
        self.skill = [self.rng.uniform(0.22, 0.42) for _ in range(n_canvassers)]
        self.fabricator = [self.rng.random() < FABRICATOR_SHARE for _ in range(n_canvassers)]
        self.turfs: deque[_Turf] = deque()
        self.revisits: deque[tuple[float, _Turf]] = deque()
        self.bursts: list[_Burst] = []
        self.subscribers = self._email_list()
        self.signup_people: Iterator[SimPerson] = self._people_stream()
        self.suppressed: set[int] = set()
        self.signup_base_per_s = n_precincts * SIGNUPS_PER_PRECINCT_DAY / 86_400.0

        day_start, day = clock.day_starts(self.begin)
        self.at(day_start, self._plan_day, (day_start, day, 0))
        self.at(self.begin, self._signup, False)

    # --- the event loop --------------------------------------------------------------------
    def at(self, when: float, handler: Handler, arg: Any) -> None:
        heapq.heappush(self.heap, (when, next(self.seq), handler, arg))

    def events(self) -> Iterator[SimEvent]:
        heap, out, begin = self.heap, self.out, self.begin
        end = self.clock.end()
        share, rng, malformer = self.share, self.rng, self.malformer
        pop, plan_day = heapq.heappop, self._plan_day
        while heap:
            when, _, handler, arg = pop(heap)
            if end is not None and when >= end:
                return
            if when < begin and handler != plan_day:
                continue  # the first day is planned from its midnight; what falls before the start never happens
            handler(when, arg)
            if share:
                for event in out:
                    if rng.random() < share:
                        yield malformer.corrupt(event)
                    else:
                        malformer.remember(event)
                        yield event
            else:
                yield from out
            out.clear()

    # --- days ------------------------------------------------------------------------------
    def _plan_day(self, now: float, arg: tuple[float, date, int]) -> None:
        day_start, day, index = arg
        rng, clock, n = self.rng, self.clock, self.n_precincts
        # Replayed weeks ramp up towards election day and weekends bring more volunteers; live runs
        # at a flat late-campaign pace.
        field_factor = LIVE_FIELD_FACTOR
        if clock.diurnal:
            field_factor = min(2.5, 1.0 + 0.1 * index) * (1.4 if day.weekday() >= 5 else 1.0)

        def hours(earliest: float, latest: float, length: tuple[float, float]) -> tuple[float, float]:
            if not clock.diurnal:
                start = rng.uniform(0.0, 24.0)
                return start, start + rng.uniform(*length)
            start = rng.uniform(earliest, latest)
            return start, min(start + rng.uniform(*length), FIELD_HOURS[1])

        for _ in range(self._about(n * WALK_SHIFTS_PER_PRECINCT_DAY * field_factor)):
            start_h, end_h = hours(FIELD_HOURS[0], 17.0, (2.0, 3.5))
            end = clock.at_local_hour(day_start, day, end_h)
            self.at(clock.at_local_hour(day_start, day, start_h), self._start_walk, end)
        for contact_type, per_day in (("phone", PHONE_SHIFTS_PER_PRECINCT_DAY), ("sms", SMS_SHIFTS_PER_PRECINCT_DAY)):
            for _ in range(self._about(n * per_day * field_factor)):
                start_h, end_h = hours(13.0, 17.5, (2.0, 3.0))
                end = clock.at_local_hour(day_start, day, end_h)
                self.at(clock.at_local_hour(day_start, day, start_h), self._start_calls, (end, contact_type))

        send_hours = [rng.uniform(9.5, 11.0)] + ([rng.uniform(16.0, 18.0)] if rng.random() < 0.3 else [])
        for letter, hour in zip("ABCD", send_hours, strict=False):
            when = clock.at_local_hour(day_start, day, hour if clock.diurnal else rng.uniform(0.0, 24.0))
            self.at(when, self._start_blast, letter)

        for _ in range(rng.choice((0, 1, 1, 2))):
            hour = rng.uniform(8.0, 22.0) if clock.diurnal else rng.uniform(0.0, 24.0)
            start = clock.at_local_hour(day_start, day, hour)
            duration = rng.uniform(1800.0, 7200.0)
            source = rng.choices(_SIGNUP_SOURCES, _SOURCE_WEIGHTS)[0]
            peak = self.signup_base_per_s * rng.uniform(8.0, 25.0)
            # The signup process notices a burst within _SIGNUP_REST_S of its start.
            self.bursts.append(_Burst(start, start + duration, source, peak, duration / 3.0))

        next_start, next_day = clock.day_starts(clock.at_local_hour(day_start, day, 24.0))
        self.at(next_start, self._plan_day, (next_start, next_day, index + 1))

    def _about(self, mean: float) -> int:
        return max(0, round(mean * self.rng.uniform(0.85, 1.15)))

    # --- canvassing --------------------------------------------------------------------------
    def _next_turf(self, now: float) -> _Turf:
        if self.revisits and self.revisits[0][0] <= now and self.rng.random() < 0.5:
            return self.revisits.popleft()[1]
        if not self.turfs:
            self._cut_turfs()
        return self.turfs.popleft()

    def _cut_turfs(self) -> None:
        """Split every precinct into walk lists of 40-70 doors, in a random order (a new cycle)."""
        rng = self.rng
        turfs: list[_Turf] = []
        for precinct, (first, stop) in enumerate(self.ix.precinct_households):
            households = list(range(first, stop))
            size = rng.randint(40, 70)
            for number, cut in enumerate(range(0, len(households), size)):
                turf_id = f"T{precinct + 1:04d}-{number + 1:02d}"
                turfs.append(_Turf(precinct, turf_id, households[cut : cut + size], 1))
        rng.shuffle(turfs)
        self.turfs.extend(turfs)

    def _start_walk(self, now: float, end: float) -> None:
        c = self.rng.randrange(len(self.canvasser_ids))
        shift = _Shift(self._next_turf(now), end, self.canvasser_ids[c], self.skill[c], self.fabricator[c])
        self.at(now + self.rng.uniform(120.0, 600.0), self._door, shift)

    def _door(self, now: float, shift: _Shift) -> None:
        turf = shift.turf
        if now + 30.0 > shift.end or shift.pos >= len(turf.households):
            self._end_walk(now, shift)
            return
        ix, rng = self.ix, self.rng
        random_ = rng.random
        household = turf.households[shift.pos]
        shift.pos += 1
        answered = random_() < (0.9 if shift.fabricator else shift.answer_p)
        inaccessible = not answered and random_() < 0.03
        precinct = turf.precinct
        if random_() < 0.02:  # a GPS fix far off the address: worth an audit
            gps = Gps(
                round(ix.household_lat[household] + rng.uniform(-0.004, 0.004), 6),
                round(ix.household_lon[household] + rng.uniform(-0.004, 0.004), 6),
                round(rng.uniform(150.0, 400.0), 1),
            )
        else:
            gps = Gps(
                round(ix.household_lat[household] + rng.gauss(0.0, 0.0001), 6),
                round(ix.household_lon[household] + rng.gauss(0.0, 0.0001), 6),
                round(rng.uniform(4.0, 25.0), 1),
            )
        names, cum = _ANSWERED_CUM
        first = ix.household_first[household]
        contacted = False
        for k in range(ix.household_size[household]):
            if not answered:
                result = "inaccessible" if inaccessible else "not_home"
            elif shift.fabricator:
                result = "canvassed" if random_() < 0.95 else "refused"
            else:
                result = names[bisect(cum, random_())]
            self._canvass(
                now + 8.0 * k, first + k, household, precinct, shift.canvasser_id, turf.turf_id, "walk",
                result, gps, rng.choice(_NOTES) if random_() < 0.01 else None,
            )  # fmt: skip
            contacted = contacted or result == "canvassed"
        if not answered and not inaccessible:
            shift.not_home.append(household)
        if shift.fabricator:
            gap = rng.uniform(30.0, 90.0)  # doors a minute apart: the tell-tale of made-up data
        else:
            gap = rng.uniform(60.0, 180.0) + (rng.uniform(120.0, 360.0) if contacted else 0.0)
        self.at(now + gap, self._door, shift)

    def _end_walk(self, now: float, shift: _Shift) -> None:
        turf = shift.turf
        rest = turf.households[shift.pos :]
        if rest:  # the next volunteer picks up where this one stopped
            self.turfs.appendleft(_Turf(turf.precinct, turf.turf_id, rest, turf.visit))
        if turf.visit == 1 and shift.not_home:
            ready = now + self.rng.uniform(20.0, 48.0) * 3600.0
            self.revisits.append((ready, _Turf(turf.precinct, turf.turf_id, shift.not_home, 2)))

    def _start_calls(self, now: float, arg: tuple[float, str]) -> None:
        end, contact_type = arg
        c = self.rng.randrange(len(self.canvasser_ids))
        shift = _CallShift(self.rng.randrange(self.n_precincts), end, self.canvasser_ids[c], contact_type)
        self.at(now + self.rng.uniform(60.0, 300.0), self._call, shift)

    def _call(self, now: float, shift: _CallShift) -> None:
        if now > shift.end:
            return
        rng, ix = self.rng, self.ix
        first, stop = ix.precinct_voters[shift.precinct]
        voter = rng.randrange(first, stop)
        names, cum = _PHONE_CUM if shift.contact_type == "phone" else _SMS_CUM
        result = names[bisect(cum, rng.random())]
        self._canvass(
            now, voter, ix.voter_household[voter], shift.precinct, shift.canvasser_id, None, shift.contact_type,
            result, None, None,
        )  # fmt: skip
        if shift.contact_type == "sms":
            gap = rng.uniform(5.0, 20.0)  # peer-to-peer texting: a tap per message
        else:
            gap = rng.uniform(40.0, 120.0) + (rng.uniform(120.0, 300.0) if result == "canvassed" else 0.0)
        self.at(now + gap, self._call, shift)

    def _canvass(
        self,
        now: float,
        voter: int,
        household: int,
        precinct: int,
        canvasser_id: str,
        turf_id: str | None,
        contact_type: str,
        result: str,
        gps: Gps | None,
        notes: str | None,
    ) -> None:
        rng = self.rng
        level: int | None = None
        responses: tuple[Response, ...] | None = None
        if result == "canvassed":
            if rng.random() < 0.88:
                level = self._support_level(voter)
            if rng.random() < 0.6:
                responses = _ISSUE_RESPONSES[rng.randrange(len(_ISSUE_RESPONSES))]
        lag = 0.0
        if self.device_lag:  # offline-first apps: most knocks sync within seconds, a few much later
            lag = rng.uniform(60.0, 1800.0) if rng.random() < 0.005 else rng.expovariate(0.5)
        ix = self.ix
        event = Canvass(
            uuid4_text(rng.getrandbits(128)), CANVASS_TOPIC, 1, self.stamps.format(self.occurred(now, lag)),
            "minivan" if contact_type == "walk" else "van", f"V{voter + 1:08d}", f"H{household + 1:07d}",
            ix.precinct_ids[precinct], canvasser_id, ix.precinct_team[precinct], turf_id, contact_type, result,
            level, responses, gps, notes,
        )  # fmt: skip
        self.out.append(SimEvent(CANVASS_TOPIC, ix.precinct_keys[precinct], self.encode(event), OK))

    def _support_level(self, voter: int) -> int:
        """1-2 with the voter's true support probability (so IDs estimate it); else 3-5."""
        p = self.ix.support[voter]
        random_ = self.rng.random
        if random_() < p:
            return 1 if random_() < p else 2
        r = random_()
        return 3 if r < 0.3 else (4 if r < 0.6 else 5)

    # --- signups -----------------------------------------------------------------------------
    def _signup(self, now: float, arrival: bool) -> None:
        rng = self.rng
        base = self.signup_base_per_s
        if self.clock.diurnal:
            base *= _HOURLY[int(self.clock.local_hour(now)) % 24] / _HOURLY_MEAN
        self.bursts = [b for b in self.bursts if b.end > now]
        rates = [base * w for w in _SOURCE_WEIGHTS]
        for burst in self.bursts:
            if burst.start <= now:
                rates[_SIGNUP_SOURCES.index(burst.source)] += burst.peak_per_s * math.exp(
                    -(now - burst.start) / burst.decay_s
                )
        if arrival:
            self._emit_signup(now, rng.choices(_SIGNUP_SOURCES, rates)[0])
        wait = rng.expovariate(sum(rates))
        # The rate changes with the hour and with bursts: re-draw (without a signup) if the wait is long.
        if wait > _SIGNUP_REST_S:
            self.at(now + _SIGNUP_REST_S, self._signup, False)
        else:
            self.at(now + wait, self._signup, True)

    def _people_stream(self) -> Iterator[SimPerson]:
        """Signing-up people, drawn in seeded chunks (the identity simulator has its own generator)."""
        base = self.rng.getrandbits(31)
        for chunk in itertools.count():
            yield from self.ix.identities.signups(SIGNUP_PEOPLE_CHUNK, seed=base + chunk)

    def _emit_signup(self, now: float, source: str) -> None:
        rng, ix = self.rng, self.ix
        random_ = rng.random
        person = next(self.signup_people)
        while person.zip5 is None:  # the simulated forms require a zip (the topic's key without a precinct)
            person = next(self.signup_people)
        zip5 = person.zip5[:5]  # the contract's zip5: a ZIP+4 form keeps its five digits
        # Where the person lives now: their zip's precinct, else (not moved) their voter-file precinct.
        precinct = ix.zip_precinct.get(zip5)
        if precinct is None and person.true_voter_id is not None and "moved" not in person.noise:
            precinct = ix.voter_precinct[int(person.true_voter_id[1:]) - 1]
        outside = bool(ix.outside_zips) and random_() < 0.08
        if outside:
            zip5, precinct = rng.choice(ix.outside_zips), None
        precinct_id = ix.precinct_ids[precinct] if precinct is not None and random_() < 0.3 else None
        action = rng.choice(_SOURCE_ACTIONS[source])
        campaign = rng.choice(_UTM_CAMPAIGNS)
        day = datetime.fromtimestamp(self.clock.occurred(now, 0.0), UTC)
        phone = person.phone
        if person.email is None and phone is None:
            phone = f"+1{rng.choice(_AREA_CODES)}5550{rng.randrange(100, 200)}"  # 555-01xx: fictional numbers
        identity = Person(person.given_name, person.family_name, person.email, phone, person.address_line1, zip5,
                          person.birth_year)  # fmt: skip
        src = Source(
            source, _SOURCE_MEDIUM[source], campaign,
            f"VOL-{rng.randrange(1, 500):04d}" if action == "relational_contact" else None,
            f"{_SOURCE_CODE[source]}-{campaign}-{day:%m%d}" if random_() < 0.7 else None,
        )  # fmt: skip
        lag = rng.expovariate(2.0) if self.device_lag else 0.0
        event = Signup(
            uuid4_text(rng.getrandbits(128)), SIGNUP_TOPIC, 1, self.stamps.format(self.occurred(now, lag)),
            _ACTION_SYSTEM.get(action, "action_network"), action, identity, src, precinct_id,
            (random_() < 0.6) if phone else None,
            ("registered" if random_() < 0.8 else "confirmed") if action == "event_rsvp" else None,
            person.record_id,
        )  # fmt: skip
        key = precinct_id if precinct_id is not None else zip5
        self.out.append(SimEvent(SIGNUP_TOPIC, key.encode(), self.encode(event), OK))

    # --- email ---------------------------------------------------------------------------------
    def _email_list(self) -> list[tuple[str, str | None, str | None]]:
        """Subscribers (address, voter_id, precinct_id): simulated email-list people; the ESP knows the
        voter of most of those on the file, the others only by their address."""
        rng, ix = self.rng, self.ix
        n = 2 * max(1, int(self.n_voters * LIST_SHARE_OF_VOTERS))
        subscribers: list[tuple[str, str | None, str | None]] = []
        for person in ix.identities.email_people(n, seed=rng.getrandbits(31)):
            assert person.email is not None  # email-list people always have one
            voter, precinct = person.true_voter_id, None
            if voter is not None and rng.random() < LIST_VOTER_ID_KNOWN:
                precinct = ix.precinct_ids[ix.voter_precinct[int(voter[1:]) - 1]]
            else:
                voter = None
            subscribers.append((person.email, voter, precinct))
        rng.shuffle(subscribers)
        return subscribers

    def _start_blast(self, now: float, letter: str) -> None:
        rng = self.rng
        share = rng.uniform(0.6, 1.0)
        recipients = [i for i in range(len(self.subscribers)) if i not in self.suppressed and rng.random() < share]
        if not recipients:
            return
        day = datetime.fromtimestamp(self.clock.occurred(now, 0.0), UTC)
        mailing_id = f"M{day:%Y%m%d}{letter}{self.run_tag}"
        span = rng.uniform(900.0, 1500.0)  # the ESP throttles a blast over 15-25 minutes
        blast = _Blast(
            mailing_id, mailing_id.encode(), f"em-{mailing_id.lower()}", recipients, now,
            span / len(recipients), rng.randrange(2),
        )  # fmt: skip
        self.at(now, self._send_chunk, blast)

    def _send_chunk(self, now: float, blast: _Blast) -> None:
        """Sends to 64 recipients at their own times, each with its follow-ups scheduled."""
        rng = self.rng
        random_, uniform = rng.random, rng.uniform
        email, later, suppressed = self._email, self.at, self.suppressed
        stop = min(blast.pos + 64, len(blast.recipients))
        for i in range(blast.pos, stop):
            sub = blast.recipients[i]
            t = blast.start + i * blast.step
            email(t, ("send", sub, blast, None, None))
            r = random_()
            if r < 0.004:
                suppressed.add(sub)
                later(t + uniform(2.0, 60.0), email, ("bounce_hard", sub, blast, None, None))
                continue
            if r < 0.012:
                later(t + uniform(2.0, 300.0), email, ("bounce_soft", sub, blast, None, None))
                continue
            if random_() < 0.35:  # privacy proxies fetch images for the reader: machine opens
                later(t + uniform(5.0, 600.0), email, ("machine_open", sub, blast, None, None))
            if random_() < 0.17:  # human opens decay over hours after the send
                opened = t + min(rng.expovariate(1 / 7200.0), 36 * 3600.0)
                later(opened, email, ("open", sub, blast, None, None))
                variant_b = (sub + blast.salt) % 2 == 1
                if random_() < (0.15 if variant_b else 0.12):
                    clicked = opened + uniform(5.0, 120.0)
                    link = rng.choice(_LINKS)
                    later(clicked, email, ("click", sub, blast, link, None))
                    if random_() < 0.25:  # clicked again: still one unique click
                        later(clicked + uniform(10.0, 900.0), email, ("click", sub, blast, link, None))
                    if random_() < 0.35:
                        later(clicked + uniform(20.0, 300.0), email, ("action", sub, blast, link, None))
                    if random_() < 0.07:
                        amount = rng.choice(_AMOUNTS)
                        later(clicked + uniform(60.0, 1200.0), email, ("donation", sub, blast, link, amount))
            if random_() < 0.002:
                suppressed.add(sub)
                later(t + rng.expovariate(1 / 10_800.0), email, ("unsubscribe", sub, blast, None, None))
            elif random_() < 0.0003:
                suppressed.add(sub)
                later(t + rng.expovariate(1 / 10_800.0), email, ("spam_complaint", sub, blast, None, None))
        blast.pos = stop
        if stop < len(blast.recipients):
            self.at(blast.start + stop * blast.step, self._send_chunk, blast)

    def _email(self, now: float, what: tuple[str, int, _Blast, str | None, int | None]) -> None:
        kind, sub, blast, link, amount = what
        rng = self.rng
        address, voter_id, precinct_id = self.subscribers[sub]
        if kind != "send" and rng.random() < 0.03:
            address = address.capitalize()  # some systems echo the address as typed; it still names one person
        donation = kind == "donation"
        lag = rng.expovariate(2.0) if self.device_lag else 0.0
        event = Email(
            uuid4_text(rng.getrandbits(128)), EMAIL_TOPIC, 1, self.stamps.format(self.occurred(now, lag)),
            "actblue" if donation else "actionkit", kind, blast.mailing_id,
            "B" if (sub + blast.salt) % 2 else "A", address, voter_id, precinct_id, link, amount,
            blast.refcode if donation else None,
        )  # fmt: skip
        self.out.append(SimEvent(EMAIL_TOPIC, blast.key, self.encode(event), OK))
